"""Schedulers: LCM consistency sampling in 1, 2 or 4 steps; DDIM for the multi-step teacher.

Both are diffusers schedulers with SD1.5's noise schedule (1000 steps,
scaled-linear betas 0.00085 → 0.012, ε-prediction), so an SD1.5-initialised
UNet starts from the schedule it was trained on. The step counts are checked
here and refused with a clear error rather than silently changed.
"""

from __future__ import annotations

from typing import Literal

from diffusers import DDIMScheduler, LCMScheduler

from ...errors import FaceTalkError

__all__ = ["LCM_STEPS", "Sampler", "make_scheduler"]

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
