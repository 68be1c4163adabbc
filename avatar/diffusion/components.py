"""The five models of the diffusion engine as a diffusers pipeline, built from a config."""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, AutoencoderTiny, DiffusionPipeline

from .audio_projection import AudioProjection
from .configs import DiffusionConfig
from .face_locator import FaceLocator
from .reference_net import ReferenceNet
from .unet import TalkingFaceUNet

__all__ = ["DiffusionModels", "build_models"]


class DiffusionModels(DiffusionPipeline):
    """The engine's models, registered as a diffusers pipeline's components.

    What diffusers gives a pipeline comes with it: ``save_pretrained`` writes
    ``model_index.json`` and one subfolder per model (``config.json`` +
    safetensors), ``from_pretrained`` reads them back, ``components`` and
    ``to`` work on all five. Sampling is not here: the engine's
    :class:`~.pipeline.TalkingFacePipeline` runs it with its own schedulers,
    so this class has no ``__call__``.

    Args:
        vae: pixel ↔ latent autoencoder (``AutoencoderKL`` or ``AutoencoderTiny``).
        unet: the denoiser.
        reference_net: reads the reference portrait.
        audio_projection: audio windows → cross-attention tokens.
        face_locator: face mask → latent offset.
        facetalk_config: the name of the :class:`~.configs.DiffusionConfig` the models were built for
            (``tiny``, ``base-384``, ``base-512``), saved in ``model_index.json`` so that a checkpoint
            is never loaded into another config's shapes.
    """

    def __init__(self, vae: AutoencoderKL | AutoencoderTiny, unet: TalkingFaceUNet, reference_net: ReferenceNet,
                 audio_projection: AudioProjection, face_locator: FaceLocator,
                 facetalk_config: str | None = None) -> None:
        super().__init__()
        self.register_modules(vae=vae, unet=unet, reference_net=reference_net, audio_projection=audio_projection,
                              face_locator=face_locator)
        self.register_to_config(facetalk_config=facetalk_config)

    def replace(self, **models: torch.nn.Module) -> DiffusionModels:
        """A bundle with ``models`` in place of the same-named ones (the others shared, not copied)."""
        return DiffusionModels(**{**self.components, **models}, facetalk_config=self.config.facetalk_config)

    def eval(self) -> DiffusionModels:
        """Every model in inference mode."""
        for model in self.components.values():
            model.eval()
        return self

    def num_parameters(self) -> int:
        return sum(p.numel() for m in self.components.values() for p in m.parameters())


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
            facetalk_config=config.name,
        ).eval()
