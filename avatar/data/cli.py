"""The dataset commands, ``facetalk data synth`` and ``facetalk data build``.

Registered into the ``facetalk`` app by ``facetalk/cli.py``; the work lives in
:mod:`.synth` and :mod:`.build`, imported inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ...cli_errors import reports_errors
from ...resources import default_config

__all__ = ["data_app"]

data_app = typer.Typer(help="Make training datasets for the avatar engines.", no_args_is_help=True)
console = Console()

Out = Annotated[Path, typer.Option(help="Dataset folder; an interrupted run resumes in it.")]
Resolution = Annotated[int, typer.Option(help="Crop side in pixels: 128 for the tiny config, 512 for base.")]
Fps = Annotated[int, typer.Option(help="Frame rate of the dataset; must divide 24000.")]
Quality = Annotated[int, typer.Option(min=50, max=100, help="JPEG quality of the stored crops.")]


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


@data_app.command("synth")
@reports_errors
def synth_command(
    out: Out,
    persona: Annotated[Path, typer.Option(help="Persona YAML file.")] = default_config("persona.yaml"),
    minutes: Annotated[float, typer.Option(help="Minutes of content to render.")] = 2.0,
    resolution: Resolution = 128,
    seed: Annotated[int, typer.Option(help="Seed of timelines, sentences and motion.")] = 0,
    fps: Fps = 25,
    video_seconds: Annotated[float, typer.Option(help="Length of each synthetic video, seconds.")] = 30.0,
    quality: Quality = 95,
) -> None:
    """Render a dataset with the CPU engine and piper speech (offline, seeded)."""
    import math

    from ...config import load_persona
    from .synth import synth_dataset

    config = load_persona(persona)
    with _progress() as progress:
        task = progress.add_task("rendering videos", total=max(1, math.ceil(minutes * 60 / video_seconds)))
        result = synth_dataset(config, out, minutes=minutes, resolution=resolution, seed=seed, fps=fps,
                               video_seconds=video_seconds, quality=quality,
                               on_video=lambda _: progress.advance(task))
    console.print(f"[green]✓[/] {out}: {len(result.videos)} videos, {result.seconds / 60:.2f} min at "
                  f"{resolution}², {result.bytes / 1e6:.1f} MB; rendered {result.rendered} in "
                  f"{result.wall_s:.0f} s", highlight=False)


@data_app.command("build")
@reports_errors
def build_command(
    videos: Annotated[Path, typer.Argument(help="Folder of talking-head videos with audio (searched recursively).")],
    out: Out,
    resolution: Resolution = 128,
    fps: Fps = 25,
    quality: Quality = 95,
    listening_max: Annotated[float, typer.Option(help="Silences between speech shorter than this (s) are "
                                                      "'listening'; others are 'idle'.")] = 2.0,
) -> None:
    """Build a dataset from recorded videos; unusable ones are skipped, with reasons in report.json."""
    from .build import VIDEO_SUFFIXES, build_dataset
    from .labelling import VadLabelRule

    total = sum(1 for p in videos.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES) if videos.is_dir() else 0
    with _progress() as progress:
        task = progress.add_task("videos", total=total)
        result = build_dataset(videos, out, resolution=resolution, fps=fps, quality=quality,
                               rule=VadLabelRule(listening_max_s=listening_max),
                               on_video=lambda _: progress.advance(task))
    for skipped in result.skipped:
        console.print(f"[yellow]skipped[/] {skipped.source}: {skipped.reason}", highlight=False)
    seconds = sum(o.seconds for o in result.built)
    console.print(f"[green]✓[/] {out}: {len(result.built)} videos, {seconds / 60:.2f} min at {resolution}², "
                  f"{result.bytes / 1e6:.1f} MB; {len(result.skipped)} skipped (see report.json); "
                  f"{result.processed} processed in {result.wall_s:.0f} s", highlight=False)
