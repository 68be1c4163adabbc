"""The light decoder: TAESD's decoder (``AutoencoderTiny``'s) distilled from the engine's KL VAE decoder.

At base-512 the SD VAE decodes 16 frames in about the time the whole
denoising takes (207 vs 233 ms in bf16 on an H200). TAESD's decoder is a
stack of plain 3x3 convolutions, about 40x cheaper per frame; trained to
reproduce the engine's own KL decoder on the engine's latents
(``facetalk train decoder``), it replaces the decode stage with no change to
the denoiser. The KL VAE stays for encoding the reference.

A light decoder records the engine config it was distilled for and is
refused by any other (its latents differ).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderTiny, ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

from ...errors import FaceTalkError
from .configs import DiffusionConfig

__all__ = ["BUNDLED_LIGHT_DECODER", "LightDecoder", "load_light_decoder"]

BUNDLED_LIGHT_DECODER = Path(__file__).parent / "checkpoint" / "light_decoder"
"""The light decoder distilled for ``tiny`` from the bundled checkpoint's VAE (docs/diffusion-gpu.md)."""

_SIZES = {
    # TAESD's decoder for the SD-sized configs; a narrow one for tiny's 8-16 channel VAE.
    "tiny": {"block_out_channels": (16, 16, 16, 16), "num_blocks": (1, 1, 1, 1)},
    "base": {"block_out_channels": (64, 64, 64, 64), "num_blocks": (3, 3, 3, 1)},
}


class LightDecoder(ModelMixin, ConfigMixin):
    """Engine latents → images, as the engine's KL decoder would make them.

    Args:
        engine_config: the engine config whose latents it decodes (checked on load).
        latent_channels: channels of those latents.
        block_out_channels, num_blocks: the decoder's widths and blocks per stage;
            ``len - 1`` nearest-neighbour 2x upsamplings (8x for four stages).
    """

    @register_to_config
    def __init__(self, engine_config: str, latent_channels: int = 4,
                 block_out_channels: tuple[int, ...] = (64, 64, 64, 64),
                 num_blocks: tuple[int, ...] = (3, 3, 3, 1)) -> None:
        super().__init__()
        # TAESD's decoder as AutoencoderTiny builds it (diffusers exports no DecoderTiny); its encoder is dropped.
        self.decoder = AutoencoderTiny(latent_channels=latent_channels, out_channels=3,
                                       num_decoder_blocks=tuple(num_blocks),
                                       decoder_block_out_channels=tuple(block_out_channels),
                                       upsampling_scaling_factor=2, act_fn="relu", upsample_fn="nearest").decoder

    @classmethod
    def for_config(cls, config: DiffusionConfig) -> LightDecoder:
        """A freshly initialised light decoder sized for ``config``."""
        sizes = _SIZES["tiny" if config.name == "tiny" else "base"]
        return cls(engine_config=config.name, latent_channels=config.vae["latent_channels"], **sizes)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """``(N, C, h, w)`` scaled engine latents → ``(N, 3, 8h, 8w)`` images, about [-1, 1]."""
        return self.decoder(latents)


def load_light_decoder(folder: Path, config: DiffusionConfig) -> LightDecoder:
    """The light decoder saved in ``folder`` (``save_pretrained``), checked against ``config``.

    Raises:
        FaceTalkError: the folder is missing or not a light decoder, or it was distilled for another config.
    """
    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FaceTalkError(f"no light decoder in {folder} (no config.json)",
                            hint=f"train one: facetalk train decoder --config {config.name} --out DIR, "
                                 "then point decoder_checkpoint at DIR/final")
    saved = json.loads(config_file.read_text())
    if saved.get("_class_name") != LightDecoder.__name__:
        raise FaceTalkError(f"{folder} holds a {saved.get('_class_name')}, not a light decoder",
                            hint="point decoder_checkpoint at the final/ folder of 'facetalk train decoder'")
    if saved.get("engine_config") != config.name:
        raise FaceTalkError(f"{folder} is a light decoder for {saved.get('engine_config')!r}, not {config.name!r}",
                            hint=f"train one for {config.name}: facetalk train decoder --config {config.name}")
    return LightDecoder.from_pretrained(folder).eval()
