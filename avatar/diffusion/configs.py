"""Named model configurations of the diffusion engine: ``tiny``, ``base-384``, ``base-512``.

A :class:`DiffusionConfig` is plain data (no torch), so the CLI can list and
check configs without the ``diffusion`` extra. Each model's constructor
arguments live here once; checkpoints record the config name and refuse to
load into another.

- ``tiny``: 64² pixels, 8² latents, a few hundred thousand parameters per
  model; random-weight tests and the CPU training run of the training issue.
- ``base-384`` / ``base-512``: SD1.5-sized UNet (320-640-1280-1280 channels),
  so ``--init-from`` can load SD1.5 UNet and VAE weights; ``base-384`` uses the
  tiny autoencoder (TAESD-shaped) for speed, ``base-512`` SD1.5's AutoencoderKL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ...errors import FaceTalkError

__all__ = ["CONFIGS", "DiffusionConfig", "get_config"]

AUDIO_FEATURES = 4
"""Per-frame audio feature size: energy, brightness, noisiness, voiced flag (see :mod:`.audio_windows`)."""


@dataclass(frozen=True)
class DiffusionConfig:
    """Everything that shapes the diffusion engine's models and sampling.

    Attributes:
        name: config name, recorded in checkpoints.
        resolution: generated frame side in pixels (the engine resizes to the persona's).
        vae_type: ``"kl"`` (AutoencoderKL) or ``"tiny"`` (AutoencoderTiny).
        vae: constructor arguments of the VAE class.
        unet: constructor arguments of diffusers' ``UNetMotionModel`` (spatial
            layers + temporal motion modules); ReferenceNet mirrors its spatial part.
        num_class_embeds: number of labels (speaking, listening, idle).
        audio_window: audio frames each video frame attends to (centred).
        audio_hidden: hidden width of the audio projection.
        locator_channels: channels of the face-locator's conv stages.
        max_clip_frames: longest clip the engine renders in one call.
        motion_frames: latents of the previous clip's last frames fed to the next clip.
        notes: what the config is for (shown by the CLI).
    """

    name: str
    resolution: int
    vae_type: Literal["kl", "tiny"]
    vae: dict[str, Any]
    unet: dict[str, Any]
    num_class_embeds: int = 3
    audio_window: int = 5
    audio_hidden: int = 64
    locator_channels: tuple[int, ...] = (16, 32, 64)
    max_clip_frames: int = 8
    motion_frames: int = 2
    notes: str = field(default="", compare=False)

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell along one side (8 for every config here)."""
        blocks = self.vae.get("block_out_channels") or self.vae["encoder_block_out_channels"]
        return 2 ** (len(blocks) - 1)

    @property
    def latent_size(self) -> int:
        return self.resolution // self.vae_scale_factor


_TINY_UNET = {
    "block_out_channels": (32, 64),
    "down_block_types": ("CrossAttnDownBlockMotion", "DownBlockMotion"),
    "up_block_types": ("UpBlockMotion", "CrossAttnUpBlockMotion"),
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "cross_attention_dim": 32,
    "num_attention_heads": 2,
    "motion_num_attention_heads": 2,
    "motion_max_seq_length": 32,
    "time_cond_proj_dim": 32,
}

_SD15_UNET = {
    "block_out_channels": (320, 640, 1280, 1280),
    "down_block_types": ("CrossAttnDownBlockMotion",) * 3 + ("DownBlockMotion",),
    "up_block_types": ("UpBlockMotion",) + ("CrossAttnUpBlockMotion",) * 3,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "cross_attention_dim": 768,
    "num_attention_heads": 8,
    "motion_num_attention_heads": 8,
    "motion_max_seq_length": 32,
    "time_cond_proj_dim": 256,
}

_SD15_VAE = {
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "scaling_factor": 0.18215,
}

_TAESD_VAE = {
    "encoder_block_out_channels": (64, 64, 64, 64),
    "decoder_block_out_channels": (64, 64, 64, 64),
    "latent_channels": 4,
}

CONFIGS: dict[str, DiffusionConfig] = {
    "tiny": DiffusionConfig(
        name="tiny", resolution=64, vae_type="kl",
        vae={"block_out_channels": (8, 16, 16, 16), "down_block_types": ("DownEncoderBlock2D",) * 4,
             "up_block_types": ("UpDecoderBlock2D",) * 4, "layers_per_block": 1, "latent_channels": 4,
             "norm_num_groups": 4, "scaling_factor": 1.0},
        unet=_TINY_UNET, audio_hidden=32, locator_channels=(8, 16, 16),
        notes="CPU tests and CPU training; random or tiny-trained weights",
    ),
    "base-384": DiffusionConfig(
        name="base-384", resolution=384, vae_type="tiny", vae=_TAESD_VAE, unet=_SD15_UNET,
        audio_hidden=256, locator_channels=(16, 32, 96), max_clip_frames=16, motion_frames=4,
        notes="SD1.5 UNet, TAESD-shaped autoencoder; GPU",
    ),
    "base-512": DiffusionConfig(
        name="base-512", resolution=512, vae_type="kl", vae=_SD15_VAE, unet=_SD15_UNET,
        audio_hidden=256, locator_channels=(16, 32, 96), max_clip_frames=16, motion_frames=4,
        notes="SD1.5 UNet and VAE (LLIA's scale); GPU",
    ),
}


def get_config(name: str) -> DiffusionConfig:
    """The config called ``name``; a :class:`FaceTalkError` naming the choices otherwise."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise FaceTalkError(f"unknown diffusion config {name!r}", hint=f"use one of: {', '.join(CONFIGS)}") from None
