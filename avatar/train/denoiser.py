"""One trainable set of the engine's models, called as the pipeline calls them, with CFG dropout.

The pipeline keeps one :class:`~facetalk.avatar.diffusion.reference_attention.ReferenceBank`
per model set; training needs the same wiring for each set it runs (teacher,
student, EMA target), so each :class:`Denoiser` owns its bank. Unlike the
pipeline it runs a batch of clips with a timestep per clip, and applies the
dropout masks of :class:`~.conditioning.Conditioning`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..diffusion.components import DiffusionModels
from ..diffusion.reference_attention import ReferenceBank, install_reference_attention
from .conditioning import Conditioning

__all__ = ["Denoiser"]


@contextmanager
def _label_keep(embedding: nn.Embedding, keep: torch.Tensor) -> Iterator[None]:
    """Scale the class embedding's output per clip (0 = null label) for one forward pass."""
    handle = embedding.register_forward_hook(lambda _m, _i, out: out * keep[:, None].to(out.dtype))
    try:
        yield
    finally:
        handle.remove()


class Denoiser:
    """Noise prediction for a batch of clips with the models' own reference bank.

    Args:
        models: the models (the VAE is not used here).
    """

    def __init__(self, models: DiffusionModels) -> None:
        self.models = models
        self.bank = ReferenceBank()
        install_reference_attention(models.reference_net.backbone, self.bank, "write")
        install_reference_attention(models.unet.backbone, self.bank, "read")

    def trainable(self) -> list[nn.Module]:
        """The modules diffusion training updates (all but the frozen VAE)."""
        m = self.models
        return [m.unet, m.reference_net, m.audio_projection, m.face_locator]

    def __call__(self, noisy: torch.Tensor, timesteps: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        """ε prediction ``(B, C, L, h, w)`` for ``noisy`` at per-clip ``timesteps`` ``(B,)``."""
        m = self.models
        frames = noisy.shape[2]
        self.bank.states = {}
        m.reference_net(cond.reference_latent)
        audio = m.audio_projection(cond.windows)
        audio = audio * cond.audio_keep.repeat_interleave(frames)[:, None, None].to(audio.dtype)
        face = m.face_locator(cond.face_mask)
        try:
            with _label_keep(m.unet.class_embedding, cond.label_keep):
                return m.unet(noisy, timesteps, audio, cond.labels, face_latent=face, motion_latents=cond.motion)
        finally:
            self.bank.states = {}
