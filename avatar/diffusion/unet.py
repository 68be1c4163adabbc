"""The denoising UNet: diffusers' UNetMotionModel plus labels, per-frame audio, face locator and motion frames."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import ConfigMixin, ModelMixin, UNetMotionModel
from diffusers.configuration_utils import register_to_config
from torch import nn

__all__ = ["TalkingFaceUNet"]


class TalkingFaceUNet(ModelMixin, ConfigMixin):
    """Predicts the noise of a clip of latents, conditioned as LLIA's denoiser.

    - Spatial layers with temporal motion modules over the clip's frames
      (diffusers' ``UNetMotionModel``, AnimateDiff's design).
    - Label conditioning: ``num_class_embeds`` learned embeddings (speaking,
      listening, idle) enter through the time embedding's ``cond_proj``, i.e.
      they are added to the timestep embedding, like ``num_class_embeds`` in
      ``UNet2DConditionModel``.
    - Audio: each frame cross-attends to its own window of audio tokens.
    - Face locator: its output is added to every frame's noisy latent.
    - Motion frames: clean (or noise-augmented) latents of the previous clip's
      last frames are prepended along the frame axis; the temporal attention
      carries motion across the clip boundary. Their outputs are dropped.
    - ReferenceNet's tokens come in through the attention processors
      (:mod:`.reference_attention`), not through ``forward``.

    Args:
        unet: constructor arguments of ``UNetMotionModel`` (a config's ``unet``).
        num_class_embeds: number of labels.
    """

    @register_to_config
    def __init__(self, unet: dict[str, Any], num_class_embeds: int = 3) -> None:
        super().__init__()
        self.backbone = UNetMotionModel(**unet)
        self.class_embedding = nn.Embedding(num_class_embeds, unet["time_cond_proj_dim"])

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | int, audio_embeds: torch.Tensor,
                class_labels: torch.Tensor, face_latent: torch.Tensor | None = None,
                motion_latents: torch.Tensor | None = None) -> torch.Tensor:
        """Noise prediction for ``sample``.

        Args:
            sample: ``(B, C, F, h, w)`` noisy latents.
            timestep: one diffusion timestep for the batch.
            audio_embeds: ``(B * F, window, D)`` audio tokens, frame-major per item.
            class_labels: ``(B,)`` int64 label indices.
            face_latent: ``(B, C, h, w)`` face-locator output, or ``None``.
            motion_latents: ``(B, C, M, h, w)`` previous-clip latents, or ``None``.

        Returns:
            ``(B, C, F, h, w)``, the same dtype as ``sample``.
        """
        batch, frames = sample.shape[0], sample.shape[2]
        if motion_latents is not None and motion_latents.shape[2]:
            motion = motion_latents.shape[2]
            sample = torch.cat([motion_latents.to(sample.dtype), sample], dim=2)
            # Motion frames hear silence: zero tokens (LayerNorm's output is never all-zero).
            audio = audio_embeds.view(batch, frames, *audio_embeds.shape[1:])
            audio = torch.cat([audio.new_zeros(batch, motion, *audio.shape[2:]), audio], dim=1)
            audio_embeds = audio.flatten(0, 1)
        else:
            motion = 0
        if face_latent is not None:
            sample = sample + face_latent[:, :, None].to(sample.dtype)
        out = self.backbone(sample, timestep, encoder_hidden_states=audio_embeds,
                        timestep_cond=self.class_embedding(class_labels)).sample
        return out[:, :, motion:]
