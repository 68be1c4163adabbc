"""``facetalk train decoder``: distil a light (TAESD-shaped) decoder from the engine's KL VAE decoder.

The student sees what the engine's decoder sees: latents of the dataset's
frames encoded by the engine's own VAE (its posterior mode, times the
scaling factor), each lightly jittered with Gaussian noise, since sampled
latents are never exactly on the encoder's manifold. The target is the KL
decoder's output for the same latents, not the frames: the student learns
to be a cheap copy of that decoder, so its PSNR against the KL decode is the
figure that matters (reported per step as ``psnr_vs_kl``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..diffusion.checkpoint import models_for
from ..diffusion.components import DiffusionModels
from ..diffusion.configs import DiffusionConfig
from ..diffusion.light_decoder import LightDecoder
from .dataset import ClipBatch

__all__ = ["DecoderTask", "kl_decoder_targets", "light_decoder_psnr"]


def kl_decoder_targets(vae: torch.nn.Module, frames: torch.Tensor, noise: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(latents, images)``: the engine's latents of uint8 ``(N, H, W, 3)`` frames and the KL decode of them.

    ``noise`` (shaped like the latents) is added to the latents before decoding.
    """
    with torch.no_grad():
        x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        scale = vae.config.scaling_factor
        latents = vae.encode(x).latent_dist.mode() * scale
        if noise is not None:
            latents = latents + noise
        return latents, vae.decode(latents / scale).sample.clamp(-1.0, 1.0)


class DecoderTask:
    """Trains a :class:`LightDecoder` for ``config`` against the VAE of ``checkpoint``.

    Args:
        config: the engine config (its latents).
        checkpoint: an engine checkpoint folder (its ``vae/`` is the teacher), or models in memory.
        device: where it trains.
        seed: initialisation of the light decoder.
        latent_noise: standard deviation of the jitter added to the latents.
    """

    stage = "decoder"
    columns = ["psnr_vs_kl"]

    def __init__(self, config: DiffusionConfig, *, checkpoint: Path | DiffusionModels, device: torch.device,
                 seed: int = 0, latent_noise: float = 0.1) -> None:
        self.config, self.device, self.latent_noise = config, device, latent_noise
        self.vae = models_for(checkpoint, config).vae.to(device).eval().requires_grad_(False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.decoder = LightDecoder.for_config(config).to(device).train()

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.decoder.parameters())

    def state_dict(self) -> dict[str, Any]:
        return {"decoder": self.decoder.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decoder.load_state_dict(state["decoder"])

    def loss(self, batch: ClipBatch, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        frames = torch.from_numpy(batch.frames).flatten(0, 1).to(self.device)
        c, h = self.config.vae["latent_channels"], frames.shape[1] // self.config.vae_scale_factor
        noise = torch.randn((len(frames), c, h, h), generator=generator).to(self.device) * self.latent_noise
        latents, target = kl_decoder_targets(self.vae, frames, noise)
        pred = self.decoder(latents)
        mse = F.mse_loss(pred.float(), target)
        loss = (pred.float() - target).abs().mean() + mse
        return loss, {"psnr_vs_kl": round(10 * math.log10(4.0 / max(mse.item(), 1e-12)), 2)}

    def after_step(self) -> None:
        pass

    def export(self, folder: Path) -> None:
        """The light decoder, loadable with ``load_light_decoder``."""
        self.decoder.save_pretrained(folder, safe_serialization=True)


def light_decoder_psnr(decoder: LightDecoder, vae: torch.nn.Module, frames: torch.Tensor) -> float:
    """PSNR (dB, uint8 images) of ``decoder``'s images against the KL decode, on latents of ``frames``."""
    latents, target = kl_decoder_targets(vae, frames)
    with torch.no_grad():
        pred = decoder(latents).float().clamp(-1.0, 1.0)
    to_uint8 = lambda x: ((x + 1.0) * 127.5).round()  # noqa: E731
    mse = float((to_uint8(pred) - to_uint8(target)).square().mean())
    return round(10 * math.log10(255.0**2 / max(mse, 1e-12)), 2)
