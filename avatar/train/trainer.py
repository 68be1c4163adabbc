"""The training loop every stage shares: seeds, progress, checkpoints, ``losses.csv``, resume.

A stage (autoencoder, teacher, distillation) is a :class:`TrainingTask`: it
owns its models and computes one loss; :func:`train` owns everything else.

Reproducibility: the data sampler draws from a numpy ``Generator`` and all
noise and dropout from a CPU ``torch.Generator``, both seeded from
``seed`` and both saved in every checkpoint, so a killed and resumed run
draws the same batches and noise as an uninterrupted one. No global torch
state is touched. On CUDA the forward passes run under bf16 autocast.

Run folder::

    RUN/run.json            stage, config, dataset, options (checked on --resume)
    RUN/losses.csv          step, loss, lr, clip_frames, seconds, <stage columns>
    RUN/checkpoints/step-…  see :mod:`.checkpoints`
    RUN/final/              engine-loadable models after the last step
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ...errors import FaceTalkError
from .checkpoints import CheckpointStore
from .dataset import ClipBatch, TrainingClips
from .loss_log import LossLog
from .schedule import TrainSchedule
from ..diffusion.threads import torch_threads

__all__ = ["TrainOptions", "TrainResult", "TrainingTask", "train"]


class TrainingTask(Protocol):
    """One training stage: its models, its loss, its export."""

    stage: str
    columns: list[str]

    def parameters(self) -> list[torch.nn.Parameter]:
        """What the optimizer updates."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Weights needed to resume (trainable models, EMA targets)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def loss(self, batch: ClipBatch, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """The scalar loss of ``batch`` and the values of ``columns``."""
        ...

    def after_step(self) -> None:
        """Called after each optimizer step (EMA updates)."""
        ...

    def export(self, folder: Path) -> None:
        """Write engine-loadable models into ``folder``."""
        ...


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """Options shared by every stage.

    Attributes:
        steps: total optimizer steps (a resumed run continues up to it).
        batch_size: clips per step.
        lr: AdamW learning rate after warm-up.
        warmup_steps: linear warm-up.
        fixed_fraction: share of steps at the fixed clip length (LLIA's first phase).
        checkpoint_every: steps between checkpoints (the most a kill can lose).
        keep: checkpoints kept.
        seed: seeds the data sampler and all noise.
        device: ``cpu`` or ``cuda[:N]``.
        grad_clip: max gradient norm.
        threads: torch intra-op threads while training (see :mod:`..diffusion.threads`).
        progress: show a rich progress bar.
        save_optimizer: keep AdamW's moments in checkpoints. At base scale they are twice the
            weights (tens of GB); without them a resumed run restarts the moments from zero.
    """

    steps: int = 1000
    batch_size: int = 4
    lr: float = 3e-4
    warmup_steps: int = 50
    fixed_fraction: float = 0.5
    checkpoint_every: int = 100
    keep: int = 2
    seed: int = 0
    device: str = "cpu"
    grad_clip: float = 1.0
    threads: int = 1
    progress: bool = True
    save_optimizer: bool = True


@dataclass
class TrainResult:
    """What a finished :func:`train` call did.

    Attributes:
        run: the run folder; final: its ``final/`` export.
        first_step, last_step: steps run by this call (``first_step > last_step`` if none).
        first_loss, last_loss: mean loss over the run's first and last ``min(50, steps)`` logged steps.
        seconds: wall-clock time of this call.
    """

    run: Path
    final: Path
    first_step: int
    last_step: int
    first_loss: float
    last_loss: float
    seconds: float


def _losses(path: Path) -> list[float]:
    import csv

    with path.open(newline="") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def _check_run(run: Path, meta: dict[str, Any], resume: bool, store: CheckpointStore) -> None:
    meta_path = run / "run.json"
    if resume:
        if not meta_path.is_file():
            raise FaceTalkError(f"nothing to resume in {run} (no run.json)", hint="drop --resume to start the run")
        saved = json.loads(meta_path.read_text())
        for key in ("stage", "config"):
            if saved.get(key) != meta[key]:
                raise FaceTalkError(f"{run} is a {saved.get(key)!r} run, not {meta[key]!r} ({key})",
                                    hint=f"resume with the run's own {key}, or pick another --out")
    elif store.steps() or (run / "losses.csv").is_file():
        raise FaceTalkError(f"{run} already holds a training run", hint="pass --resume, or pick another --out")


def train(task: TrainingTask, clips: TrainingClips, run: Path, options: TrainOptions, *, config: str,
          max_frames: int, resume: bool = False, meta: dict[str, Any] | None = None) -> TrainResult:
    """Run ``task`` on ``clips`` up to ``options.steps``, checkpointing into ``run``.

    Raises:
        FaceTalkError: ``run`` already holds a run and ``resume`` is off, or
            ``resume`` is on and ``run`` holds another stage or config.
    """
    run = Path(run)
    store = CheckpointStore(run, keep=options.keep)
    info = {"stage": task.stage, "config": config, **(meta or {}), "options": asdict(options)}
    _check_run(run, info, resume, store)
    run.mkdir(parents=True, exist_ok=True)
    device = torch.device(options.device)
    params = task.parameters()
    optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=0.0)
    schedule = TrainSchedule(steps=options.steps, max_frames=max_frames, fixed_fraction=options.fixed_fraction,
                             warmup_steps=options.warmup_steps)
    lr_sched = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.lr_factor)
    rng = np.random.default_rng(options.seed)
    generator = torch.Generator().manual_seed(options.seed)
    log = LossLog(run / "losses.csv", ["step", "loss", "lr", "clip_frames", "seconds", *task.columns])
    start, elapsed = 0, 0.0
    latest = store.latest() if resume else None
    if latest is not None:
        state = store.load(latest)
        task.load_state_dict(state["task"])
        if "optimizer" in state:  # absent when saved with save_optimizer=False: the moments restart
            optimizer.load_state_dict(state["optimizer"])
        lr_sched.load_state_dict(state["lr_scheduler"])
        rng.bit_generator.state = state["numpy_rng"]
        generator.set_state(state["torch_rng"])
        start, elapsed = int(state["step"]), float(state["seconds"])
    log.truncate(start)
    if not resume or not (run / "run.json").is_file():
        (run / "run.json").write_text(json.dumps(info, indent=2, default=str))
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())
    began = time.perf_counter()
    columns = [TextColumn(f"[bold]{task.stage}[/]"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn()]
    with torch_threads(options.threads), Progress(*columns, disable=not options.progress) as progress:
        bar = progress.add_task(task.stage, total=options.steps, completed=start, loss=float("nan"))
        for step in range(start + 1, options.steps + 1):
            frames = schedule.clip_frames(step, rng)
            batch = clips.sample(options.batch_size, frames, rng)
            with autocast:
                loss, extras = task.loss(batch, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, options.grad_clip)
            optimizer.step()
            lr_sched.step()
            task.after_step()
            seconds = elapsed + time.perf_counter() - began
            log.append({"step": step, "loss": round(loss.item(), 6), "lr": optimizer.param_groups[0]["lr"],
                        "clip_frames": frames, "seconds": round(seconds, 2), **extras})
            progress.update(bar, completed=step, loss=loss.item())
            if step % options.checkpoint_every == 0 or step == options.steps:
                saved = {"task": task.state_dict(), "lr_scheduler": lr_sched.state_dict(),
                         "numpy_rng": rng.bit_generator.state, "torch_rng": generator.get_state(), "step": step,
                         "seconds": seconds}
                if options.save_optimizer:
                    saved["optimizer"] = optimizer.state_dict()
                store.save(step, saved, task.export)
    log.close()
    final = run / "final"
    tmp = run / ".tmp-final"
    shutil.rmtree(tmp, ignore_errors=True)
    task.export(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    losses = _losses(run / "losses.csv")
    window = max(1, min(50, len(losses) // 2 or 1))
    nan = float("nan")
    return TrainResult(run=run, final=final, first_step=start + 1, last_step=options.steps,
                       first_loss=float(np.mean(losses[:window])) if losses else nan,
                       last_loss=float(np.mean(losses[-window:])) if losses else nan,
                       seconds=time.perf_counter() - began)
