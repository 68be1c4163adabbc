"""Training datasets: synth and build write the documented format; the reader returns aligned clips."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from facetalk.avatar.data import FaceTalkDataset, build_dataset, synth_dataset
from facetalk.avatar.data.convert import resample
from facetalk.avatar.data.synth import random_timeline
from facetalk.avatar.labels import Label
from facetalk.avatar.offline import render_video
from facetalk.avatar.persona import prepare_persona
from facetalk.avatar.speech import speak
from facetalk.cli import app
from facetalk.config import load_persona
from facetalk.errors import FaceTalkError

from .conftest import CONFIGS

PERSONA = CONFIGS / "persona.yaml"
SPEAKING, LISTENING, IDLE = 0, 1, 2
RATE = 24000


def _speech(text: str) -> np.ndarray:
    said = speak(text)
    return resample(said.samples, said.sample_rate)


def _write_mp4(path: Path, frames: list[np.ndarray], audio: np.ndarray | None, fps: int = 25) -> None:
    """An H.264 mp4, with an AAC track when ``audio`` is given."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = frames[0].shape[1], frames[0].shape[0]
        video.pix_fmt = "yuv420p"
        sound = container.add_stream("aac", rate=RATE, layout="mono") if audio is not None else None
        for k, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None and audio is not None:
            chunk = av.AudioFrame.from_ndarray(audio[None, :], format="s16", layout="mono")
            chunk.sample_rate, chunk.pts = RATE, 0
            container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))


def _lip_gap(landmarks: np.ndarray) -> np.ndarray:
    return np.linalg.norm(landmarks[:, 14] - landmarks[:, 13], axis=1)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s of synthetic data at 96², in two videos."""
    out = tmp_path_factory.mktemp("synth") / "ds"
    synth_dataset(load_persona(PERSONA), out, minutes=0.2, resolution=96, seed=3, video_seconds=6)
    return out


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A rendered talking-head mp4 (speech, 1 s pause, speech, 2.5 s silence) and its audio."""
    folder = tmp_path_factory.mktemp("talk")
    pack = prepare_persona(CONFIGS / "portraits" / "astronaut.png", resolution=384)
    audio = np.concatenate([_speech("Hello there, it is good to see you again."), np.zeros(RATE, np.int16),
                            _speech("What would you like to know?"), np.zeros(int(2.5 * RATE), np.int16)])
    render_video(pack, audio, folder / "talk.mp4", seed=0)
    return folder / "talk.mp4", audio


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, talk: tuple[Path, np.ndarray]) -> Path:
    """A build over the talking video plus a corrupt, a mute, a silent and a faceless one."""
    videos = tmp_path_factory.mktemp("videos")
    shutil.copy(talk[0], videos / "talk.mp4")
    (videos / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 500)
    pack = prepare_persona(CONFIGS / "portraits" / "astronaut.png", resolution=384)
    _write_mp4(videos / "mute.mp4", [pack.image] * 50, None)
    render_video(pack, np.zeros(3 * RATE, np.int16), videos / "silent.mp4")
    _write_mp4(videos / "faceless.mp4", [np.full((240, 320, 3), 128, np.uint8)] * 75, talk[1][:3 * RATE])
    out = tmp_path_factory.mktemp("built") / "ds"
    build_dataset(videos, out)
    return out


def test_synth_writes_the_documented_format(synth: Path) -> None:
    """A synth dataset has a manifest with versions and counts, and the per-video files."""
    manifest = json.loads((synth / "manifest.json").read_text())
    assert manifest["format"] == "facetalk-dataset" and manifest["version"] == 1 and manifest["kind"] == "synth"
    assert manifest["resolution"] == 96 and manifest["fps"] == 25 and manifest["samples_per_frame"] == 960
    assert manifest["counts"]["videos"] == 2 and manifest["counts"]["frames"] == 300
    assert sum(manifest["counts"]["labels"].values()) == 300
    for video in manifest["videos"]:
        folder = synth / "videos" / video["id"]
        assert sorted(p.name for p in folder.iterdir()) == [
            "audio.npy", "frame_index.npy", "frames.npy", "meta.npz", "video.json"]
        assert np.load(folder / "audio.npy").size == video["frames"] * 960


