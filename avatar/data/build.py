"""``facetalk data build``: a dataset from recorded talking-head videos.

Every video file under the folder (``.mp4``, ``.mov``, ``.mkv``, ``.webm``,
``.avi``, ``.m4v``, searched recursively, in sorted order) is decoded with PyAV,
resampled to the dataset's frame rate by nearest timestamp, and stored with
its face track, aligned crops, audio, audio features and VAD labels
(:mod:`.labelling`). Audio and video are assumed to start together, as in
ordinary exports.

A video is skipped, with its reason in ``report.json``, when it cannot be
opened or decoded (``corrupt``), has no video or audio track, is shorter than
a second, has under ``min_speech_s`` of speech (``no speech``), or shows a
face in fewer than ``min_face_fraction`` of its frames (``no face``).

Resuming: each finished video is a complete folder (written under a temp name
and renamed) and each skipped one is in the report with its file's size and
modification time; a second run with the same settings redoes neither, and
throws away any half-written folder.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np

from ...errors import FaceTalkError
from ..labels import Label
from ..landmarks import FaceLandmarker
from ..offline import read_audio
from .convert import assemble
from .format import (
    LABELS, VideoRecord, finished_videos, folder_bytes, read_manifest, samples_per_frame, write_json, write_manifest,
    write_video,
)
from .labelling import VadLabelRule, speech_labels
from .tracking import track_faces

__all__ = ["VIDEO_SUFFIXES", "BuildResult", "SourceOutcome", "build_dataset"]

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")


class _Skip(Exception):
    """This video cannot be used; the message is the report's reason."""


@dataclass
class SourceOutcome:
    """One source video's entry in ``report.json``.

    Attributes:
        source: path relative to the videos folder.
        id: its folder name under ``videos/``.
        status: ``built`` or ``skipped``.
        reason: why it was skipped (empty when built).
        fingerprint: ``<bytes>:<mtime_ns>`` of the file, to notice a changed file on resume.
        frames: stored frames (0 when skipped).
        seconds: stored seconds.
    """

    source: str
    id: str
    status: str
    reason: str
    fingerprint: str
    frames: int = 0
    seconds: float = 0.0


@dataclass
class BuildResult:
    """What ``build_dataset`` did.

    Attributes:
        root: the dataset folder.
        outcomes: one per source video, in order.
        processed: videos this run worked on (the rest were done by an earlier run).
        wall_s: wall-clock time of this run.
        bytes: size of the dataset folder.
    """

    root: Path
    outcomes: list[SourceOutcome]
    processed: int
    wall_s: float
    bytes: int

    @property
    def built(self) -> list[SourceOutcome]:
        """The videos in the dataset."""
        return [o for o in self.outcomes if o.status == "built"]

    @property
    def skipped(self) -> list[SourceOutcome]:
        """The videos left out, with reasons."""
        return [o for o in self.outcomes if o.status == "skipped"]


def _video_id(relative: str) -> str:
    """A readable, collision-free folder name: slug of the path plus a short hash."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", relative.rsplit(".", 1)[0]).strip("-")[:48] or "video"
    return f"{slug}-{hashlib.sha1(relative.encode()).hexdigest()[:8]}"


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _frames_at(path: Path, fps: int) -> Iterator[np.ndarray]:
    """RGB frames at ``fps``: for each output time, the source frame nearest to it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        duration = 1.0 / float(stream.average_rate or fps)
        k, previous, previous_t, start = 0, None, 0.0, None
        for frame in container.decode(stream):
            t = float(frame.time or 0.0)
            start = t if start is None else start
            t -= start
            rgb = frame.to_ndarray(format="rgb24")
            if previous is not None:
                while k / fps < (previous_t + t) / 2:
                    yield previous
                    k += 1
            previous, previous_t = rgb, t
        while previous is not None and k / fps < previous_t + duration:
            yield previous
            k += 1


def _check_streams(path: Path) -> None:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise _Skip("no video track")
            if not container.streams.audio:
                raise _Skip("no audio track")
    except av.error.FFmpegError as e:
        raise _Skip(f"corrupt: cannot open ({e})") from e


def _convert(path: Path, *, out: Path, video_id: str, relative: str, landmarker: FaceLandmarker, resolution: int,
             fps: int, quality: int, rule: VadLabelRule, min_speech_s: float,
             min_face_fraction: float) -> VideoRecord:
    """Store one video, or raise :class:`_Skip` saying why it cannot be used."""
    # 1. Streams and audio.
    _check_streams(path)
    try:
        audio = read_audio(path)
    except FaceTalkError as e:
        raise _Skip(f"corrupt: cannot decode the audio ({e.message})") from e
    audio_frames = audio.size // samples_per_frame(fps)
    if audio_frames < fps:
        raise _Skip(f"too short: {audio.size / 24000:.2f} s of audio")
    # 2. Labels from voice activity.
    labels = speech_labels(audio, fps=fps, frames=audio_frames, rule=rule)
    speech_s = float((labels == LABELS.index(Label.SPEAKING)).sum()) / fps
    if speech_s < min_speech_s:
        raise _Skip(f"no speech: the VAD found {speech_s:.1f} s (need {min_speech_s:.1f} s)")
    # 3. The face through the video.
    try:
        track = track_faces((f for _, f in zip(range(audio_frames), _frames_at(path, fps), strict=False)),
                            landmarker, size=resolution, fps=fps)
        count = track.valid.size
        if count < fps:
            raise _Skip(f"too short: {count} decodable video frames")
        fraction = float(track.valid.mean())
        if fraction < min_face_fraction:
            raise _Skip(f"no face: found in {fraction:.0%} of frames (need {min_face_fraction:.0%})")
        # 4. Crop, encode and write.
        arrays = assemble(lambda: _frames_at(path, fps), track, audio, labels[:count], fps=fps, size=resolution,
                          quality=quality)
    except av.error.FFmpegError as e:
        raise _Skip(f"corrupt: cannot decode the video ({e})") from e
    return write_video(out, video_id, relative, arrays, fps=fps, source_size=track.source_size)


