"""Stage 1: the multi-step teacher (``facetalk train teacher``), ε-objective, VAE frozen.

Trains the denoiser, ReferenceNet, audio projection and face locator together
(as LLIA's single-stage recipe does once the VAE is fixed) with the loss of
:mod:`.objectives`, label and audio dropout of :mod:`.conditioning`, and the
clip-length schedule of :mod:`.schedule` (applied by the trainer). Sampled
with DDIM (25 steps) it is the reference the distilled student is measured against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..diffusion.checkpoint import models_for
from ..diffusion.components import DiffusionModels, build_models
from ..diffusion.configs import DiffusionConfig
from .conditioning import DropoutRates, prepare_batch
from .dataset import ClipBatch
from .denoiser import Denoiser
from .objectives import NoiseSchedule, weighted_mse

__all__ = ["TeacherTask"]


class TeacherTask:
    """ε-prediction training of the engine's models on a frozen VAE.

    Args:
        config: the model config.
        vae: a checkpoint folder whose ``vae/`` is used (from ``facetalk train vae``), or models in memory.
        device: where it trains.
        seed: initialisation of the trained models.
        dropout: CFG dropout rates.
        mouth_weight: loss weight inside the lips box.
        motion_noise_max: motion latents are noised to a timestep in ``0..motion_noise_max``.
    """

    stage = "teacher"
    columns = ["mean_t", "label_dropped", "audio_dropped"]

    def __init__(self, config: DiffusionConfig, *, vae: Path | DiffusionModels, device: torch.device, seed: int = 0,
                 dropout: DropoutRates | None = None, mouth_weight: float = 3.0,
                 motion_noise_max: int = 100) -> None:
        self.config, self.device = config, device
        frozen_vae = models_for(vae, config).vae  # first: refuses another config's VAE before building
        self.models = build_models(config, seed=seed)
        self.models.vae = frozen_vae
        self.models.to(device)
        self.vae = self.models.vae.eval().requires_grad_(False)
        self.denoiser = Denoiser(self.models)
        for module in self.denoiser.trainable():
            module.train()
        self.schedule = NoiseSchedule()
        self.dropout = dropout or DropoutRates()
        self.mouth_weight, self.motion_noise_max = mouth_weight, motion_noise_max

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for m in self.denoiser.trainable() for p in m.parameters()]

    def state_dict(self) -> dict[str, Any]:
        m = self.models
        return {"unet": m.unet.state_dict(), "reference_net": m.reference_net.state_dict(),
                "audio_projection": m.audio_projection.state_dict(), "face_locator": m.face_locator.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, weights in state.items():
            getattr(self.models, name).load_state_dict(weights)

    def loss(self, batch: ClipBatch, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        x0, cond = prepare_batch(batch, self.vae, self.schedule, device=self.device, generator=generator,
                                 dropout=self.dropout, motion_noise_max=self.motion_noise_max,
                                 mouth_weight=self.mouth_weight)
        t = torch.randint(0, self.schedule.num_train_timesteps, (x0.shape[0],), generator=generator).to(self.device)
        noise = torch.randn(x0.shape, generator=generator).to(self.device)
        pred = self.denoiser(self.schedule.add_noise(x0, noise, t), t, cond)
        loss = weighted_mse(pred, noise, cond.weight)
        return loss, {"mean_t": round(float(t.float().mean()), 1),
                      "label_dropped": int((cond.label_keep == 0).sum()),
                      "audio_dropped": int((cond.audio_keep == 0).sum())}

    def after_step(self) -> None:
        pass

    def export(self, folder: Path) -> None:
        self.models.save_pretrained(folder)
