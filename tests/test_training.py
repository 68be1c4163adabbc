"""Training the diffusion engine at ``tiny``: kill and resume, distillation, evaluation JSON, bad inputs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from typer.testing import CliRunner  # noqa: E402

from facetalk.avatar.audio import AudioFeatures  # noqa: E402
from facetalk.avatar.data.format import LABELS, VideoArrays, encode_frame, write_manifest, write_video  # noqa: E402
from facetalk.avatar.diffusion import get_config, load_checkpoint  # noqa: E402
from facetalk.avatar.engine import CpuEngine  # noqa: E402
from facetalk.avatar.labels import Label  # noqa: E402
from facetalk.avatar.persona import prepare_persona  # noqa: E402
from facetalk.avatar.train import AutoencoderTask, DistillTask, TeacherTask, TrainOptions, train  # noqa: E402
from facetalk.avatar.train.dataset import TrainingClips  # noqa: E402
from facetalk.cli import app  # noqa: E402
from facetalk.errors import FaceTalkError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TINY = get_config("tiny")
CPU = torch.device("cpu")
QUICK = dict(batch_size=1, checkpoint_every=2, warmup_steps=1, progress=False)


def _steps(run: Path) -> list[int]:
    with (run / "losses.csv").open(newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six seconds rendered by the CPU engine (speaking, then listening), stored at 64² in format v1."""
    root = tmp_path_factory.mktemp("ds")
    pack = prepare_persona(REPO / "configs" / "portraits" / "astronaut.png", resolution=384,
                           out=tmp_path_factory.mktemp("pack"))
    engine, rng = CpuEngine(pack, fps=25, seed=0), np.random.default_rng(0)
    labels = np.array([0] * 100 + [1] * 50, np.uint8)
    features = np.stack([rng.uniform(0, 1, 150), rng.uniform(0.2, 0.8, 150), rng.uniform(0, 0.3, 150)], 1)
    frames = [engine.render_clip([AudioFeatures(*map(float, f)) if code == 0 else None], LABELS[code]).frames[0]
              for f, code in zip(features, labels, strict=True)]
    small = [cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in frames]
    arrays = VideoArrays(jpegs=[encode_frame(f, 95) for f in small], audio=np.zeros(150 * 960, np.int16),
                         transforms=np.tile(np.eye(2, 3, dtype=np.float32), (150, 1, 1)),
                         landmarks=np.tile(pack.points[None] * 64 / 384, (150, 1, 1)),
                         features=features.astype(np.float32), labels=labels, valid=np.ones(150, bool),
                         reference=cv2.resize(pack.image, (64, 64), interpolation=cv2.INTER_AREA))
    record = write_video(root, "v0", "test", arrays, fps=25, source_size=(64, 64))
    write_manifest(root, kind="synth", resolution=64, fps=25, jpeg_quality=95, videos=[record], settings={})
    return root


@pytest.fixture(scope="module")
def clips(dataset: Path) -> TrainingClips:
    return TrainingClips(dataset, resolution=64, window=TINY.audio_window, motion_frames=TINY.motion_frames)


