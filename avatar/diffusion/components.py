"""The five models of the diffusion engine, built from a config."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from diffusers import AutoencoderKL, AutoencoderTiny
from diffusers.models.modeling_utils import ModelMixin

from .audio_projection import AudioProjection
from .configs import DiffusionConfig
from .face_locator import FaceLocator
from .reference_net import ReferenceNet
from .unet import TalkingFaceUNet

__all__ = ["DiffusionModels", "build_models"]


@dataclass
class DiffusionModels:
    """The engine's models; each is a diffusers ``ModelMixin`` saved in its own subfolder.

    Attributes:
        vae: pixel ↔ latent autoencoder (``AutoencoderKL`` or ``AutoencoderTiny``).
        unet: the denoiser.
        reference_net: reads the reference portrait.
        audio_projection: audio windows → cross-attention tokens.
        face_locator: face mask → latent offset.
    """

    vae: AutoencoderKL | AutoencoderTiny
    unet: TalkingFaceUNet
    reference_net: ReferenceNet
    audio_projection: AudioProjection
    face_locator: FaceLocator

    def items(self) -> list[tuple[str, ModelMixin]]:
        """``(subfolder name, model)`` pairs, in a fixed order."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    def to(self, device: torch.device) -> DiffusionModels:
        for _, model in self.items():
            model.to(device)
        return self

    def eval(self) -> DiffusionModels:
        for _, model in self.items():
            model.eval()
        return self

    def num_parameters(self) -> int:
        return sum(p.numel() for _, m in self.items() for p in m.parameters())


def build_models(config: DiffusionConfig, *, seed: int = 0) -> DiffusionModels:
    """Randomly initialised models for ``config``; equal seeds give equal weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae_class = AutoencoderKL if config.vae_type == "kl" else AutoencoderTiny
        return DiffusionModels(
            vae=vae_class(**config.vae),
            unet=TalkingFaceUNet(unet=config.unet, num_class_embeds=config.num_class_embeds),
            reference_net=ReferenceNet(unet=config.unet),
            audio_projection=AudioProjection(window=config.audio_window, hidden=config.audio_hidden,
                                             cross_attention_dim=config.unet["cross_attention_dim"]),
            face_locator=FaceLocator(channels=config.locator_channels,
                                     latent_channels=config.vae["latent_channels"]),
        ).eval()