def test_synth_clips_have_shapes_labels_and_aligned_audio(synth: Path) -> None:
    """Clips have the documented shapes; only speaking frames carry sound, and the lips move with it."""
    dataset = FaceTalkDataset(synth, clip_frames=8, audio_context=2)
    assert len(dataset) == 2 * (150 // 8)
    clip = dataset[1]
    assert clip.frames.shape == (8, 96, 96, 3) and clip.frames.dtype == np.uint8
    assert clip.audio.shape == ((8 + 4) * 960,) and clip.audio.dtype == np.int16
    assert clip.features.shape == (8, 3) and clip.labels.shape == (8,) and clip.landmarks.shape == (8, 468, 2)
    assert clip.transforms.shape == (8, 2, 3) and clip.reference.shape == (96, 96, 3) and clip.valid.all()
    whole = dataset.with_options(clip_frames=150, audio_context=0)
    counts = dataset.label_counts()
    assert counts["speaking"] > 0 and counts["listening"] + counts["idle"] > 0
    for video in range(2):
        clip = whole[video]
        loud = np.abs(clip.audio.reshape(150, 960)).max(axis=1) > 0
        speaking = clip.labels == SPEAKING
        edges = np.flatnonzero(np.diff(clip.labels)) + 1
        inner = np.ones(150, bool)
        inner[np.concatenate([edges - 1, edges])] = False  # a segment starts or ends inside these frames
        assert not loud[~speaking & inner].any() and loud[speaking].mean() > 0.8
        gap, energy = _lip_gap(clip.landmarks)[speaking], clip.features[speaking, 0]
        assert np.corrcoef(gap[2:], energy[:-2])[0, 1] > 0.3  # the mouth follows the sound, a frame or two behind


def test_synth_is_deterministic_for_a_seed(synth: Path, tmp_path: Path) -> None:
    """The same seed gives byte-identical frames and arrays; another seed another timeline."""
    again = tmp_path / "again"
    synth_dataset(load_persona(PERSONA), again, minutes=0.2, resolution=96, seed=3, video_seconds=6)
    for folder in (synth / "videos").iterdir():
        for name in ("frames.npy", "audio.npy", "meta.npz"):
            assert (folder / name).read_bytes() == (again / "videos" / folder.name / name).read_bytes(), name

    def timeline(seed: int) -> list[tuple[Label, int]]:
        segments = random_timeline(np.random.default_rng(seed), 60, lambda text: np.ones(len(text) * 100, np.int16))
        return [(s.label, s.audio.size) for s in segments]

    assert timeline(1) == timeline(1) and timeline(1) != timeline(2)


def test_split_shares_no_frames(synth: Path) -> None:
    """Splits by video and by time cover every frame once; clips never cross a span."""
    dataset = FaceTalkDataset(synth, clip_frames=10)
    for by in ("video", "time"):
        train, held = dataset.split(0.2, by=by)
        assert train.frames + held.frames == dataset.frames
        assert {(s.video, k) for s in train.spans for k in range(s.start, s.stop)}.isdisjoint(
            {(s.video, k) for s in held.spans for k in range(s.start, s.stop)})
        clip = held.sample(np.random.default_rng(0), 7)
        assert any(s.video == clip.video and s.start <= clip.start and clip.start + 7 <= s.stop for s in held.spans)


def test_a_damaged_video_is_named_with_the_fix(synth: Path, tmp_path: Path) -> None:
    """A video whose files were lost is a FaceTalkError naming its folder, not a numpy error."""
    damaged = tmp_path / "damaged"
    shutil.copytree(synth, damaged)
    video = next((damaged / "videos").iterdir())
    (video / "meta.npz").unlink()
    dataset = FaceTalkDataset(damaged, clip_frames=10, require_valid=False)
    with pytest.raises(FaceTalkError, match=f"(?s){video.name}: unreadable video.*fix: rebuild the dataset"):
        dataset.clip(video.name, 0, 10)


def test_build_keeps_the_good_video_and_reports_the_rest(built: Path) -> None:
    """Only the talking video is stored; the corrupt, mute, silent and faceless ones are skipped with reasons."""
    report = {v["source"]: v for v in json.loads((built / "report.json").read_text())["videos"]}
    assert report["talk.mp4"]["status"] == "built"
    reasons = {name: report[name]["reason"] for name in ("corrupt.mp4", "mute.mp4", "silent.mp4", "faceless.mp4")}
    assert reasons["corrupt.mp4"].startswith("corrupt")
    assert reasons["mute.mp4"] == "no audio track"
    assert reasons["silent.mp4"].startswith("no speech")
    assert reasons["faceless.mp4"].startswith("no face")
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["kind"] == "build" and [v["source"] for v in manifest["videos"]] == ["talk.mp4"]


def test_build_labels_follow_the_vad_rule(built: Path, talk: tuple[Path, np.ndarray]) -> None:
    """Speech is speaking, the 1 s pause between sentences listening, the final 2.5 s idle; audio matches the source."""
    dataset = FaceTalkDataset(built, clip_frames=1)
    frames = dataset.frames
    clip = dataset.with_options(clip_frames=frames)[0]
    assert abs(frames - talk[1].size / 960) <= 2 and clip.valid.mean() > 0.95
    starts = np.concatenate([[0], np.flatnonzero(np.diff(clip.labels)) + 1, [frames]])
    runs = [(int(clip.labels[a]), int(b - a)) for a, b in zip(starts[:-1], starts[1:], strict=True)]
    if runs[0][0] == IDLE:
        assert runs.pop(0)[1] <= 5  # piper's leading silence, before the first speech
    assert [label for label, _ in runs] == [SPEAKING, LISTENING, SPEAKING, IDLE]
    assert 1.0 * 25 <= runs[1][1] <= 1.6 * 25  # the 1 s pause plus piper's silences around sentences
    assert runs[3][1] >= 2.3 * 25
    common = min(talk[1].size, clip.audio.size)
    source, stored = talk[1][:common].astype(np.float64), clip.audio[:common].astype(np.float64)
    assert np.corrcoef(source, stored)[0, 1] > 0.9  # AAC round trip, no offset
    assert np.abs(clip.landmarks - clip.landmarks.mean(0)).max() < 96 / 4  # the face stays put in the crop


def test_build_resumes_without_redoing_finished_videos(talk: tuple[Path, np.ndarray], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """After a kill in the second video, a rerun keeps the first one as it was and finishes the second."""
    import facetalk.avatar.data.build as build

    videos, out = tmp_path / "videos", tmp_path / "ds"
    videos.mkdir()
    shutil.copy(talk[0], videos / "a.mp4")
    shutil.copy(talk[0], videos / "b.mp4")
    calls = []
    real_assemble = build.assemble

    def killed_in_second(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            (out / "videos" / ".tmp-half-written").mkdir()
            raise KeyboardInterrupt
        return real_assemble(*args, **kwargs)

    monkeypatch.setattr(build, "assemble", killed_in_second)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(videos, out)
    monkeypatch.setattr(build, "assemble", real_assemble)
    first = next(p for p in (out / "videos").iterdir() if p.name.startswith("a-"))
    stamp = (first / "frames.npy").stat().st_mtime_ns
    result = build_dataset(videos, out)
    assert result.processed == 1 and len(result.built) == 2
    assert (first / "frames.npy").stat().st_mtime_ns == stamp
    assert sorted(p.name[:2] for p in (out / "videos").iterdir()) == ["a-", "b-"]  # no temp folder left
    again = build_dataset(videos, out)
    assert again.processed == 0 and len(FaceTalkDataset(out).spans) == 2


def test_commands(tmp_path: Path) -> None:
    """'data synth' writes a dataset; 'data build' on a folder without videos fails with a hint."""
    runner = CliRunner()
    result = runner.invoke(app, ["data", "synth", "--persona", str(PERSONA), "--minutes", "0.05",
                                 "--resolution", "64", "--out", str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    assert FaceTalkDataset(tmp_path / "ds").frames == 75
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["data", "build", str(tmp_path / "empty"), "--out", str(tmp_path / "ds2")])
    assert result.exit_code == 1 and "no video files" in result.output
