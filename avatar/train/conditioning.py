"""A batch of clips as the denoiser's inputs: latents, conditions, dropout masks and loss weights.

What the engine computes at run time from a persona and audio, computed here
from a :class:`~.dataset.ClipBatch`, with the frozen VAE:

- clean latents of the clip's frames (``mode`` of the posterior, as
  :meth:`TalkingFacePipeline.encode` uses) and of the reference;
- motion latents of the frames before the clip (the reference where the clip
  starts its video), forward-diffused to a random timestep in
  ``0..motion_noise_max``, because the engine's drift guard noises them to
  timestep 50 before use;
- classifier-free-guidance dropout: per clip, the label is dropped with
  ``label_dropout`` (its embedding zeroed: a null label) and the audio with
  ``audio_dropout`` (all tokens zeroed, which the projection's LayerNorm never
  outputs, so "no audio" stays distinct from silence);
- a loss weight map at latent size: ``mouth_weight`` inside the lips box,
  1 elsewhere, since the mouth is a few latent cells of a 64² face and would
  otherwise be a rounding error in the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL

from .dataset import ClipBatch
from .objectives import NoiseSchedule

__all__ = ["Conditioning", "DropoutRates", "encode_pixels", "prepare_batch"]


@dataclass(frozen=True, kw_only=True)
class DropoutRates:
    """Per-clip probabilities of dropping a condition during training (for CFG)."""

    label: float = 0.1
    audio: float = 0.1


@dataclass
class Conditioning:
    """Everything but the noisy latents the denoiser needs for ``B`` clips of ``L`` frames.

    Attributes:
        reference_latent: ``(B, C, h, w)``.
        face_mask: ``(B, 1, S, S)`` in [0, 1].
        windows: ``(B * L, window, 4)`` audio windows, frame-major per clip.
        labels: ``(B,)`` int64.
        motion: ``(B, C, M, h, w)`` (noised) motion latents.
        label_keep: ``(B,)`` float, 0 where the label is dropped.
        audio_keep: ``(B,)`` float, 0 where the audio is dropped.
        weight: ``(B, 1, 1, h, w)`` loss weights.
    """

    reference_latent: torch.Tensor
    face_mask: torch.Tensor
    windows: torch.Tensor
    labels: torch.Tensor
    motion: torch.Tensor
    label_keep: torch.Tensor
    audio_keep: torch.Tensor
    weight: torch.Tensor

    def without_audio(self) -> Conditioning:
        """The same inputs with the audio dropped: the branch audio guidance pushes away from."""
        return Conditioning(**{**self.__dict__, "audio_keep": torch.zeros_like(self.audio_keep)})


def encode_pixels(vae: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 on the device → ``(N, C, h, w)`` scaled latents (no grad)."""
    x = images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        if isinstance(vae, AutoencoderKL):
            return vae.encode(x).latent_dist.mode() * vae.config.scaling_factor
        return vae.encode(x).latents


def _clip_latents(vae: torch.nn.Module, frames: torch.Tensor) -> torch.Tensor:
    b, n = frames.shape[:2]
    z = encode_pixels(vae, frames.flatten(0, 1))
    return z.view(b, n, *z.shape[1:]).permute(0, 2, 1, 3, 4)


def prepare_batch(batch: ClipBatch, vae: torch.nn.Module, schedule: NoiseSchedule, *, device: torch.device,
                  generator: torch.Generator, dropout: DropoutRates, motion_noise_max: int = 100,
                  mouth_weight: float = 3.0) -> tuple[torch.Tensor, Conditioning]:
    """Clean latents ``(B, C, L, h, w)`` and the :class:`Conditioning` of ``batch``.

    Random draws (dropout, motion noise) come from ``generator`` (CPU) so a
    resumed run draws the same numbers an uninterrupted one would.
    """
    t = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    b = batch.frames.shape[0]
    x0 = _clip_latents(vae, t(batch.frames))
    reference = encode_pixels(vae, t(batch.reference))
    motion = _clip_latents(vae, t(batch.motion))
    fallback = reference[:, :, None].expand_as(motion)
    motion = torch.where(t(batch.motion_valid)[:, None, None, None, None], motion, fallback)
    motion_t = torch.randint(0, motion_noise_max + 1, (b,), generator=generator)
    noise = torch.randn(motion.shape, generator=generator).to(device)
    motion = schedule.add_noise(motion, noise, motion_t.to(device))
    label_keep = (torch.rand(b, generator=generator) >= dropout.label).float().to(device)
    audio_keep = (torch.rand(b, generator=generator) >= dropout.audio).float().to(device)
    side, h = batch.frames.shape[2], x0.shape[-1]
    weight = torch.ones((b, 1, 1, h, h))
    for i, (x_0, y_0, x_1, y_1) in enumerate(batch.lips_box.tolist()):
        s = h / side
        weight[i, :, :, int(y_0 * s):max(int(y_0 * s) + 1, round(y_1 * s)),
               int(x_0 * s):max(int(x_0 * s) + 1, round(x_1 * s))] = mouth_weight
    return x0, Conditioning(
        reference_latent=reference, face_mask=t(batch.face_mask)[:, None],
        windows=t(batch.windows).flatten(0, 1), labels=t(batch.labels), motion=motion,
        label_keep=label_keep, audio_keep=audio_keep, weight=weight.to(device),
    )
