"""The training objectives, on VAE latents with SD1.5's noise schedule (the samplers' own).

**Teacher (ε-objective).** For clean latents ``x0``, ``t ~ U{0..999}`` per clip
and ``ε ~ N(0, I)``, the noisy input is ``x_t = √ᾱ_t x0 + √(1-ᾱ_t) ε`` and the
loss is the weighted mean of ``(ε_θ(x_t, t, c) - ε)²`` (DDPM's "simple" loss).
ε rather than v, because the engine's DDIM and LCM schedulers are configured
for ``prediction_type="epsilon"`` and an SD1.5-initialised UNet predicts ε.

**Consistency distillation (LCM).** With the LCM skeleton of 50 timesteps
(``t_n = 20 n + 19``, what :class:`~diffusers.LCMScheduler` samples from with
``original_inference_steps=50``), a step ``t_{n} → t_{n-1} = t_n - 20``:

1. ``x_{t_n}`` by forward diffusion of ``x0``;
2. the frozen teacher's one DDIM step (with guidance scale ``w``:
   ``ε̂ = ε_u + w (ε_c - ε_u)``) gives ``x̂_{t_{n-1}}``;
3. the student's consistency function ``f(x, t) = c_skip(t) x + c_out(t) x̂0(ε_θ)``
   (LCMScheduler's boundary scalings, so sampling uses exactly this
   parameterisation) at ``(x_{t_n}, t_n)`` is pulled towards the EMA target's
   ``f(x̂_{t_{n-1}}, t_{n-1})`` with a weighted squared error.
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, LCMScheduler

from ..diffusion.sampling import make_scheduler

__all__ = ["LCM_SKIP", "NoiseSchedule", "weighted_mse"]

LCM_SKIP = 20
"""Timesteps between neighbouring points of the 50-step LCM skeleton (1000 / 50)."""


class NoiseSchedule:
    """ᾱ_t, forward diffusion, x̂0 and LCM scalings, all from the engine's own schedulers."""

    def __init__(self) -> None:
        self.ddim: DDIMScheduler = make_scheduler("ddim", 25)  # type: ignore[assignment]
        self._lcm: LCMScheduler = make_scheduler("lcm", 1)  # type: ignore[assignment]
        self.num_train_timesteps: int = self.ddim.config.num_train_timesteps

    def alpha_bar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """ᾱ_t shaped ``(B, 1, 1, 1, 1)`` for per-clip timesteps ``t``; ``t < 0`` means clean (ᾱ = 1)."""
        table = self.ddim.alphas_cumprod.to(like.device)
        a = torch.where(t >= 0, table[t.clamp(min=0)], torch.ones_like(table[0]))
        return a.view(-1, *([1] * (like.ndim - 1))).to(like.dtype)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.alpha_bar(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.alpha_bar(t, x_t)
        return (x_t - (1 - a).sqrt() * eps) / a.sqrt()

    def consistency(self, x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """LCM's ``f(x_t, t) = c_skip x_t + c_out x̂0``, as :meth:`LCMScheduler.step` computes it."""
        c_skip, c_out = self._lcm.get_scalings_for_boundary_condition_discrete(t.clamp(min=0).float())
        shape = (-1, *([1] * (x_t.ndim - 1)))
        return (c_skip.view(shape).to(x_t.device) * x_t
                + c_out.view(shape).to(x_t.device) * self.predict_x0(x_t, eps, t))


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of ``weight * (pred - target)²``, normalised by the weights' mean (so weights only redistribute)."""
    err = (pred.float() - target.float()) ** 2 * weight
    return err.mean() / weight.mean()
