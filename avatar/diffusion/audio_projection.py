"""The audio projection: per-frame audio windows → cross-attention tokens."""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .configs import AUDIO_FEATURES

__all__ = ["AudioProjection"]


class AudioProjection(ModelMixin, ConfigMixin):
    """Embeds each frame's audio window as ``window`` tokens for the UNet's cross-attention.

    A small MLP per audio frame plus a learned embedding of the position in the
    window (so the model can tell "now" from "40 ms later").

    Args:
        in_features: size of one audio frame's vector (4, see :mod:`.audio_windows`).
        window: audio frames per video frame.
        hidden: MLP width.
        cross_attention_dim: token width the UNet's cross-attention expects.
    """

    @register_to_config
    def __init__(self, in_features: int = AUDIO_FEATURES, window: int = 5, hidden: int = 64,
                 cross_attention_dim: int = 32) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_features, hidden), nn.SiLU(), nn.Linear(hidden, cross_attention_dim))
        self.position = nn.Parameter(torch.randn(window, cross_attention_dim) * 0.02)
        self.norm = nn.LayerNorm(cross_attention_dim)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """``(N, window, in_features)`` float → ``(N, window, cross_attention_dim)`` tokens."""
        return self.norm(self.mlp(windows) + self.position)
