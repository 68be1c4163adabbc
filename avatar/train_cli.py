"""The training commands: ``facetalk train vae|teacher|distill|decoder`` and ``facetalk eval generator``.

Registered into the ``facetalk`` app by ``facetalk/cli.py``. torch and the
training package are imported inside the commands, so ``facetalk --help``
stays fast and works without the ``diffusion`` extra.
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

__all__ = ["eval_generator_command", "train_app"]

train_app = typer.Typer(help="Train the diffusion engine (vae → teacher → distill; decoder).", no_args_is_help=True)
console = Console()

Data = Annotated[Path, typer.Option(help="Dataset folder (facetalk data synth/build).")]
Out = Annotated[Path, typer.Option(help="Run folder: checkpoints, losses.csv, final/.")]
Config = Annotated[str, typer.Option("--config", help="Model config: tiny, base-384, base-512.")]
Steps = Annotated[int, typer.Option(help="Total optimizer steps (a resumed run continues up to it).")]
BatchSize = Annotated[int, typer.Option(help="Clips per step.")]
Lr = Annotated[float, typer.Option(help="AdamW learning rate after warm-up.")]
Every = Annotated[int, typer.Option(help="Steps between checkpoints (what a kill can lose at most).")]
Seed = Annotated[int, typer.Option(help="Seeds initialisation, data sampling and all noise.")]
Device = Annotated[str, typer.Option(help="cpu or cuda[:N] (bf16 autocast on CUDA).")]
Resume = Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")]
Quiet = Annotated[bool, typer.Option(help="No progress bar.")]
SaveOptimizer = Annotated[str, typer.Option(metavar="true|false", help="Keep AdamW's state in checkpoints "
                                            "(false at base scale: it is twice the weights; resuming restarts it).")]


def _true_or_false(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise FaceTalkError(f"--save-optimizer {value!r}", hint="write --save-optimizer true or --save-optimizer false")
    return value.lower() == "true"


def _setup(data: Path, config_name: str, device: str, steps: int, batch_size: int, lr: float, every: int, seed: int,
           quiet: bool, save_optimizer: str, **extra: object):  # noqa: ANN202  (typed values below; imports are deferred)
    from .diffusion.configs import get_config
    from .diffusion.engine import check_device
    from .train.dataset import TrainingClips
    from .train.trainer import TrainOptions

    if steps < 1 or batch_size < 1 or every < 1:
        raise FaceTalkError("--steps, --batch-size and --checkpoint-every must be at least 1",
                            hint="pass positive numbers")
    config = get_config(config_name)
    torch_device = check_device(device)
    clips = TrainingClips(data, resolution=config.resolution, window=config.audio_window,
                          motion_frames=config.motion_frames)
    options = TrainOptions(steps=steps, batch_size=batch_size, lr=lr, checkpoint_every=every, seed=seed,
                           device=str(torch_device), progress=not quiet,
                           save_optimizer=_true_or_false(save_optimizer), **extra)  # type: ignore[arg-type]
    return config, torch_device, clips, options


def _report(result: object) -> None:
    r = dataclasses.asdict(result)  # type: ignore[call-overload]
    console.print(f"steps {r['first_step']}..{r['last_step']} in {r['seconds']:.1f} s; "
                  f"loss {r['first_loss']:.4f} → {r['last_loss']:.4f}; models in {r['final']}", highlight=False)


@train_app.command("vae")
@reports_errors
def train_vae(data: Data, out: Out, config_name: Config = "tiny", steps: Steps = 1500, batch_size: BatchSize = 4,
              lr: Lr = 1e-3, checkpoint_every: Every = 100, seed: Seed = 0, device: Device = "cpu",
              resume: Resume = False, quiet: Quiet = False, save_optimizer: SaveOptimizer = "true") -> None:
    """Fit the config's autoencoder to the dataset's frames (tiny has no pretrained VAE)."""
    from .train.autoencoder import AutoencoderTask
    from .train.trainer import train

    config, dev, clips, options = _setup(data, config_name, device, steps, batch_size, lr, checkpoint_every, seed,
                                         quiet, save_optimizer, fixed_fraction=1.0)
    if config.vae_type != "kl":
        raise FaceTalkError(f"config {config.name!r} uses a tiny autoencoder, not trained here",
                            hint="use --init-from weights for base configs")
    task = AutoencoderTask(config, device=dev, seed=seed)
    _report(train(task, clips, out, options, config=config.name, max_frames=config.max_clip_frames, resume=resume,
                  meta={"data": str(data)}))


@train_app.command("teacher")
@reports_errors
def train_teacher(data: Data, out: Out,
                  vae: Annotated[Path, typer.Option(help="Checkpoint folder whose vae/ is used, frozen (train vae's final/).")],
                  config_name: Config = "tiny", steps: Steps = 2000, batch_size: BatchSize = 4, lr: Lr = 3e-4,
                  checkpoint_every: Every = 100, seed: Seed = 0, device: Device = "cpu", resume: Resume = False,
                  label_dropout: Annotated[float, typer.Option(help="Per-clip probability of a null label.")] = 0.1,
                  audio_dropout: Annotated[float, typer.Option(help="Per-clip probability of no audio.")] = 0.1,
                  fixed_fraction: Annotated[float, typer.Option(help="Share of steps at the fixed clip length.")] = 0.5,
                  quiet: Quiet = False, save_optimizer: SaveOptimizer = "true") -> None:
    """Multi-step ε-prediction teacher (LLIA schedule, CFG dropout) on a frozen VAE."""
    from .train.conditioning import DropoutRates
    from .train.teacher import TeacherTask
    from .train.trainer import train

    config, dev, clips, options = _setup(data, config_name, device, steps, batch_size, lr, checkpoint_every, seed,
                                         quiet, save_optimizer, fixed_fraction=fixed_fraction)
    task = TeacherTask(config, vae=vae, device=dev, seed=seed,
                       dropout=DropoutRates(label=label_dropout, audio=audio_dropout))
    _report(train(task, clips, out, options, config=config.name, max_frames=config.max_clip_frames, resume=resume,
                  meta={"data": str(data), "vae": str(vae)}))


@train_app.command("distill")
@reports_errors
def train_distill(data: Data, out: Out,
                  teacher: Annotated[Path, typer.Option(help="Teacher run folder (its final/) or checkpoint folder.")],
                  config_name: Config = "tiny", steps: Steps = 1000, batch_size: BatchSize = 4, lr: Lr = 1e-4,
                  checkpoint_every: Every = 100, seed: Seed = 0, device: Device = "cpu", resume: Resume = False,
                  guidance: Annotated[float, typer.Option(help="Audio CFG scale of the teacher's solver step (1 = none).")] = 1.0,
                  ema_decay: Annotated[float, typer.Option(help="Decay of the EMA target network.")] = 0.95,
                  quiet: Quiet = False, save_optimizer: SaveOptimizer = "true") -> None:
    """LCM consistency distillation of a 1/2/4-step student, initialised from the teacher."""
    from .train.distill import DistillTask
    from .train.trainer import train

    teacher_folder = teacher / "final" if (teacher / "final").is_dir() else teacher
    config, dev, clips, options = _setup(data, config_name, device, steps, batch_size, lr, checkpoint_every, seed,
                                         quiet, save_optimizer)
    task = DistillTask(config, teacher=teacher_folder, device=dev, guidance=guidance, ema_decay=ema_decay)
    _report(train(task, clips, out, options, config=config.name, max_frames=config.max_clip_frames, resume=resume,
                  meta={"data": str(data), "teacher": str(teacher_folder)}))


@train_app.command("decoder")
@reports_errors
def train_decoder(data: Data, out: Out,
                  checkpoint: Annotated[Path | None, typer.Option(help="Engine checkpoint whose VAE decoder is distilled; default: the bundled one (tiny).")] = None,
                  config_name: Config = "tiny", steps: Steps = 1500, batch_size: BatchSize = 2, lr: Lr = 2e-3,
                  checkpoint_every: Every = 250, seed: Seed = 0, device: Device = "cpu", resume: Resume = False,
                  quiet: Quiet = False, save_optimizer: SaveOptimizer = "true") -> None:
    """Distil a light (TAESD-shaped) decoder from the engine's KL decoder; prints its PSNR against it."""
    import torch

    from .diffusion.engine import BUNDLED_CHECKPOINT
    from .train.decoder import DecoderTask, light_decoder_psnr
    from .train.trainer import train

    config, dev, clips, options = _setup(data, config_name, device, steps, batch_size, lr, checkpoint_every, seed,
                                         quiet, save_optimizer, fixed_fraction=1.0)
    if checkpoint is None and config.name != "tiny":
        raise FaceTalkError(f"no bundled checkpoint for {config.name!r}", hint="pass --checkpoint with its VAE")
    task = DecoderTask(config, checkpoint=checkpoint or BUNDLED_CHECKPOINT, device=dev, seed=seed)
    _report(train(task, clips, out, options, config=config.name, max_frames=config.max_clip_frames, resume=resume,
                  meta={"data": str(data), "checkpoint": str(checkpoint or BUNDLED_CHECKPOINT)}))
    frames = torch.from_numpy(clips.held_out_frames()).to(dev)
    console.print(f"light decoder vs KL decoder on {len(frames)} held-out frames: "
                  f"{light_decoder_psnr(task.decoder.eval(), task.vae, frames)} dB PSNR", highlight=False)


