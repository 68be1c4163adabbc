"""``facetalk eval generator``: lip sync, listening stillness, fidelity to the teacher, speed.

Everything runs on the dataset's held-out stretch (:meth:`TrainingClips.held_out`,
never trained on), clip by clip as the runtime would: clips follow the label
timeline, at most ``max_clip_frames`` long, with ``None`` audio features off
speaking frames. Frames are measured at the config's resolution (64² for
``tiny``); the CPU engine's frames are area-downscaled to it, as the dataset
stores them, so both engines are measured alike.

Measures (documented method):

- **mouth opening** of a frame: :meth:`~facetalk.avatar.measures.MouthBox.darkness`,
  the fraction of dark pixels (luma < 70) inside the training lips box
  (:func:`.dataset.lips_box`: the outer lips from the persona's landmarks,
  narrowed by 15 % of their width at each side and extended down by 45 % of
  it for the open jaw, the box the training losses weigh);
- **mouth activity**: the opening minus that of the persona's posed reference
  (the mouth at rest), floored at 0;
- ``lipsync_corr``: Pearson correlation of the opening with the audio envelope
  (the stored per-frame energy, 0 on non-speaking frames) over all held-out
  frames, at the best lag of 0..2 frames of the mouth behind the audio
  (``lipsync_lag_ms``; :func:`~facetalk.avatar.measures.best_lag_correlation`);
  0 when the opening never varies;
- ``listening_mouth_ratio``: mean activity on listening frames ÷ on speaking frames;
- ``psnr_vs_teacher_db``, ``ssim_vs_teacher``: mean over frames of PSNR (capped
  at 99 dB for identical frames) and of SSIM (scikit-image's on luma, Gaussian
  window σ 1.5; :mod:`facetalk.avatar.measures`) of the LCM student's frames
  against 25-step DDIM sampling of the teacher with the same seed and inputs;
- ``fps``: frames generated per wall-clock second (this machine, shared CPU).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..audio import AudioFeatures
from ..diffusion.configs import get_config
from ..diffusion.engine import DiffusionEngine, DiffusionOptions
from ..diffusion.expression import posed_reference
from ..diffusion.sampling import LCM_STEPS
from ..engine import CpuEngine
from ..diffusion.threads import torch_threads
from ..labels import Label
from ..measures import MouthBox, best_lag_correlation, psnr, ssim
from ..persona import PersonaPack
from .dataset import HeldOut, lips_box

__all__ = ["EngineFigures", "GeneratorEval", "contact_sheet", "evaluate_generator"]

TEACHER_STEPS = 25
_MAX_LAG = 2  # frames of the mouth behind the audio searched for the lip-sync lag
_IDENTICAL_PSNR_DB = 99.0  # a frame equal to the teacher's: a finite figure the mean can carry


@dataclass
class EngineFigures:
    """One engine setting's figures on the held-out stretch (see the module docstring).

    Attributes:
        name: ``lcm-1``, ``lcm-2``, ``lcm-4``, ``teacher-ddim-25`` or ``cpu``.
        steps: sampling steps (0 for the CPU engine).
        lipsync_corr, lipsync_lag_ms, listening_mouth_ratio, fps: as documented.
        psnr_vs_teacher_db, ssim_vs_teacher: ``None`` without a teacher, and for the teacher itself.
    """

    name: str
    steps: int
    lipsync_corr: float
    lipsync_lag_ms: float
    listening_mouth_ratio: float | None
    fps: float
    psnr_vs_teacher_db: float | None = None
    ssim_vs_teacher: float | None = None


@dataclass
class GeneratorEval:
    """The JSON of ``facetalk eval generator --json``.

    The top-level figures are the student's at ``steps`` (2 by default); all
    step counts, the teacher and the CPU engine are in ``settings``.

    Attributes:
        engine: ``diffusion``; checkpoint, teacher: folders used (teacher may be ``None``).
        config: model config; resolution: measured frame side (px).
        frames, seconds: held-out length.
        steps: the step count of the top-level figures.
        lipsync_corr, lipsync_lag_ms, listening_mouth_ratio, psnr_vs_teacher_db, ssim_vs_teacher, fps:
            the student's at ``steps``.
        settings: every measured engine setting.
    """

    engine: str
    checkpoint: str
    teacher: str | None
    config: str
    resolution: int
    frames: int
    seconds: float
    steps: int
    lipsync_corr: float
    lipsync_lag_ms: float
    listening_mouth_ratio: float | None
    psnr_vs_teacher_db: float | None
    ssim_vs_teacher: float | None
    fps: float
    settings: list[EngineFigures] = field(default_factory=list)


def _clips(held: HeldOut, size: int) -> list[tuple[list[AudioFeatures | None], Label, int]]:
    """``(features, label, start)`` per clip: runs of one label, cut to ``size`` frames."""
    jobs, start = [], 0
    while start < len(held.labels):
        stop = start + 1
        while stop < len(held.labels) and stop - start < size and held.labels[stop] == held.labels[start]:
            stop += 1
        jobs.append((held.features[start:stop], held.labels[start], start))
        start = stop
    return jobs


def _render(render: Callable[[Sequence[AudioFeatures | None], Label], np.ndarray],
            jobs: list[tuple[list[AudioFeatures | None], Label, int]]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    frames = np.concatenate([render(features, label) for features, label, _ in jobs])
    return frames, len(frames) / (time.perf_counter() - started)


def _figures(name: str, steps: int, frames: np.ndarray, fps: float, held: HeldOut, box: MouthBox,
             rest: float, teacher: np.ndarray | None) -> EngineFigures:
    opening = box.darkness_of(frames)
    corr, lag = best_lag_correlation(opening, held.envelope, range(_MAX_LAG + 1))
    activity = np.maximum(opening - rest, 0.0)
    labels = np.array([label.value for label in held.labels])
    speaking, listening = activity[labels == Label.SPEAKING.value], activity[labels == Label.LISTENING.value]
    ratio = (float(listening.mean() / speaking.mean()) if len(listening) and len(speaking) and speaking.mean() > 0
             else None)
    figures = EngineFigures(name=name, steps=steps, lipsync_corr=round(corr, 3),
                            lipsync_lag_ms=round(lag * 1000 / held.fps, 1),
                            listening_mouth_ratio=None if ratio is None else round(ratio, 3), fps=round(fps, 2))
    if teacher is not None:
        figures.psnr_vs_teacher_db = round(float(np.mean([min(psnr(a, b), _IDENTICAL_PSNR_DB) for a, b in zip(frames, teacher, strict=True)])), 2)
        figures.ssim_vs_teacher = round(float(np.mean([ssim(a, b) for a, b in zip(frames, teacher, strict=True)])), 4)
    return figures


def _diffusion(pack: PersonaPack, options: DiffusionOptions, expression: object) -> Callable[..., np.ndarray]:
    engine = DiffusionEngine(pack, options=options, expression=expression)  # type: ignore[arg-type]

    def render(features: Sequence[AudioFeatures | None], label: Label) -> np.ndarray:
        latents = engine.denoise_stage(engine.audio_stage(features), label)
        return engine.pipeline.to_uint8(engine.decode_stage(latents))

    return render


def evaluate_generator(pack: PersonaPack, held: HeldOut, *, checkpoint: Path, teacher: Path | None,
                       expression: object, steps: Sequence[int] = LCM_STEPS, headline_steps: int = 2,
                       seed: int = 0, threads: int = 1) -> tuple[GeneratorEval, dict[str, np.ndarray]]:
    """Measure the student at ``steps``, the teacher (25 DDIM steps) and the CPU engine on ``held``.

    ``threads``: torch threads while rendering (see :mod:`..diffusion.threads`); ``fps`` is measured with them.

    Returns:
        The figures, and the frames of every setting by name (for contact sheets).
    """
    with torch_threads(threads):
        return _evaluate(pack, held, checkpoint=checkpoint, teacher=teacher, expression=expression, steps=steps,
                         headline_steps=headline_steps, seed=seed)


def _evaluate(pack: PersonaPack, held: HeldOut, *, checkpoint: Path, teacher: Path | None, expression: object,
              steps: Sequence[int], headline_steps: int, seed: int) -> tuple[GeneratorEval, dict[str, np.ndarray]]:
    options = DiffusionOptions.for_checkpoint(checkpoint, seed=seed)
    config = get_config(options.config)
    side = config.resolution
    jobs = _clips(held, config.max_clip_frames)
    scale = side / pack.resolution
    box = MouthBox(*lips_box(pack.points * scale))
    reference, _, _ = posed_reference(pack, expression, side)  # type: ignore[arg-type]
    rest = float(box.darkness_of([reference])[0])
    frames: dict[str, np.ndarray] = {}
    settings: list[EngineFigures] = []
    teacher_frames = None
    if teacher is not None:
        t_options = DiffusionOptions.for_checkpoint(teacher, sampler="ddim", steps=TEACHER_STEPS, seed=seed)
        teacher_frames, fps = _render(_diffusion(pack, t_options, expression), jobs)
        frames[f"teacher-ddim-{TEACHER_STEPS}"] = teacher_frames
        settings.append(_figures(f"teacher-ddim-{TEACHER_STEPS}", TEACHER_STEPS, teacher_frames, fps, held, box,
                                 rest, None))
    for n in steps:
        rendered, fps = _render(_diffusion(pack, DiffusionOptions.for_checkpoint(checkpoint, steps=n, seed=seed),
                                           expression), jobs)
        frames[f"lcm-{n}"] = rendered
        settings.append(_figures(f"lcm-{n}", n, rendered, fps, held, box, rest, teacher_frames))
    cpu = CpuEngine(pack, fps=held.fps, seed=seed, expression=expression)  # type: ignore[arg-type]
    cpu_render = lambda f, label: np.stack([cv2.resize(x, (side, side), interpolation=cv2.INTER_AREA)  # noqa: E731
                                            for x in cpu.render_clip(f, label).frames])
    frames["cpu"], fps = _render(cpu_render, jobs)
    settings.append(_figures("cpu", 0, frames["cpu"], fps, held, box, rest, None))
    head = next((s for s in settings if s.name == f"lcm-{headline_steps}"), settings[0])
    result = GeneratorEval(
        engine="diffusion", checkpoint=str(checkpoint), teacher=None if teacher is None else str(teacher),
        config=options.config, resolution=side, frames=len(held.labels), seconds=round(len(held.labels) / held.fps, 2),
        steps=head.steps, lipsync_corr=head.lipsync_corr, lipsync_lag_ms=head.lipsync_lag_ms,
        listening_mouth_ratio=head.listening_mouth_ratio, psnr_vs_teacher_db=head.psnr_vs_teacher_db,
        ssim_vs_teacher=head.ssim_vs_teacher, fps=head.fps, settings=settings,
    )
    return result, frames


def contact_sheet(frames: dict[str, np.ndarray], labels: Sequence[Label], path: Path, *, columns: int = 8,
                  zoom: int = 3) -> None:
    """A PNG with one row per setting (name at the left) and ``columns`` evenly spaced frames."""
    count = len(labels)
    picks = np.linspace(0, count - 1, columns).round().astype(int)
    rows = []
    for name, rendered in frames.items():
        tiles = [cv2.resize(rendered[i], None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST) for i in picks]
        side = tiles[0].shape[0]
        caption = np.full((side, 150, 3), 255, np.uint8)
        cv2.putText(caption, name, (6, side // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate([caption, *tiles], axis=1))
    header = np.full((24, rows[0].shape[1], 3), 255, np.uint8)
    side = rows[0].shape[0]
    for k, i in enumerate(picks):
        cv2.putText(header, f"{labels[i].value[:5]} {i}", (150 + k * side + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                    (0, 0, 0), 1, cv2.LINE_AA)
    sheet = np.concatenate([header, *rows], axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
