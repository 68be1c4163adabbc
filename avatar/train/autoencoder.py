"""Stage 0: fit the config's VAE to the dataset's frames (``facetalk train vae``).

The ``tiny`` config has no pretrained autoencoder (SD1.5's VAE fits only
``base-512``), so before diffusion training its small AutoencoderKL learns to
reconstruct this dataset's faces: L1 in pixels, weighted ``mouth_weight``
inside the lips box (the detail lip sync lives in), plus a small KL term that
keeps the posterior near a Gaussian. The export sets the VAE's
``scaling_factor`` to ``1 / std`` of the latents seen in training (tracked as
a running mean), so diffusion sees unit-variance latents, as SD does with 0.18215.
The teacher then loads this VAE and keeps it frozen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..diffusion.components import build_models
from ..diffusion.configs import DiffusionConfig
from .dataset import ClipBatch

__all__ = ["AutoencoderTask"]


class AutoencoderTask:
    """Trains ``config``'s AutoencoderKL on single frames.

    Args:
        config: the model config (``vae_type`` must be ``kl``).
        device: where it trains.
        seed: model initialisation.
        mouth_weight: L1 weight inside the lips box.
        kl_weight: weight of the mean KL divergence.
    """

    stage = "vae"
    columns = ["l1", "kl", "latent_std"]

    def __init__(self, config: DiffusionConfig, *, device: torch.device, seed: int = 0,
                 mouth_weight: float = 3.0, kl_weight: float = 1e-4) -> None:
        self.config, self.device = config, device
        self.models = build_models(config, seed=seed)
        self.vae = self.models.vae.to(device).train()
        self.mouth_weight, self.kl_weight = mouth_weight, kl_weight
        self.latent_std = 1.0

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.vae.parameters())

    def state_dict(self) -> dict[str, Any]:
        return {"vae": self.vae.state_dict(), "latent_std": self.latent_std}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.vae.load_state_dict(state["vae"])
        self.latent_std = float(state["latent_std"])

    def loss(self, batch: ClipBatch, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        frames = torch.from_numpy(batch.frames).to(self.device).flatten(0, 1)
        x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        posterior = self.vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator).to(self.device)
        recon = self.vae.decode(z).sample
        weight = torch.ones((len(batch.frames), 1, 1, *x.shape[-2:]))
        for i, (x0, y0, x1, y1) in enumerate(batch.lips_box.tolist()):
            weight[i, :, :, y0:y1, x0:x1] = self.mouth_weight
        weight = weight.repeat_interleave(batch.frames.shape[1], dim=0).flatten(0, 1).to(self.device)
        l1 = ((recon - x).abs() * weight).mean() / weight.mean()
        kl = posterior.kl().mean() / posterior.mean[0].numel()
        with torch.no_grad():
            self.latent_std = 0.98 * self.latent_std + 0.02 * float(posterior.mean.std())
        return l1 + self.kl_weight * kl, {"l1": round(l1.item(), 6), "kl": round(kl.item(), 6),
                                          "latent_std": round(self.latent_std, 5)}

    def after_step(self) -> None:
        pass

    def export(self, folder: Path) -> None:
        """All five models (only the VAE trained), the VAE scaled to unit-variance latents."""
        self.vae.register_to_config(scaling_factor=1.0 / max(self.latent_std, 1e-3))
        self.models.save_pretrained(folder)
