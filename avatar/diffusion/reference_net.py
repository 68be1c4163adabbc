"""ReferenceNet: the spatial twin of the denoiser that reads the (expression-posed) reference portrait."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import ConfigMixin, ModelMixin, UNet2DConditionModel
from diffusers.configuration_utils import register_to_config
from torch import nn

__all__ = ["ReferenceNet", "spatial_unet_config"]

_BLOCKS_2D = {
    "CrossAttnDownBlockMotion": "CrossAttnDownBlock2D", "DownBlockMotion": "DownBlock2D",
    "CrossAttnUpBlockMotion": "CrossAttnUpBlock2D", "UpBlockMotion": "UpBlock2D",
}


def spatial_unet_config(unet: dict[str, Any]) -> dict[str, Any]:
    """``UNet2DConditionModel`` arguments matching a ``UNetMotionModel`` config's spatial layers.

    Layer names then line up one-to-one, which is what lets the reference
    tokens of ``down_blocks.0.attentions.0...attn1`` reach the same layer in
    the denoiser, and what lets SD1.5 weights initialise both.
    """
    return {
        "block_out_channels": tuple(unet["block_out_channels"]),
        "down_block_types": tuple(_BLOCKS_2D[b] for b in unet["down_block_types"]),
        "up_block_types": tuple(_BLOCKS_2D[b] for b in unet["up_block_types"]),
        "layers_per_block": unet["layers_per_block"],
        "norm_num_groups": unet["norm_num_groups"],
        "cross_attention_dim": unet["cross_attention_dim"],
        "attention_head_dim": unet["num_attention_heads"],  # SD1.5 calls the head count this
    }


class ReferenceNet(ModelMixin, ConfigMixin):
    """Runs the reference latent through SD1.5-shaped spatial layers at timestep 0.

    Its output is not used: what matters is what its self-attention layers
    write into the :class:`~.reference_attention.ReferenceBank` on the way.
    Its cross-attention (text in SD1.5) gets one learned context token, since
    the reference path has no audio.

    Args:
        unet: a config's ``unet`` (``UNetMotionModel`` arguments); the spatial part is used.
    """

    @register_to_config
    def __init__(self, unet: dict[str, Any]) -> None:
        super().__init__()
        self.backbone = UNet2DConditionModel(**spatial_unet_config(unet))
        self.context = nn.Parameter(torch.zeros(1, 1, unet["cross_attention_dim"]))

    def forward(self, reference_latent: torch.Tensor) -> None:
        """Fill the bank from ``(B, C, h, w)`` reference latents."""
        context = self.context.expand(reference_latent.shape[0], -1, -1).to(reference_latent.dtype)
        self.backbone(reference_latent, 0, encoder_hidden_states=context)
