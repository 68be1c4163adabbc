#!/usr/bin/env python3
"""The diffusion engine on one GPU in about five minutes: JSON after every step, most important first.

Run from the repository root on a machine with the GPU (see docs/diffusion-gpu.md for the wheels to carry)::

    PYTHONPATH=.:gpu-wheels python3 scripts/gpu_check.py --pack gpu-pack --out gpu_check.json

Needs torch, diffusers, pydantic, numpy, opencv and a persona pack folder
(``facetalk persona prepare PORTRAIT --out gpu-pack --resolution 512``, made
on any machine); not livekit, PyAV or ai-edge-litert. Weights are random:
speed does not depend on them, and PSNR figures compare our own paths.

Steps, in order (after the first, a step that would overrun ``--budget-s`` is skipped):

1. per config, bf16 with 2 LCM steps, eager: frames/s in max-length clips,
   first 1- and 4-frame clips, per-stage ms, host syncs per clip, peak memory;
2. per config, the same with CUDA graphs captured at start-up (start-up seconds);
3. per config, graphs with 1 LCM step;
4. first config in fp32 (the shipped path), and PSNR of step 1's bf16 frames against it;
5. first config, graphs with torchao int8 weight-only, then fp8 (PSNR against bf16);
6. first config, graphs with a light (TAESD-shaped) decoder instead of the KL decoder;
7. first config, the staged renderer (decode of clip N on its own stream while clip N+1 denoises).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pack", type=Path, required=True, help="persona pack folder (pack.npz, meta.json)")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="JSON written after every step")
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--configs", default="base-512,base-384", help="comma-separated, most important first")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of 25 fps content per speed run")
    parser.add_argument("--budget-s", type=float, default=300.0, help="skip steps that would end after this")
    args = parser.parse_args()
    start = time.perf_counter()

    import torch

    from facetalk.avatar.persona import load_pack

    report: dict[str, Any] = {"machine": _machine(torch, args.device), "args": {k: str(v) for k, v in vars(args).items()},
                              "steps": []}
    pack = load_pack(args.pack)
    configs = [c.strip() for c in args.configs.split(",")]
    first = configs[0]
    kept: dict[str, Any] = {}
    lowp = "bf16"

    def step(name: str, estimate_s: float, run: Callable[[], dict[str, Any]]) -> None:
        entry: dict[str, Any] = {"name": name, "error": None, "skipped": False, "seconds": None, "result": None}
        if report["steps"] and time.perf_counter() - start + estimate_s > args.budget_s:  # the first always runs
            entry["skipped"] = True
        else:
            began = time.perf_counter()
            try:
                entry["result"] = run()
            except Exception as e:  # noqa: BLE001 - recorded, and the next step runs
                entry["error"] = "".join(traceback.format_exception_only(e)).strip()
                entry["traceback"] = traceback.format_exc(limit=6)
            entry["seconds"] = round(time.perf_counter() - began, 1)
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
        report["steps"].append(entry)
        report["elapsed_s"] = round(time.perf_counter() - start, 1)
        args.out.write_text(json.dumps(report, indent=2))
        print(json.dumps(entry), flush=True)

    def speed(config: str, keep: str | None = None, **options: Any) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            result, frames = _measure(torch, pack, config, args.device, args.seconds, **options)
            if keep:
                kept[keep] = frames
            return result
        return run

    for config in configs:
        step(f"{config} {lowp} eager", 40, speed(config, keep=f"{config} eager", dtype=lowp, graphs=False))
    for config in configs:
        step(f"{config} {lowp} graphs", 50, speed(config, keep=f"{config} graphs", dtype=lowp, graphs=True))
    for config in configs:
        step(f"{config} {lowp} graphs 1 step", 40, speed(config, dtype=lowp, graphs=True, steps=1))

    def compared(name: str, against: str, **options: Any) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            result, frames = _measure(torch, pack, first, args.device, args.seconds, **options)
            if against in kept:
                result[f"psnr_vs_{against.replace(' ', '_')}_db"] = _psnr(frames, kept[against])
            kept[name] = frames
            return result
        return run

    step(f"{first} fp32 eager", 60, compared("fp32", f"{first} eager", dtype="fp32", graphs=False))
    if "fp32" in kept and f"{first} eager" in kept:
        report["psnr_bf16_vs_fp32_db"] = _psnr(kept[f"{first} eager"], kept["fp32"])
    step(f"{first} {lowp} int8 graphs", 60,
         compared("int8", f"{first} graphs", dtype=lowp, graphs=True, quantize="int8"))
    step(f"{first} {lowp} fp8 graphs", 60, compared("fp8", f"{first} graphs", dtype=lowp, graphs=True, quantize="fp8"))
    step(f"{first} {lowp} graphs light decoder", 50, speed(first, dtype=lowp, graphs=True, light_decoder=True))
    step(f"{first} {lowp} graphs staged", 50, lambda: _staged(torch, pack, first, args.device, args.seconds, lowp))
    args.out.write_text(json.dumps(report, indent=2))


def _machine(torch: Any, device: str) -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "cuda": torch.version.cuda, "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
        info["capability"] = list(torch.cuda.get_device_capability(device))
        info["memory_gb"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
    try:
        import diffusers

        info["diffusers"] = diffusers.__version__
    except ImportError:
        info["diffusers"] = None
    return info


def _psnr(a: Any, b: Any) -> float | None:
    from facetalk.avatar.measures import finite_or_none, psnr

    return finite_or_none(round(psnr(a, b), 2))


def _engine(torch: Any, pack: Any, config: str, device: str, *, light_decoder: bool = False, **options: Any) -> Any:
    """An engine with random weights built directly on ``device`` (seconds at base-512, not minutes)."""
    from facetalk.avatar.diffusion import DiffusionEngine, DiffusionOptions, build_models, get_config

    cfg = get_config(config)
    with torch.device(device):
        models = build_models(cfg, seed=0)
    decoder = None
    if light_decoder:  # random weights, as the rest: its speed is what is measured
        from facetalk.avatar.diffusion.light_decoder import LightDecoder

        with torch.device(device):
            decoder = LightDecoder.for_config(cfg)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    return DiffusionEngine(pack, options=DiffusionOptions(config=config, devices=(device,), **options), models=models,
                           light_decoder=decoder)


def _measure(torch: Any, pack: Any, config: str, device: str, seconds: float, **options: Any) -> tuple[dict[str, Any], Any]:
    from facetalk.avatar.diffusion.bench import (first_clip_ms, host_round_trips, render_jobs, speech_clips,
                                                  speech_features, stage_ms)

    engine = _engine(torch, pack, config, device, **options)
    jobs = speech_clips(speech_features(max(1, int(seconds * 25)), 25), engine.max_clip_frames)
    seq_s, frames = render_jobs(engine, jobs)
    trips = host_round_trips(engine, jobs[:4])
    result = {
        "fps": round(len(frames) / seq_s, 1),
        "first_clip_ms": first_clip_ms(engine, jobs[0][0][:1]),
        "first_clip_4_ms": first_clip_ms(engine, jobs[0][0][:4]),
        "stage_ms": dataclasses.asdict(stage_ms(engine, jobs[0])),
        "host_syncs_per_clip": round(trips.syncs / min(4, len(jobs)), 2),
        "host_draws_per_clip": round(trips.host_draws / min(4, len(jobs)), 2),
        "sync_calls": trips.calls[:10],
        "startup_s": round(engine.startup_s, 2),
        "graphs": engine.clips.graphs,
        "clip_frames": engine.max_clip_frames,
        "frames": len(frames),
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.startswith("cuda") else None,
    }
    return result, frames


def _staged(torch: Any, pack: Any, config: str, device: str, seconds: float, dtype: str) -> dict[str, Any]:
    from facetalk.avatar.diffusion.bench import render_jobs, speech_clips, speech_features
    from facetalk.avatar.diffusion.parallel import StagedRenderer

    engine = _engine(torch, pack, config, device, dtype=dtype, graphs=True)
    jobs = speech_clips(speech_features(max(1, int(seconds * 25)), 25), engine.max_clip_frames)
    seq_s, frames = render_jobs(engine, jobs)
    engine.reset(seed=0)
    began = time.perf_counter()
    staged = [f for clip in StagedRenderer(engine).map(jobs) for f in clip.frames]
    staged_s = time.perf_counter() - began
    return {"sequential_fps": round(len(frames) / seq_s, 1), "staged_fps": round(len(staged) / staged_s, 1),
            "speedup": round(seq_s / staged_s, 2)}


if __name__ == "__main__":
    main()