def _write_report(out: Path, outcomes: list[SourceOutcome], pending: list[SourceOutcome]) -> None:
    """``report.json``: this run's outcomes, then the earlier run's for the videos still to visit."""
    write_json(out / "report.json", {"videos": [asdict(o) for o in outcomes + pending]})


def _earlier_report(out: Path) -> dict[str, SourceOutcome]:
    path = out / "report.json"
    if not path.is_file():
        return {}
    return {o["source"]: SourceOutcome(**o) for o in json.loads(path.read_text())["videos"]}


def build_dataset(
    videos_dir: Path,
    out: Path,
    *,
    resolution: int = 128,
    fps: int = 25,
    quality: int = 95,
    rule: VadLabelRule | None = None,
    min_speech_s: float = 1.0,
    min_face_fraction: float = 0.5,
    on_video: Callable[[SourceOutcome], None] | None = None,
) -> BuildResult:
    """Build (or resume building) the dataset ``out`` from the videos under ``videos_dir``.

    Args:
        videos_dir: folder searched recursively for video files.
        out: dataset folder.
        resolution: crop side in pixels (128 for the ``tiny`` config, 512 for base).
        fps: dataset frame rate; must divide 24000.
        quality: JPEG quality of the stored crops.
        rule: the VAD labelling thresholds.
        min_speech_s: less speech than this and the video is skipped.
        min_face_fraction: a face must be found in at least this fraction of frames.
        on_video: called after each video is built or skipped (progress).

    Raises:
        FaceTalkError: no such folder, no videos in it, or ``out`` was built with other settings.
    """
    # 1. Inputs and any earlier run.
    started = time.perf_counter()
    rule = rule or VadLabelRule()
    if not videos_dir.is_dir():
        raise FaceTalkError(f"{videos_dir}: not a folder", hint="pass the folder that holds the videos")
    sources = sorted(p for p in videos_dir.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not sources:
        raise FaceTalkError(f"{videos_dir}: no video files", hint=f"put {', '.join(VIDEO_SUFFIXES)} files in it")
    samples_per_frame(fps)
    settings = {"videos": str(videos_dir), "resolution": resolution, "fps": fps, "quality": quality,
                "rule": asdict(rule), "min_speech_s": min_speech_s, "min_face_fraction": min_face_fraction}
    if (out / "manifest.json").is_file() and read_manifest(out)["settings"] != settings:
        raise FaceTalkError(f"{out} holds a dataset built with other settings",
                            hint="pass a new --out folder, or the same settings to resume it")
    out.mkdir(parents=True, exist_ok=True)
    done = {v.id: v for v in finished_videos(out)}
    earlier = _earlier_report(out)
    landmarker: FaceLandmarker | None = None
    # 2. Each video: reuse, or convert / skip.
    outcomes: list[SourceOutcome] = []
    records: list[VideoRecord] = []
    processed = 0
    relatives = [p.relative_to(videos_dir).as_posix() for p in sources]
    for path, relative in zip(sources, relatives, strict=True):
        video_id, fingerprint = _video_id(relative), _fingerprint(path)
        before = earlier.get(relative)
        if before is not None and before.fingerprint == fingerprint and (
                before.status == "skipped" or video_id in done):
            outcomes.append(before)
            records += [done[video_id]] if before.status == "built" else []
            continue
        landmarker = landmarker or FaceLandmarker.load()
        try:
            record = _convert(path, out=out, video_id=video_id, relative=relative, landmarker=landmarker,
                              resolution=resolution, fps=fps, quality=quality, rule=rule,
                              min_speech_s=min_speech_s, min_face_fraction=min_face_fraction)
            outcome = SourceOutcome(relative, video_id, "built", "", fingerprint, record.frames, record.seconds)
            records.append(record)
        except _Skip as e:
            outcome = SourceOutcome(relative, video_id, "skipped", str(e), fingerprint)
        processed += 1
        outcomes.append(outcome)
        # 3. Record progress after every video, so a kill loses at most the one in hand.
        pending = [earlier[r] for r in relatives[len(outcomes):] if r in earlier]
        _write_report(out, outcomes, pending)
        write_manifest(out, kind="build", resolution=resolution, fps=fps, jpeg_quality=quality, videos=records,
                       settings=settings)
        if on_video is not None:
            on_video(outcome)
    _write_report(out, outcomes, [])
    write_manifest(out, kind="build", resolution=resolution, fps=fps, jpeg_quality=quality, videos=records,
                   settings=settings)
    return BuildResult(root=out, outcomes=outcomes, processed=processed, wall_s=time.perf_counter() - started,
                       bytes=folder_bytes(out))
