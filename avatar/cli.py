"""The avatar's commands: ``persona prepare``, ``models fetch``, ``render``, ``bench avatar|soak``.

Registered into the ``facetalk`` app by ``facetalk/cli.py``. Heavy imports
(OpenCV, PyAV, piper) happen inside the commands so ``facetalk --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..cli_errors import reports_errors
from ..errors import FaceTalkError
from ..resources import default_config

__all__ = ["bench_app", "models_app", "persona_app", "render_command"]

persona_app = typer.Typer(help="Prepare personas for the avatar.", no_args_is_help=True)
models_app = typer.Typer(help="Fetch the models FaceTalk runs.", no_args_is_help=True)
bench_app = typer.Typer(help="Measure the avatar engine.", no_args_is_help=True)
console = Console()

Resolution = Annotated[int, typer.Option(help="Frame side in pixels: 384 or 512.")]


def _check_resolution(resolution: int) -> None:
    if resolution not in (384, 512):
        raise FaceTalkError(f"resolution {resolution} is not supported", hint="use 384 or 512")


def _parse_expression(items: list[str]) -> dict[str, float]:
    """``["smile=0.5", "brow_raise=0.2"]`` → ``{"smile": 0.5, "brow_raise": 0.2}``."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise FaceTalkError(f"bad --expression {item!r}", hint="write NAME=VALUE, e.g. smile=0.5")
    return out


@persona_app.command("prepare")
@reports_errors
def persona_prepare(
    portrait: Annotated[Path, typer.Argument(help="Portrait image (PNG, JPEG, ...).")],
    out: Annotated[Path | None, typer.Option(help="Folder for the pack; default: the cache.")] = None,
    resolution: Resolution = 512,
) -> None:
    """Check a portrait, find the face mesh and write the persona pack."""
    from .persona import prepare_persona

    _check_resolution(resolution)
    pack = prepare_persona(portrait, resolution=resolution, out=out)
    for note in pack.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"[green]✓[/] persona pack {pack.key} ({pack.resolution}px)", highlight=False)


@models_app.command("fetch")
@reports_errors
def models_fetch() -> None:
    """Download the face-mesh model into the cache (once)."""
    from .models import ensure_face_landmark_model

    console.print(f"[green]✓[/] {ensure_face_landmark_model()}", highlight=False)


@reports_errors
def render_command(
    out: Annotated[Path, typer.Option(help="Output mp4.")],
    persona: Annotated[Path, typer.Option(help="Persona YAML file.")] = default_config("persona.yaml"),
    audio: Annotated[Path | None, typer.Option(help="Speech audio file (any format PyAV reads).")] = None,
    text: Annotated[str | None, typer.Option(help="Instead of --audio: text spoken by piper.")] = None,
    labels: Annotated[Path | None, typer.Option(help="Label timeline YAML: '- {at: 0, label: speaking}'.")] = None,
    expression: Annotated[list[str] | None, typer.Option(help="NAME=VALUE, repeatable (smile=0.5).")] = None,
    contact_sheet: Annotated[Path | None, typer.Option(help="Also write a PNG grid of frames.")] = None,
    tail: Annotated[float, typer.Option(help="Seconds of silence rendered after the audio.")] = 0.0,
    resolution: Resolution = 512,
    fps: Annotated[int, typer.Option(help="Video frame rate.")] = 25,
    seed: Annotated[int, typer.Option(help="Motion seed.")] = 0,
    audio_only: Annotated[bool, typer.Option(help="With --text: drive the mouth by the audio, not piper's phonemes.")] = False,
) -> None:
    """Render a talking-face video with the audio muxed in (with --text, mouth shapes from piper's phonemes)."""
    from ..config import load_persona
    from .audio import SAMPLE_RATE
    from .offline import load_timeline, read_audio, render_video
    from .persona import prepare_persona

    _check_resolution(resolution)
    if (audio is None) == (text is None):
        raise FaceTalkError("pass exactly one of --audio and --text", hint="e.g. --text 'Hello there'")
    config = load_persona(persona)
    pack = prepare_persona(config.portrait, resolution=resolution)
    phonemes = []
    if audio is not None:
        samples = read_audio(audio)
    else:
        import av

        from .speech import speak

        speech = speak(text or "")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        frame = av.AudioFrame.from_ndarray(speech.samples[None, :], format="s16", layout="mono")
        frame.sample_rate = speech.sample_rate
        import numpy as np

        samples = np.concatenate([f.to_ndarray().ravel() for f in resampler.resample(frame) + resampler.resample(None)])
        phonemes = speech.phonemes
    try:
        controls = config.expression.model_validate({**config.expression.model_dump(),
                                                     **_parse_expression(expression or [])})
    except ValueError as e:
        raise FaceTalkError(f"bad --expression: {e}", hint="names: smile, brow_raise, eye_openness, head_tilt; values 0-1") from e
    result = render_video(pack, samples, out, fps=fps, timeline=load_timeline(labels) if labels else None,
                          expression=controls, contact_sheet=contact_sheet, seed=seed, tail_s=tail,
                          phonemes=phonemes, audio_only=audio_only)
    console.print(f"[green]✓[/] {result.video}: {result.frames} frames, {result.seconds:.1f} s", highlight=False)
    if result.contact_sheet:
        console.print(f"[green]✓[/] {result.contact_sheet}", highlight=False)


