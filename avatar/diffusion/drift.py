"""Long-duration strategy: keep the motion frames from drifting away from the reference.

The motion frames (the previous clip's last latents) feed every next clip, so
any error — the model's, or int8 rounding — is fed back and can accumulate
over minutes. Three guards, applied to the motion latents between clips:

1. **Latent statistics held to the reference**: each channel's mean and
   standard deviation over the motion frames is reset to the reference
   latent's, which stops slow colour and contrast creep.
2. **Re-anchoring outside the head**: where the head never moves (the head
   mask is 0), motion latents are pulled toward the reference latent by
   ``reanchor`` each clip; the background is static, so this removes drift
   there without touching the face's motion.
3. **Noise-augmented motion frames** (as EMO/Hallo train with): motion latents
   are forward-diffused to timestep ``noise_timestep`` before use, so the
   model treats them as a hint and does not copy their errors exactly. The
   training issue trains with the same augmentation.

The bench measures ``drift_psnr_db`` (outside the head, vs the reference) after
a soak with the guards on, and with them off for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler, LCMScheduler

__all__ = ["DriftGuard"]


@dataclass(frozen=True)
class DriftGuard:
    """Settings of the three guards; :meth:`off` disables all.

    Attributes:
        match_stats: hold per-channel latent mean/std to the reference's.
        reanchor: 0..1, pull toward the reference outside the head per clip.
        noise_timestep: 0..999, forward-diffusion timestep of motion frames (0 = clean).
    """

    match_stats: bool = True
    reanchor: float = 0.5
    noise_timestep: int = 50

    @classmethod
    def off(cls) -> DriftGuard:
        return cls(match_stats=False, reanchor=0.0, noise_timestep=0)

    def noise_level(self, scheduler: LCMScheduler | DDIMScheduler) -> float:
        """``alphas_cumprod`` at ``noise_timestep``: read once, so the per-clip guard reads nothing back."""
        return float(scheduler.alphas_cumprod[self.noise_timestep]) if self.noise_timestep else 1.0

    def __call__(self, motion: torch.Tensor, reference: torch.Tensor, head_mask: torch.Tensor,
                 noise: torch.Tensor, noise_level: float) -> torch.Tensor:
        """Guarded motion latents, computed where ``motion`` lives (no host reads).

        Args:
            motion: ``(1, C, M, h, w)`` the previous clip's last latents.
            reference: ``(1, C, h, w)`` the reference latent.
            head_mask: ``(1, 1, h, w)`` 1 where the head may move.
            noise: unit Gaussian noise shaped like ``motion``, on its device.
            noise_level: :meth:`noise_level` of the engine's scheduler.
        """
        ref = reference[:, :, None]
        if self.match_stats:
            dims = (2, 3, 4)
            mean, std = motion.mean(dims, keepdim=True), motion.std(dims, keepdim=True) + 1e-6
            motion = (motion - mean) / std * ref.std(dims, keepdim=True) + ref.mean(dims, keepdim=True)
        if self.reanchor:
            pull = self.reanchor * (1.0 - head_mask[:, :, None])
            motion = motion + pull * (ref - motion)
        if self.noise_timestep:
            # The scheduler's add_noise, with its alpha read once.
            motion = noise_level**0.5 * motion + (1.0 - noise_level) ** 0.5 * noise
        return motion
