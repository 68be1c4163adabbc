"""Stage 2: LCM-style consistency distillation of a 1/2/4-step student (``facetalk train distill``).

The student starts as a copy of the teacher; an EMA copy of the student is
the target network (LCM's θ⁻, decay ``ema_decay``); the teacher is frozen.
One step of the loss is described in :mod:`.objectives`. With
``guidance > 1`` the teacher's DDIM step uses classifier-free guidance on the
audio (``ε(label, no audio) + w (ε(label, audio) - ε(label, no audio))``, the
audio dropout the teacher was trained with), so the student inherits a
stronger audio → mouth response at no sampling cost (LCM's guided
distillation, with one fixed scale instead of an embedded one). Guiding on
audio alone, not label and audio, because with independent 10 % dropouts the
teacher saw both dropped in only 1 % of its clips. The student keeps the
teacher's interface, so the engine samples it with its LCMScheduler unchanged.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from ..diffusion.checkpoint import models_for
from ..diffusion.components import DiffusionModels
from ..diffusion.configs import DiffusionConfig
from .conditioning import DropoutRates, prepare_batch
from .dataset import ClipBatch
from .denoiser import Denoiser
from .objectives import LCM_SKIP, NoiseSchedule, weighted_mse

__all__ = ["DistillTask"]


class DistillTask:
    """Consistency distillation from a teacher checkpoint.

    Args:
        config: the model config (must be the teacher's).
        teacher: the teacher's checkpoint folder (``RUN/final`` or a checkpoint), or its models in memory.
        device: where it trains.
        guidance: CFG scale of the teacher's solver step (1 = no guidance, one teacher pass).
        ema_decay: decay of the target network.
        dropout: CFG dropout while distilling (keeps the student's unconditional branch alive).
        mouth_weight, motion_noise_max: as for the teacher.

    Raises:
        FaceTalkError: the teacher folder is missing or was saved for another config.
    """

    stage = "distill"
    columns = ["mean_t"]

    def __init__(self, config: DiffusionConfig, *, teacher: Path | DiffusionModels, device: torch.device, guidance: float = 1.0,
                 ema_decay: float = 0.95, dropout: DropoutRates | None = None, mouth_weight: float = 3.0,
                 motion_noise_max: int = 100) -> None:
        self.config, self.device = config, device
        teacher_models = models_for(teacher, config).to(device)
        self.vae = teacher_models.vae.eval().requires_grad_(False)
        student_models = copy.deepcopy(teacher_models)
        target_models = copy.deepcopy(teacher_models)
        self.teacher, self.student, self.target = (Denoiser(m) for m in (teacher_models, student_models, target_models))
        for module in self.teacher.trainable() + self.target.trainable():
            module.eval().requires_grad_(False)
        for module in self.student.trainable():
            module.train()
        self.schedule = NoiseSchedule()
        self.guidance, self.ema_decay = guidance, ema_decay
        self.dropout = dropout or DropoutRates(label=0.05, audio=0.05)
        self.mouth_weight, self.motion_noise_max = mouth_weight, motion_noise_max

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for m in self.student.trainable() for p in m.parameters()]

    def _weights(self, denoiser: Denoiser) -> dict[str, Any]:
        m = denoiser.models
        return {"unet": m.unet.state_dict(), "reference_net": m.reference_net.state_dict(),
                "audio_projection": m.audio_projection.state_dict(), "face_locator": m.face_locator.state_dict()}

    def state_dict(self) -> dict[str, Any]:
        return {"student": self._weights(self.student), "target": self._weights(self.target)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, denoiser in (("student", self.student), ("target", self.target)):
            for name, weights in state[key].items():
                getattr(denoiser.models, name).load_state_dict(weights)

    def loss(self, batch: ClipBatch, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        x0, cond = prepare_batch(batch, self.vae, self.schedule, device=self.device, generator=generator,
                                 dropout=self.dropout, motion_noise_max=self.motion_noise_max,
                                 mouth_weight=self.mouth_weight)
        b = x0.shape[0]
        points = self.schedule.num_train_timesteps // LCM_SKIP
        t = (torch.randint(0, points, (b,), generator=generator) * LCM_SKIP + LCM_SKIP - 1).to(self.device)
        t_prev = t - LCM_SKIP  # -1 at the last point: the clean end
        noise = torch.randn(x0.shape, generator=generator).to(self.device)
        x_t = self.schedule.add_noise(x0, noise, t)
        pred = self.schedule.consistency(x_t, self.student(x_t, t, cond), t)
        with torch.no_grad():
            eps = self.teacher(x_t, t, cond)
            if self.guidance != 1.0:
                eps_u = self.teacher(x_t, t, cond.without_audio())
                eps = eps_u + self.guidance * (eps - eps_u)
            x0_hat = self.schedule.predict_x0(x_t, eps, t)
            x_prev = self.schedule.add_noise(x0_hat, eps, t_prev)
            target = self.schedule.consistency(x_prev, self.target(x_prev, t_prev.clamp(min=0), cond), t_prev)
        return weighted_mse(pred, target, cond.weight), {"mean_t": round(float(t.float().mean()), 1)}

    @torch.no_grad()
    def after_step(self) -> None:
        """EMA of the student into the target network."""
        for s, t in zip(self.student.trainable(), self.target.trainable(), strict=True):
            for ps, pt in zip(s.parameters(), t.parameters(), strict=True):
                pt.lerp_(ps, 1.0 - self.ema_decay)

    def export(self, folder: Path) -> None:
        """The student, with the teacher's frozen VAE."""
        self.student.models.save_pretrained(folder)