@bench_app.command("avatar")
@reports_errors
def bench_avatar_command(
    engine: Annotated[str, typer.Option(help="Engine to measure: cpu or diffusion.")] = "cpu",
    resolution: Resolution = 512,
    seconds: Annotated[float, typer.Option(help="Seconds of speech to stream.")] = 20.0,
    fps: Annotated[int, typer.Option(help="Video frame rate.")] = 25,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    config_name: Annotated[str, typer.Option("--config", help="Diffusion: tiny, base-384, base-512.")] = "tiny",
    steps: Annotated[int, typer.Option(help="Diffusion: LCM sampling steps (1, 2, 4).")] = 2,
    devices: Annotated[str, typer.Option(help="Diffusion: 'cpu', or 'cuda:0,cuda:1' (denoise,decode).")] = "cpu",
    dtype: Annotated[str | None, typer.Option(help="Diffusion: bf16, fp16 or fp32 (default: bf16 on GPUs, fp32 on the CPU).")] = None,
    quantize: Annotated[str, typer.Option(help="Diffusion: none, int8 or fp8 (UNet and ReferenceNet linears).")] = "none",
    graphs: Annotated[bool | None, typer.Option("--graphs/--no-graphs", help="Diffusion: CUDA graphs per clip length (default: on CUDA).")] = None,
    decoder: Annotated[str, typer.Option(help="Diffusion: kl (the VAE's decoder) or light (the distilled one).")] = "kl",
    extras: Annotated[bool, typer.Option("--extras/--no-extras", help="Diffusion: also int8, staged threads and the drift soak.")] = True,
    checkpoint: Annotated[Path | None, typer.Option(help="Diffusion: checkpoint folder; random weights if unset.")] = None,
    soak: Annotated[float, typer.Option(help="Diffusion: seconds of content for the drift soak.")] = 20.0,
    project_gpu: Annotated[str | None, typer.Option(help="Diffusion: add a FLOPs-based estimate for base-512 on this GPU (rtx4090).")] = None,
) -> None:
    """Speed, first-frame latency, memory, lip sync and clip continuity (diffusion: stages, host syncs,
    start-up, PSNR against fp32, FLOPs, int8, pipeline, drift)."""
    from ..config import load_persona
    from .bench import bench_avatar
    from .persona import prepare_persona
    from .speech import speak

    if engine not in ("cpu", "diffusion"):
        raise FaceTalkError(f"unknown engine {engine!r}", hint="use --engine cpu or --engine diffusion")
    _check_resolution(resolution)
    config = load_persona(default_config("persona.yaml"))
    pack = prepare_persona(config.portrait, resolution=resolution)
    if engine == "diffusion":
        from .diffusion.bench import bench_diffusion  # needs the diffusion extra
        from .diffusion.projection import GPUS

        if project_gpu is not None and project_gpu not in GPUS:
            raise FaceTalkError(f"unknown GPU {project_gpu!r}", hint=f"use one of: {', '.join(GPUS)}")
        result = dataclasses.asdict(bench_diffusion(
            pack, config=config_name, steps=steps, devices=tuple(d.strip() for d in devices.split(",")),
            dtype=dtype, quantize=quantize, graphs=graphs, decoder=decoder, checkpoint=checkpoint,  # type: ignore[arg-type]
            fps=fps, seconds=min(seconds, 8.0), soak_s=soak, extras=extras, gpu=project_gpu))
    else:
        result = dataclasses.asdict(bench_avatar(pack, speak(), seconds=seconds, fps=fps,
                                                 expression=config.expression))
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            console.print(f"{key:>24}: {value}", highlight=False)


@bench_app.command("soak")
@reports_errors
def bench_soak_command(
    minutes: Annotated[float, typer.Option(help="Minutes of video to stream.")] = 60.0,
    resolution: Resolution = 512,
    fps: Annotated[int, typer.Option(help="Video frame rate.")] = 25,
) -> None:
    """Stream long content through the runtime; print memory per minute and drift."""
    from ..config import load_persona
    from .soak import soak
    from .persona import prepare_persona
    from .speech import speak

    _check_resolution(resolution)
    config = load_persona(default_config("persona.yaml"))
    pack = prepare_persona(config.portrait, resolution=resolution)
    print(json.dumps(dataclasses.asdict(soak(pack, speak(), minutes=minutes, fps=fps))))
