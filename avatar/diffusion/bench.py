"""``facetalk bench avatar --engine diffusion``: speed, first clips, stages, host syncs, precision, int8, pipeline, drift.

All timings are wall-clock on this machine with random or given weights;
quality figures (PSNR) compare our own outputs with each other, since random
weights have no ground truth. With ``gpu``, the result carries
:mod:`.projection`'s estimate, which is never a measurement.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ...config import Expression
from ..audio import AudioFeatures
from ..labels import Label
from ..measures import finite_or_none, psnr
from ..persona import PersonaPack
from .components import build_models
from .configs import get_config
from .drift import DriftGuard
from .engine import DiffusionEngine, DiffusionOptions, load_models, check_device
from .expression import posed_reference
from .flops import clip_flops
from .host_syncs import HostSyncs, count_host_syncs
from .parallel import StagedRenderer
from .precision import DTYPES, Dtype, Quantization
from .projection import GpuProjection, project_gpu
from .threads import torch_threads

__all__ = ["DiffusionBenchResult", "StageMs", "bench_diffusion", "first_clip_ms", "host_round_trips", "render_jobs",
           "speech_clips", "speech_features", "stage_ms"]

@dataclass
class StageMs:
    """Median milliseconds of each stage for one max-length clip (the device synchronised between stages).

    Attributes:
        audio: features → audio windows (host).
        denoise: noise draw, drift guard and the sampling loop (one graph replay when captured).
        decode: the VAE's (or light decoder's) decode of the clip.
        output: read-back to the host and resize to the persona's resolution.
    """

    audio: float
    denoise: float
    decode: float
    output: float


@dataclass
class DiffusionBenchResult:
    """The JSON of ``facetalk bench avatar --engine diffusion --json``.

    Attributes:
        engine, config, steps, resolution (generated side, px), fps (the clip frame rate asked for).
        devices: the devices (denoise, decode); dtype: the models' dtype; quantize: none/int8/fp8;
            decoder: kl or light; graphs: whether each clip length ran as captured CUDA graphs.
        gen_fps: frames generated per wall-clock second in max-length clips, sequential.
        first_clip_ms: median time to render a one-frame first clip (engine only, frames on the host).
        first_clip_4_ms: the same for a four-frame first clip.
        stage_ms: per-stage median milliseconds of a max-length clip.
        peak_gpu_mb: peak GPU memory allocated by torch over the run; ``None`` on the CPU.
        host_syncs_per_clip: host reads of device values between audio windows and decoded frames
            (CUDA: torch's sync debug mode; CPU: counted tensor methods, see :mod:`.host_syncs`).
        host_draws_per_clip: random draws per clip not made on the denoising device's generator.
        startup_s: seconds the engine took to prepare (capture) every clip length.
        psnr_vs_fp32_db: PSNR of these frames against the fp32, unquantized, KL-decoded path (same seed and clips);
            ``None`` when this run is that path.
        params: parameters of all five models.
        flops_per_frame: counted FLOPs per frame in max-length clips (torch's flop counter).
        int8_speedup: this run's time ÷ the int8 run's (CPU: dynamic int8 in fp32; GPU: torchao
            weight-only in this run's dtype); ``int8_psnr_db``: its frames against the fp32 path.
            ``None`` when skipped (``--no-extras``).
        pipeline_speedup: sequential time ÷ staged (threaded, two streams on CUDA) time; ``None`` when skipped.
        drift_psnr_db: PSNR outside the head vs the posed reference after ``soak_s`` of
            content, drift guards on; ``drift_psnr_db_unguarded`` with them off;
            ``vae_ceiling_psnr_db`` is the VAE's own reconstruction of the reference. ``None`` when skipped.
        soak_s: seconds of content of the drift soak.
        threads: torch intra-op threads used (restored afterwards).
        projection: the ``--project-gpu`` estimate, if asked for.
    """

    engine: str
    config: str
    steps: int
    resolution: int
    fps: int
    devices: list[str]
    dtype: str
    quantize: str
    decoder: str
    graphs: bool
    gen_fps: float
    first_clip_ms: float
    first_clip_4_ms: float
    stage_ms: StageMs
    peak_gpu_mb: float | None
    host_syncs_per_clip: float
    host_draws_per_clip: float
    startup_s: float
    psnr_vs_fp32_db: float | None
    params: int
    flops_per_frame: int
    int8_speedup: float | None = None
    int8_psnr_db: float | None = None
    pipeline_speedup: float | None = None
    drift_psnr_db: float | None = None
    drift_psnr_db_unguarded: float | None = None
    vae_ceiling_psnr_db: float | None = None
    soak_s: float = 0.0
    threads: int = 1
    projection: GpuProjection | None = None


Job = tuple[list[AudioFeatures | None], Label]


def speech_features(frames: int, fps: int, seed: int = 0) -> list[AudioFeatures]:
    """Syllable-like features: ~4 Hz energy bursts with varying brightness."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    energy = np.clip(0.5 + 0.5 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 1, frames)), 0, 1)
    return [AudioFeatures(float(e), float(rng.uniform(0.2, 0.8)), float(rng.uniform(0, 0.4))) for e in energy]


def speech_clips(features: list[AudioFeatures], size: int) -> list[Job]:
    """Max-length speaking clips, with a listening and an idle clip every few seconds."""
    jobs: list[Job] = []
    for i in range(0, len(features), size):
        turn = (i // size) % 12
        label = Label.SPEAKING if turn < 8 else Label.LISTENING if turn < 10 else Label.IDLE
        chunk: list[AudioFeatures | None] = list(features[i:i + size]) if label == Label.SPEAKING else [None] * size
        jobs.append((chunk[: len(features[i:i + size])], label))
    return jobs


def _psnr_db(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float | None:
    """:func:`~facetalk.avatar.measures.psnr` to 0.01 dB; ``None`` when identical (JSON has no infinity)."""
    return finite_or_none(round(psnr(a, b, where), 2))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def render_jobs(engine: DiffusionEngine, jobs: list[Job], *, seed: int = 0) -> tuple[float, np.ndarray]:
    """Seconds to render ``jobs`` from a reset engine (one clip of warm-up first), and all their frames."""
    engine.render_clip(jobs[0][0], jobs[0][1])
    engine.reset(seed=seed)
    start = time.perf_counter()
    frames = [f for features, label in jobs for f in engine.render_clip(features, label).frames]
    return time.perf_counter() - start, np.stack(frames)


def first_clip_ms(engine: DiffusionEngine, features: list[AudioFeatures | None], repeats: int = 5) -> float:
    """Median ms of a first clip (reset engine) of ``len(features)`` frames, frames on the host."""
    times = []
    for _ in range(repeats):
        engine.reset()
        start = time.perf_counter()
        engine.render_clip(features, Label.SPEAKING)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


def stage_ms(engine: DiffusionEngine, job: Job, repeats: int = 3) -> StageMs:
    """Median per-stage ms of ``job``, the device synchronised after each stage."""
    device = engine.pipeline.device
    laps: dict[str, list[float]] = {"audio": [], "denoise": [], "decode": [], "output": []}
    for _ in range(repeats):
        value: object = job[0]
        for name, stage in (("audio", engine.audio_stage), ("denoise", lambda a: engine.denoise_stage(a, job[1])),
                            ("decode", engine.decode_stage), ("output", engine.output_stage)):
            _synchronize(device)
            start = time.perf_counter()
            value = stage(value)  # type: ignore[operator]
            _synchronize(engine.pipeline.decode_device)
            laps[name].append((time.perf_counter() - start) * 1000)
    return StageMs(**{name: round(statistics.median(v), 2) for name, v in laps.items()})


def host_round_trips(engine: DiffusionEngine, jobs: list[Job]) -> HostSyncs:
    """Host syncs and host draws between audio windows and decoded frames, over ``jobs``."""
    windows = [(engine.audio_stage(features), label) for features, label in jobs]
    with count_host_syncs(engine.pipeline.device) as counts:
        for audio, label in windows:
            engine.decode_stage(engine.denoise_stage(audio, label))
        _synchronize(engine.pipeline.decode_device)
    return counts


def bench_diffusion(pack: PersonaPack, *, config: str = "tiny", steps: int = 2, devices: tuple[str, ...] = ("cpu",),
                    dtype: Dtype | None = None, quantize: Quantization = "none", graphs: bool | None = None,
                    decoder: Literal["kl", "light"] = "kl", checkpoint: Path | None = None, fps: int = 25, seconds: float = 8.0, soak_s: float = 20.0,
                    extras: bool = True, threads: int = 1, gpu: str | None = None, seed: int = 0,
                    ) -> DiffusionBenchResult:
    """Measure the diffusion engine on synthetic speech features (see :class:`DiffusionBenchResult`)."""
    options = DiffusionOptions(config=config, checkpoint=checkpoint, steps=steps, devices=devices, dtype=dtype,
                               quantize=quantize, graphs=graphs, decoder=decoder, seed=seed)
    cfg = get_config(config)
    device = check_device(devices[0])
    projection = project_gpu(gpu, steps=steps) if gpu else None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch_threads(threads):
        models = load_models(cfg, options) if checkpoint else build_models(cfg, seed=seed)
        make = lambda **kw: DiffusionEngine(pack, options=dataclasses.replace(options, **kw),  # noqa: E731
                                            models=copy.deepcopy(models))
        jobs = speech_clips(speech_features(int(seconds * fps), fps), cfg.max_clip_frames)
        # 1. Speed and the first clips' latency (the most important figures first).
        engine = make()
        seq_s, frames = render_jobs(engine, jobs, seed=seed)
        first_1, first_4 = first_clip_ms(engine, jobs[0][0][:1]), first_clip_ms(engine, jobs[0][0][:4])
        stages = stage_ms(engine, jobs[0])
        round_trips = host_round_trips(engine, jobs[:4])
        # 2. The fp32, unquantized path on the same clips and seed.
        fp32_path = engine.pipeline.dtype == torch.float32 and quantize == "none" and decoder == "kl"
        reference = frames if fp32_path else render_jobs(make(dtype="fp32", quantize="none", decoder="kl"), jobs,
                                                         seed=seed)[1]
        result = DiffusionBenchResult(
            engine="diffusion", config=config, steps=steps, resolution=cfg.resolution, fps=fps,
            devices=list(devices), dtype=next(k for k, v in DTYPES.items() if v == engine.pipeline.dtype),
            quantize=quantize, decoder=decoder, graphs=engine.clips.graphs, gen_fps=round(len(frames) / seq_s, 1),
            first_clip_ms=first_1, first_clip_4_ms=first_4, stage_ms=stages,
            peak_gpu_mb=round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None,
            host_syncs_per_clip=round(round_trips.syncs / 4, 2),
            host_draws_per_clip=round(round_trips.host_draws / 4, 2), startup_s=round(engine.startup_s, 2),
            psnr_vs_fp32_db=None if fp32_path else _psnr_db(frames, reference), params=models.num_parameters(),
            flops_per_frame=clip_flops(cfg, frames=cfg.max_clip_frames, steps=steps) // cfg.max_clip_frames,
            soak_s=soak_s, threads=threads, projection=projection,
        )
        if extras:
            _extras(result, pack, make, jobs, seq_s, reference, soak_s=soak_s, fps=fps, seed=seed)
    return result


def _extras(result: DiffusionBenchResult, pack: PersonaPack, make: Callable[..., DiffusionEngine], jobs: list[Job],
            seq_s: float, fp32_frames: np.ndarray, *, soak_s: float, fps: int, seed: int) -> None:
    """int8 (speed against this run, PSNR against fp32), staged threads against sequential, and the drift
    soak, into ``result``."""
    cfg = get_config(result.config)
    # 1. int8 (dynamic int8 runs fp32 activations on the CPU), same seed and clips.
    dtype = "fp32" if result.devices[0] == "cpu" else result.dtype
    int8_s, int8_frames = render_jobs(make(quantize="int8", dtype=dtype), jobs, seed=seed)
    result.int8_speedup, result.int8_psnr_db = round(seq_s / int8_s, 2), _psnr_db(int8_frames, fp32_frames)
    # 2. Staged threads (and streams) against sequential.
    staged = make()
    start = time.perf_counter()
    for _ in StagedRenderer(staged).map(jobs):
        pass
    result.pipeline_speedup = round(seq_s / (time.perf_counter() - start), 2)
    # 3. Drift soak, guards on and off.
    soak_jobs = speech_clips(speech_features(int(soak_s * fps), fps, seed=1), cfg.max_clip_frames)
    image, _, head = posed_reference(pack, Expression(), cfg.resolution)
    outside = np.repeat((head < 1e-3)[:, :, None], 3, axis=2)
    drift = {}
    for name, guard in (("on", DriftGuard()), ("off", DriftGuard.off())):
        soaked = make(drift=guard)
        last = None
        for features, label in soak_jobs:  # frames at the config's resolution, as the reference
            latents = soaked.denoise_stage(soaked.audio_stage(features), label)
            last = soaked.pipeline.to_uint8(soaked.decode_stage(latents))[-1]
        drift[name] = _psnr_db(last, image, outside)
    pipeline = staged.pipeline
    recon = pipeline.to_uint8(pipeline.decode(staged.reference.latent[:, :, None]))[0]
    result.drift_psnr_db, result.drift_psnr_db_unguarded = drift["on"], drift["off"]
    result.vae_ceiling_psnr_db = _psnr_db(recon, image, outside)
