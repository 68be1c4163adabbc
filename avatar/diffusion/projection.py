"""What a GPU's FLOP/s would allow the diffusion engine: an estimate from counted FLOPs, never a measurement.

``facetalk bench avatar --engine diffusion --project-gpu rtx4090`` adds it to
the bench's JSON beside LLIA's published figures, for a machine without the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from .configs import get_config
from .flops import clip_flops

__all__ = ["GPUS", "LLIA", "UTILISATION", "GpuProjection", "project_gpu"]

GPUS = {"rtx4090": 165.2e12, "a100": 312e12, "h100": 989e12}
"""Dense fp16 tensor-core peak FLOP/s (fp32 accumulate for the 4090) from the vendors' datasheets."""
UTILISATION = 0.4
"""Assumed fraction of peak a UNet reaches in fp16 (convolutions and attention at these sizes)."""
LLIA = {"fps": 45.0, "first_clip_ms": 215.0, "resolution": 512}
"""LLIA's reported figures on an RTX 4090 (arXiv 2506.05806)."""


@dataclass
class GpuProjection:
    """A FLOPs-based estimate for a GPU (not a measurement).

    Attributes:
        label: always says it is an estimate.
        gpu: the GPU name; config, steps: what is projected.
        flops_per_frame: counted FLOPs per frame of the projected config.
        peak_tflops, utilisation: the assumed throughput.
        est_fps: frames per second the FLOPs allow on one GPU.
        est_first_clip_ms: compute time of a one-frame first clip.
        llia_fps, llia_first_clip_ms: LLIA's published figures, for comparison.
    """

    label: str
    gpu: str
    config: str
    steps: int
    flops_per_frame: int
    peak_tflops: float
    utilisation: float
    est_fps: float
    est_first_clip_ms: float
    llia_fps: float
    llia_first_clip_ms: float


def project_gpu(gpu: str, *, config: str = "base-512", steps: int = 2) -> GpuProjection:
    """Frames per second and first-clip time that ``gpu``'s FLOP/s allow for ``config`` (an estimate)."""
    cfg = get_config(config)
    per_frame = clip_flops(cfg, frames=cfg.max_clip_frames, steps=steps) // cfg.max_clip_frames
    rate = GPUS[gpu] * UTILISATION
    return GpuProjection(
        label=f"ESTIMATE from counted FLOPs at {UTILISATION:.0%} of {gpu} fp16 peak; not measured",
        gpu=gpu, config=config, steps=steps, flops_per_frame=per_frame, peak_tflops=GPUS[gpu] / 1e12,
        utilisation=UTILISATION, est_fps=round(rate / per_frame, 1),
        est_first_clip_ms=round(clip_flops(cfg, frames=1, steps=steps) / rate * 1000, 1),
        llia_fps=LLIA["fps"], llia_first_clip_ms=LLIA["first_clip_ms"],
    )
