"""``facetalk bench avatar --engine diffusion``: speed, first clip, FLOPs, int8, pipeline, drift.

All timings are wall-clock on this machine with random or given weights;
quality figures (PSNR) compare our own outputs with each other, since random
weights have no ground truth. The GPU projection is an estimate from counted
FLOPs and an assumed utilisation, never a measurement.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...config import Expression
from ..audio import AudioFeatures
from ..labels import Label
from ..persona import PersonaPack
from .components import build_models
from .configs import get_config
from .drift import DriftGuard
from .engine import DiffusionEngine, DiffusionOptions, _load_models
from .expression import posed_reference
from .flops import clip_flops
from .parallel import StagedRenderer
from .threads import torch_threads

__all__ = ["GPUS", "DiffusionBenchResult", "GpuProjection", "bench_diffusion", "project_gpu"]

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


@dataclass
class DiffusionBenchResult:
    """The JSON of ``facetalk bench avatar --engine diffusion --json``.

    Attributes:
        engine, config, steps, resolution (generated side, px), fps (the clip frame rate asked for).
        gen_fps: frames generated per wall-clock second in max-length clips, sequential.
        first_clip_ms: median time to render a one-frame first clip (engine only).
        params: parameters of all five models.
        flops_per_frame: counted FLOPs per frame in max-length clips (torch's flop counter).
        int8_speedup: fp32 time ÷ int8 time for the same clips.
        int8_psnr_db: PSNR of int8 frames against fp32 frames (same seed).
        pipeline_speedup: sequential time ÷ staged (threaded) time for the same clips.
        drift_psnr_db: PSNR outside the head vs the posed reference after ``soak_s`` of
            content, drift guards on; ``drift_psnr_db_unguarded`` with them off;
            ``vae_ceiling_psnr_db`` is the VAE's own reconstruction of the reference.
        soak_s: seconds of content of the drift soak.
        threads: torch intra-op threads used (restored afterwards).
        projection: the ``--project-gpu`` estimate, if asked for.
    """

    engine: str
    config: str
    steps: int
    resolution: int
    fps: int
    gen_fps: float
    first_clip_ms: float
    params: int
    flops_per_frame: int
    int8_speedup: float
    int8_psnr_db: float
    pipeline_speedup: float
    drift_psnr_db: float
    drift_psnr_db_unguarded: float
    vae_ceiling_psnr_db: float
    soak_s: float
    threads: int
    projection: GpuProjection | None = None


def _speech(frames: int, fps: int, seed: int = 0) -> list[AudioFeatures]:
    """Syllable-like features: ~4 Hz energy bursts with varying brightness."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    energy = np.clip(0.5 + 0.5 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 1, frames)), 0, 1)
    return [AudioFeatures(float(e), float(rng.uniform(0.2, 0.8)), float(rng.uniform(0, 0.4))) for e in energy]


def _clips(features: list[AudioFeatures], size: int) -> list[tuple[list[AudioFeatures | None], Label]]:
    """Max-length speaking clips, with a listening and an idle clip every few seconds."""
    jobs: list[tuple[list[AudioFeatures | None], Label]] = []
    for i in range(0, len(features), size):
        turn = (i // size) % 12
        label = Label.SPEAKING if turn < 8 else Label.LISTENING if turn < 10 else Label.IDLE
        chunk: list[AudioFeatures | None] = list(features[i:i + size]) if label == Label.SPEAKING else [None] * size
        jobs.append((chunk[: len(features[i:i + size])], label))
    return jobs


def _psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    diff = a.astype(np.float64) - b.astype(np.float64)
    err = float(np.mean(diff[where] ** 2 if where is not None else diff**2))
    return float("inf") if err == 0 else round(10 * np.log10(255.0**2 / err), 2)


def _timed(engine: DiffusionEngine, jobs: list[tuple[list[AudioFeatures | None], Label]]) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    frames = [f for features, label in jobs for f in engine.render_clip(features, label).frames]
    return time.perf_counter() - start, frames


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


def bench_diffusion(pack: PersonaPack, *, config: str = "tiny", steps: int = 2, devices: tuple[str, ...] = ("cpu",),
                    checkpoint: Path | None = None, fps: int = 25, seconds: float = 8.0, soak_s: float = 20.0,
                    threads: int = 1, gpu: str | None = None, seed: int = 0) -> DiffusionBenchResult:
    """Measure the diffusion engine on synthetic speech features (see :class:`DiffusionBenchResult`)."""
    options = DiffusionOptions(config=config, checkpoint=checkpoint, steps=steps, devices=devices, seed=seed)
    cfg = get_config(config)
    projection = project_gpu(gpu, steps=steps) if gpu else None
    with torch_threads(threads):
        models = _load_models(cfg, options) if checkpoint else build_models(cfg, seed=seed)
        make = lambda **kw: DiffusionEngine(pack, options=dataclasses.replace(options, **kw),  # noqa: E731
                                            models=models)
        jobs = _clips(_speech(int(seconds * fps), fps), cfg.max_clip_frames)
        # 1. Sequential speed, and the first (one-frame) clip's latency.
        engine = make()
        engine.render_clip(jobs[0][0], Label.SPEAKING)  # warm-up
        engine.reset(seed=seed)
        seq_s, fp32_frames = _timed(engine, jobs)
        first = []
        for _ in range(5):
            engine.reset()
            start = time.perf_counter()
            engine.render_clip(jobs[0][0][:1], Label.SPEAKING)
            first.append((time.perf_counter() - start) * 1000)
        # 2. int8 against fp32, same seed and clips.
        int8 = make(int8=True)
        int8.render_clip(jobs[0][0], Label.SPEAKING)
        int8.reset(seed=seed)
        int8_s, int8_frames = _timed(int8, jobs)
        # 3. Staged threads against sequential.
        staged = make()
        start = time.perf_counter()
        for _ in StagedRenderer(staged).map(jobs):
            pass
        staged_s = time.perf_counter() - start
        # 4. Drift soak, guards on and off.
        soak_jobs = _clips(_speech(int(soak_s * fps), fps, seed=1), cfg.max_clip_frames)
        image, _, head = posed_reference(pack, Expression(), cfg.resolution)
        outside = np.repeat((head < 1e-3)[:, :, None], 3, axis=2)
        drift = {}
        for name, guard in (("on", DriftGuard()), ("off", DriftGuard.off())):
            soaked = make(drift=guard)
            last = None
            for features, label in soak_jobs:
                last = soaked.pipeline.to_uint8(soaked.decode_stage(soaked.denoise_stage(
                    soaked.audio_stage(features), label)))[-1]
            drift[name] = _psnr(last, image, outside)
        recon = engine.pipeline.to_uint8(engine.pipeline.decode(engine.reference.latent[:, :, None]))[0]
    return DiffusionBenchResult(
        engine="diffusion", config=config, steps=steps, resolution=cfg.resolution, fps=fps,
        gen_fps=round(len(fp32_frames) / seq_s, 1), first_clip_ms=round(statistics.median(first), 1),
        params=models.num_parameters(), flops_per_frame=clip_flops(cfg, frames=cfg.max_clip_frames, steps=steps)
        // cfg.max_clip_frames,
        int8_speedup=round(seq_s / int8_s, 2), int8_psnr_db=_psnr(np.stack(int8_frames), np.stack(fp32_frames)),
        pipeline_speedup=round(seq_s / staged_s, 2), drift_psnr_db=drift["on"], drift_psnr_db_unguarded=drift["off"],
        vae_ceiling_psnr_db=_psnr(recon, image, outside), soak_s=soak_s, threads=threads, projection=projection,
    )
