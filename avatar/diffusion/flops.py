"""FLOPs per generated frame, counted by torch's flop counter on shapes only (meta tensors).

Counting on the ``meta`` device needs no weights and no compute, so the
SD1.5-sized ``base-512`` is counted on this CPU in seconds. Only matmuls and
convolutions are counted (what ``torch.utils.flop_counter`` covers), which
is what dominates on a GPU. Per clip of ``F`` frames it counts ``steps``
denoiser passes over ``F + motion_frames`` frames, the audio projection, and
the VAE decode of ``F`` frames; ReferenceNet runs once per persona and
expression, so it is not part of a frame's cost.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from .components import build_models
from .configs import DiffusionConfig

__all__ = ["clip_flops"]


def clip_flops(config: DiffusionConfig, *, frames: int, steps: int) -> int:
    """FLOPs to generate one clip of ``frames`` frames with ``steps`` sampling steps."""
    with torch.device("meta"):
        models = build_models(config)
        c, h = config.vae["latent_channels"], config.latent_size
        motion = config.motion_frames
        sample = torch.empty(1, c, frames, h, h)
        windows = torch.empty(frames, config.audio_window, 4)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            audio = models.audio_projection(windows)
            for _ in range(steps):
                models.unet(sample, 500, audio, torch.zeros(1, dtype=torch.long),
                            face_latent=torch.empty(1, c, h, h), motion_latents=torch.empty(1, c, motion, h, h))
            models.vae.decode(torch.empty(frames, c, h, h))
    return int(counter.get_total_flops())