@reports_errors
def eval_generator_command(
    data: Annotated[Path, typer.Option(help="Dataset whose held-out stretch is the test audio.")],
    engine: Annotated[str, typer.Option(help="Generator to measure: diffusion.")] = "diffusion",
    checkpoint: Annotated[Path | None, typer.Option(help="Student checkpoint; the bundled one if unset.")] = None,
    teacher: Annotated[Path | None, typer.Option(help="Teacher for PSNR/SSIM vs 25-step DDIM; default: the checkpoint's teacher/ if any.")] = None,
    persona: Annotated[Path, typer.Option(help="Persona YAML the dataset was made for.")] = default_config("persona.yaml"),
    sheet: Annotated[Path | None, typer.Option(help="Also write a contact sheet PNG here.")] = None,
    hold_out: Annotated[float, typer.Option(help="Measured share of the dataset's last video: 0.15 is the "
                                                 "stretch training held out; 1.0 for a dataset of unseen audio.")] = 0.15,
    seed: Annotated[int, typer.Option(help="Sampling noise seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Lip sync, listening stillness, PSNR/SSIM vs the teacher at 1/2/4 steps, and fps, on held-out audio."""
    if engine != "diffusion":
        raise FaceTalkError(f"unknown generator engine {engine!r}", hint="use --engine diffusion")
    from ..config import load_persona
    from .diffusion.configs import get_config
    from .diffusion.engine import BUNDLED_CHECKPOINT
    from .persona import prepare_persona
    from .train.dataset import TrainingClips
    from .train.evaluate import contact_sheet, evaluate_generator

    checkpoint = checkpoint or BUNDLED_CHECKPOINT
    from .diffusion.checkpoint import checkpoint_config

    config = get_config(checkpoint_config(checkpoint))
    if teacher is None and (checkpoint / "teacher").is_dir():
        teacher = checkpoint / "teacher"  # the bundled checkpoint ships its teacher
    elif teacher is not None and (teacher / "final").is_dir():
        teacher = teacher / "final"
    persona_config = load_persona(persona)
    pack = prepare_persona(persona_config.portrait, resolution=384)
    if not 0 < hold_out <= 1:
        raise FaceTalkError(f"--hold-out {hold_out} is outside (0, 1]", hint="use 0.15 (training's split) or 1.0")
    held = TrainingClips(data, resolution=config.resolution, window=config.audio_window,
                         motion_frames=config.motion_frames, hold_out=hold_out).held_out()
    result, frames = evaluate_generator(pack, held, checkpoint=checkpoint, teacher=teacher,
                                        expression=persona_config.expression, seed=seed)
    if sheet is not None:
        order = ["cpu", "lcm-1", "lcm-2", "lcm-4", "teacher-ddim-25"]
        contact_sheet({k: frames[k] for k in order if k in frames}, held.labels, sheet)
    if as_json:
        print(json.dumps(dataclasses.asdict(result)))
    else:
        for s in result.settings:
            console.print(dataclasses.asdict(s), highlight=False)
