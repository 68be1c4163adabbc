"""Schedulers: LCM consistency sampling in 1, 2 or 4 steps; DDIM for the multi-step teacher.

Both are diffusers schedulers with SD1.5's noise schedule (1000 steps,
scaled-linear betas 0.00085 → 0.012, ε-prediction), so an SD1.5-initialised
UNet starts from the schedule it was trained on. The step counts are checked
here and refused with a clear error rather than silently changed.

The schedulers' ``step()`` reads its timestep back on the host and draws
LCM's re-noising noise itself, which costs host round-trips per step on a GPU.
:class:`StepPlan` takes the same update apart once per engine into fixed
coefficients (a test checks it against ``step()``), so the per-clip loop is
plain tensor arithmetic that a CUDA graph can capture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from diffusers import DDIMScheduler, LCMScheduler

from ...errors import FaceTalkError

__all__ = ["LCM_STEPS", "Sampler", "StepPlan", "make_scheduler", "plan_steps"]

Sampler = Literal["lcm", "ddim"]
LCM_STEPS = (1, 2, 4)
"""Step counts the consistency student is distilled for (the training issue)."""
_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "prediction_type": "epsilon"}


def make_scheduler(sampler: Sampler, steps: int) -> LCMScheduler | DDIMScheduler:
    """A scheduler with ``set_timesteps(steps)`` already called.

    Raises:
        FaceTalkError: a sampler other than lcm/ddim, an LCM step count other
            than 1, 2 or 4, or a DDIM step count outside 1..1000.
    """
    if sampler == "lcm":
        if steps not in LCM_STEPS:
            raise FaceTalkError(f"the consistency sampler cannot run {steps} steps",
                                hint=f"use --steps {', '.join(map(str, LCM_STEPS))}, or the ddim teacher sampler")
        scheduler = LCMScheduler(**_SCHEDULE, original_inference_steps=50, timestep_spacing="trailing")
    elif sampler == "ddim":
        if not 1 <= steps <= _SCHEDULE["num_train_timesteps"]:
            raise FaceTalkError(f"DDIM cannot run {steps} steps", hint="use 1..1000 (25 is the teacher's default)")
        scheduler = DDIMScheduler(**_SCHEDULE, clip_sample=False, set_alpha_to_one=False, timestep_spacing="trailing")
    else:
        raise FaceTalkError(f"unknown sampler {sampler!r}", hint="use lcm or ddim")
    scheduler.set_timesteps(steps)
    return scheduler


@dataclass(frozen=True)
class StepPlan:
    """A scheduler's sampling loop as fixed coefficients.

    Step ``i`` maps latents ``x`` to ``signal[i]·x + eps[i]·ε̂(x, t_i) + noise[i]·z_i``
    with ``z_i`` unit Gaussian noise, which is exactly what LCM's and DDIM's
    (η = 0) ``step()`` compute: both are linear in ``x``, the noise
    prediction and the fresh noise. After the last step ``x`` is the clean
    sample (LCM's ``denoised``, DDIM's ``prev_sample``).

    Attributes:
        timesteps: ``(S,)`` int64 on the denoiser's device.
        signal, eps, noise: the ``S`` coefficients per step, as Python floats
            (constants of the kernels, no device reads).
        init_noise_sigma: scale of the initial noise.
    """

    timesteps: torch.Tensor
    signal: tuple[float, ...]
    eps: tuple[float, ...]
    noise: tuple[float, ...]
    init_noise_sigma: float

    @property
    def noised_steps(self) -> int:
        """Steps that draw fresh noise (LCM's re-noising; none for DDIM)."""
        return sum(1 for c in self.noise if c)


def plan_steps(scheduler: LCMScheduler | DDIMScheduler, device: torch.device) -> StepPlan:
    """The coefficients of ``scheduler``'s loop (``set_timesteps`` already called), timesteps on ``device``."""
    steps = [int(t) for t in scheduler.timesteps]
    coefficients = [_coefficients(scheduler, steps, i) for i in range(len(steps))]
    signal, eps, noise = (tuple(c) for c in zip(*coefficients, strict=True))
    return StepPlan(timesteps=torch.tensor(steps, dtype=torch.int64, device=device), signal=signal, eps=eps,
                    noise=noise, init_noise_sigma=float(scheduler.init_noise_sigma))


def _coefficients(scheduler: LCMScheduler | DDIMScheduler, steps: list[int], i: int) -> tuple[float, float, float]:
    """``(signal, eps, noise)`` of step ``i``, from the scheduler's own alphas and scalings."""
    alphas = scheduler.alphas_cumprod.double()
    t = steps[i]
    root_a, root_b = float(alphas[t]) ** 0.5, (1.0 - float(alphas[t])) ** 0.5
    if isinstance(scheduler, LCMScheduler):
        c_skip, c_out = scheduler.get_scalings_for_boundary_condition_discrete(t)
        # denoised = c_out * (x - root_b * eps) / root_a + c_skip * x; the last step returns it.
        d_x, d_eps = c_out / root_a + c_skip, -c_out * root_b / root_a
        if i == len(steps) - 1:
            return d_x, d_eps, 0.0
        # Earlier steps re-noise it to the next timestep.
        a_next = float(alphas[steps[i + 1]])
        return a_next**0.5 * d_x, a_next**0.5 * d_eps, (1.0 - a_next) ** 0.5
    prev = t - scheduler.config.num_train_timesteps // scheduler.num_inference_steps
    a_prev = float(alphas[prev]) if prev >= 0 else float(scheduler.final_alpha_cumprod)
    # DDIM, eta = 0: prev_sample = sqrt(a_prev) * (x - root_b * eps) / root_a + sqrt(1 - a_prev) * eps
    return a_prev**0.5 / root_a, (1.0 - a_prev) ** 0.5 - a_prev**0.5 * root_b / root_a, 0.0