@pytest.fixture(scope="module")
def vae_run(clips: TrainingClips, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("vae")
    train(AutoencoderTask(TINY, device=CPU), clips, run, TrainOptions(steps=2, **QUICK), config="tiny", max_frames=8)
    return run


@pytest.fixture(scope="module")
def teacher_run(clips: TrainingClips, vae_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("teacher")
    train(TeacherTask(TINY, vae=vae_run / "final", device=CPU), clips, run, TrainOptions(steps=2, **QUICK),
          config="tiny", max_frames=8)
    return run


def test_killed_teacher_resumes_without_gap(dataset: Path, vae_run: Path, tmp_path: Path) -> None:
    """SIGKILL after the first checkpoint, then --resume: steps continue and losses.csv has each step once."""
    run = tmp_path / "run"
    command = [sys.executable, "-m", "facetalk", "train", "teacher", "--data", str(dataset), "--out", str(run),
               "--vae", str(vae_run / "final"), "--steps", "200", "--batch-size", "1", "--checkpoint-every", "3",
               "--quiet"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (run / "checkpoints" / "step-00000003").is_dir():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "no checkpoint within 60 s"
        time.sleep(0.1)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = max(int(p.name.removeprefix("step-")) for p in (run / "checkpoints").glob("step-*"))
    resumed = subprocess.run([*command[:command.index("200")], str(killed_at + 3), *command[command.index("200") + 1:],
                              "--resume"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"steps {killed_at + 1}..{killed_at + 3}" in " ".join(resumed.stdout.split())
    assert _steps(run) == list(range(1, killed_at + 4))
    assert load_checkpoint(run / "final", TINY).unet is not None


def test_resume_draws_what_an_uninterrupted_run_draws(clips: TrainingClips, vae_run: Path, tmp_path: Path) -> None:
    """Seeds and generator states are checkpointed: 2+2 resumed steps give the losses of 4 straight steps."""
    def losses(run: Path) -> list[str]:
        with (run / "losses.csv").open(newline="") as f:
            return [r["loss"] for r in csv.DictReader(f)]

    # One clip-length phase, so the two calls' different --steps do not move the phase boundary.
    make = lambda: TeacherTask(TINY, vae=vae_run / "final", device=CPU)  # noqa: E731
    options = lambda steps: TrainOptions(steps=steps, fixed_fraction=0.0, **QUICK)  # noqa: E731
    train(make(), clips, tmp_path / "straight", options(4), config="tiny", max_frames=8)
    train(make(), clips, tmp_path / "split", options(2), config="tiny", max_frames=8)
    train(make(), clips, tmp_path / "split", options(4), config="tiny", max_frames=8, resume=True)
    assert losses(tmp_path / "split") == losses(tmp_path / "straight")


def test_distill_smoke(clips: TrainingClips, teacher_run: Path, tmp_path: Path) -> None:
    """The student starts from the teacher, trains with audio guidance, and exports an engine-loadable checkpoint
    (diffusers' pipeline layout)."""
    task = DistillTask(TINY, teacher=teacher_run / "final", device=CPU, guidance=2.0)
    result = train(task, clips, tmp_path / "student", TrainOptions(steps=3, **QUICK), config="tiny", max_frames=8)
    assert _steps(tmp_path / "student") == [1, 2, 3]
    assert np.isfinite(result.last_loss)
    assert load_checkpoint(result.final, TINY).unet is not None
    assert (result.final / "model_index.json").is_file() and (result.final / "unet" / "config.json").is_file()


def test_eval_generator_json(dataset: Path, teacher_run: Path) -> None:
    """The JSON has lip sync, listening ratio, PSNR/SSIM vs the teacher and fps at 1, 2 and 4 steps."""
    out = CliRunner().invoke(app, ["eval", "generator", "--engine", "diffusion", "--data", str(dataset),
                                   "--checkpoint", str(teacher_run / "final"), "--teacher", str(teacher_run),
                                   "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("lipsync_corr", "listening_mouth_ratio", "psnr_vs_teacher_db", "ssim_vs_teacher", "fps"):
        assert key in result
    names = {s["name"] for s in result["settings"]}
    assert {"lcm-1", "lcm-2", "lcm-4", "teacher-ddim-25", "cpu"} <= names
    assert all(s["psnr_vs_teacher_db"] is not None for s in result["settings"] if s["name"].startswith("lcm"))
    assert result["steps"] == 2 and result["fps"] > 0


def test_weights_only_checkpoints_and_models_in_memory(dataset: Path, clips: TrainingClips, vae_run: Path,
                                                       tmp_path: Path) -> None:
    """save_optimizer=False (CLI: --save-optimizer false) keeps AdamW's state out of checkpoints and a resume
    still continues; the tasks take models held in memory and refuse another config's."""
    from facetalk.avatar.train.checkpoints import CheckpointStore

    vae_models = load_checkpoint(vae_run / "final", TINY)
    run = tmp_path / "teacher"
    weights_only = lambda steps: TrainOptions(steps=steps, save_optimizer=False, **QUICK)  # noqa: E731
    train(TeacherTask(TINY, vae=vae_models, device=CPU), clips, run, weights_only(2), config="tiny", max_frames=8)
    state = CheckpointStore.load(CheckpointStore(run).latest())
    assert "optimizer" not in state and "unet" in state["task"]
    train(TeacherTask(TINY, vae=vae_models, device=CPU), clips, run, weights_only(3), config="tiny", max_frames=8,
          resume=True)
    assert _steps(run) == [1, 2, 3]
    student = train(DistillTask(TINY, teacher=load_checkpoint(run / "final", TINY), device=CPU), clips,
                    tmp_path / "student", weights_only(1), config="tiny", max_frames=8)
    assert load_checkpoint(student.final, TINY).unet is not None
    with pytest.raises(FaceTalkError, match="not built for config 'base-384'"):
        TeacherTask(get_config("base-384"), vae=vae_models, device=CPU)
    cli = tmp_path / "cli"
    out = CliRunner().invoke(app, ["train", "teacher", "--data", str(dataset), "--out", str(cli), "--vae",
                                   str(vae_run / "final"), "--steps", "1", "--batch-size", "1", "--quiet",
                                   "--save-optimizer", "false"])
    assert out.exit_code == 0, out.output
    assert "optimizer" not in CheckpointStore.load(CheckpointStore(cli).latest())
    out = CliRunner().invoke(app, ["train", "teacher", "--data", str(dataset), "--out", str(tmp_path / "x"), "--vae",
                                   str(vae_run / "final"), "--steps", "1", "--save-optimizer", "no"])
    assert out.exit_code != 0 and "--save-optimizer false" in out.output


def test_light_decoder_distils_the_kl_decoder(clips: TrainingClips, tmp_path: Path) -> None:
    """The decoder task pulls a TAESD-shaped decoder towards the bundled VAE's KL decode on held-out frames,
    and exports a folder that loads for its config only."""
    from facetalk.avatar.diffusion.engine import BUNDLED_CHECKPOINT
    from facetalk.avatar.diffusion.light_decoder import load_light_decoder
    from facetalk.avatar.train.decoder import DecoderTask, light_decoder_psnr

    task = DecoderTask(TINY, checkpoint=BUNDLED_CHECKPOINT, device=CPU)
    frames = torch.from_numpy(clips.held_out_frames(16))
    before = light_decoder_psnr(task.decoder.eval(), task.vae, frames)
    options = TrainOptions(steps=60, lr=2e-3, **{**QUICK, "checkpoint_every": 60})
    result = train(task, clips, tmp_path / "decoder", options, config="tiny", max_frames=8)
    assert light_decoder_psnr(task.decoder.eval(), task.vae, frames) > before + 3
    assert load_light_decoder(result.final, TINY).config.engine_config == "tiny"
    with pytest.raises(FaceTalkError, match="light decoder for 'tiny', not 'base-384'") as error:
        load_light_decoder(result.final, get_config("base-384"))
    assert "facetalk train decoder --config base-384" in error.value.hint


def test_bad_inputs(clips: TrainingClips, vae_run: Path, tmp_path: Path) -> None:
    """A missing dataset, another config's checkpoint, and a mismatched or clobbered run are FaceTalkErrors."""
    with pytest.raises(FaceTalkError, match="not a FaceTalk dataset"):
        TrainingClips(tmp_path / "nowhere", resolution=64, window=5, motion_frames=2)
    with pytest.raises(FaceTalkError, match="not 'base-384'"):
        TeacherTask(get_config("base-384"), vae=vae_run / "final", device=CPU)
    with pytest.raises(FaceTalkError, match="not 'base-384'"):
        DistillTask(get_config("base-384"), teacher=vae_run / "final", device=CPU)
    task = AutoencoderTask(TINY, device=CPU)
    with pytest.raises(FaceTalkError, match="already holds"):
        train(task, clips, vae_run, TrainOptions(steps=2, **QUICK), config="tiny", max_frames=8)
    with pytest.raises(FaceTalkError, match="not 'base-384'"):
        train(task, clips, vae_run, TrainOptions(steps=2, **QUICK), config="base-384", max_frames=8, resume=True)
    with pytest.raises(FaceTalkError, match="nothing to resume"):
        train(task, clips, tmp_path / "empty", TrainOptions(steps=2, **QUICK), config="tiny", max_frames=8,
              resume=True)


def test_bundled_checkpoint_is_the_default() -> None:
    """The shipped tiny student (and its teacher) load, and engine: diffusion picks the student when none is set."""
    from facetalk.avatar.diffusion.engine import BUNDLED_CHECKPOINT, DiffusionOptions, load_models

    student = load_checkpoint(BUNDLED_CHECKPOINT, TINY)
    load_checkpoint(BUNDLED_CHECKPOINT / "teacher", TINY)
    default = load_models(TINY, DiffusionOptions())
    for a, b in zip(student.unet.parameters(), default.unet.parameters(), strict=True):
        assert torch.equal(a, b)
