"""The on-disk format of FaceTalk training datasets (version 1).

One folder per dataset; one sub-folder per video (a source video, or one
synthetic recording). Every video is stored at the dataset's frame rate
``fps`` (25 by default), and video frame ``k`` owns the audio samples
``[k * spf, (k + 1) * spf)`` with ``spf = 24000 // fps`` (960 at 25 fps)::

    DS/
      manifest.json          format, version, resolution, fps, label and feature names, counts, video list
      report.json            (``data build`` only) what happened to each source video, and why
      videos/<id>/
        frames.npy           uint8 (B,): the aligned face crops, JPEG-encoded and concatenated
        frame_index.npy      int64 (T + 1,): frame k is frames[index[k]:index[k + 1]]
        audio.npy            int16 (T * spf,): mono speech at 24 kHz, aligned to the frames
        meta.npz             per-frame arrays, below
        video.json           id, source, frames, seconds, label counts, source frame size

``meta.npz`` holds:

- ``transforms`` float32 ``(T, 2, 3)``: the affine from source-frame pixels to
  crop pixels (``cv2.warpAffine`` convention), a similarity transform;
- ``landmarks`` float16 ``(T, 468, 2)``: the MediaPipe face mesh in crop pixels;
- ``features`` float32 ``(T, 3)``: :class:`~facetalk.avatar.audio.AudioFeatures`
  (energy, brightness, noisiness) of each frame's audio, from one
  :class:`~facetalk.avatar.audio.FeatureExtractor` run over the whole video;
- ``labels`` uint8 ``(T,)``: index into :data:`LABELS` (0 speaking, 1 listening, 2 idle);
- ``valid`` bool ``(T,)``: a face was found in this frame (else its landmarks
  and transform are carried over from the nearest frame that had one);
- ``reference`` uint8 ``(S, S, 3)``: the identity image for this video (the
  valid frame whose lips are closest, preferring listening and idle frames).

Crops are JPEG (quality 95 by default) for random access to any frame at a
small size: two minutes of synthetic data take 34 MB at 128² (8 kB a frame,
plus 48 kB/s of audio and 1.3 kB a frame of metadata) and about 210 MB at 512².
``.npy`` files are read memory-mapped. Folders appear atomically (written as ``.tmp-<id>`` and renamed),
so a folder without the ``.tmp-`` prefix is always complete.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..audio import SAMPLE_RATE
from ..labels import Label

__all__ = [
    "FEATURES", "FORMAT", "FORMAT_VERSION", "LABELS", "TMP_PREFIX", "VideoArrays", "VideoRecord", "encode_frame",
    "finished_videos", "folder_bytes", "read_manifest", "samples_per_frame", "write_json", "write_manifest", "write_video",
]

FORMAT = "facetalk-dataset"
FORMAT_VERSION = 1
LABELS: tuple[Label, ...] = (Label.SPEAKING, Label.LISTENING, Label.IDLE)
"""Label codes: a frame's ``labels`` value indexes this tuple."""
FEATURES = ("energy", "brightness", "noisiness")
"""Columns of ``features``, in order (see :class:`~facetalk.avatar.audio.AudioFeatures`)."""
TMP_PREFIX = ".tmp-"


def samples_per_frame(fps: int) -> int:
    """Audio samples at 24 kHz owned by one video frame; ``fps`` must divide 24000."""
    if fps <= 0 or SAMPLE_RATE % fps:
        raise ValueError(f"fps {fps} does not divide the {SAMPLE_RATE} Hz sample rate")
    return SAMPLE_RATE // fps


@dataclass
class VideoArrays:
    """One video's content before it is written (shapes as in the module docstring).

    Attributes:
        jpegs: one JPEG-encoded crop per frame.
        audio: int16 ``(T * spf,)``.
        transforms: float32 ``(T, 2, 3)``.
        landmarks: float32 ``(T, 468, 2)`` in crop pixels (stored as float16).
        features: float32 ``(T, 3)``.
        labels: uint8 ``(T,)``.
        valid: bool ``(T,)``.
        reference: uint8 ``(S, S, 3)`` RGB.
    """

    jpegs: list[bytes]
    audio: np.ndarray
    transforms: np.ndarray
    landmarks: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    valid: np.ndarray
    reference: np.ndarray


@dataclass
class VideoRecord:
    """What ``video.json`` and the manifest say about one stored video.

    Attributes:
        id: the folder name under ``videos/``.
        source: where it came from (a video path, or ``synth:<seed>:<index>``).
        frames: T.
        seconds: T / fps.
        labels: frame count per label name.
        valid_frames: frames in which a face was found.
        source_size: ``[width, height]`` of the source frames, pixels.
    """

    id: str
    source: str
    frames: int
    seconds: float
    labels: dict[str, int]
    valid_frames: int
    source_size: list[int] = field(default_factory=list)


def encode_frame(rgb: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an RGB uint8 crop."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def folder_bytes(root: Path) -> int:
    """Total size of the files under ``root``, bytes."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def write_json(path: Path, data: object) -> None:
    """Write JSON atomically (temp file + rename), so a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def write_video(root: Path, video_id: str, source: str, arrays: VideoArrays, *, fps: int,
                source_size: tuple[int, int]) -> VideoRecord:
    """Write ``root/videos/<video_id>/`` atomically and return its record."""
    videos = root / "videos"
    tmp, final = videos / f"{TMP_PREFIX}{video_id}", videos / video_id
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    index = np.zeros(len(arrays.jpegs) + 1, np.int64)
    index[1:] = np.cumsum([len(j) for j in arrays.jpegs])
    np.save(tmp / "frames.npy", np.frombuffer(b"".join(arrays.jpegs), np.uint8))
    np.save(tmp / "frame_index.npy", index)
    np.save(tmp / "audio.npy", arrays.audio.astype(np.int16))
    np.savez_compressed(
        tmp / "meta.npz", transforms=arrays.transforms.astype(np.float32),
        landmarks=arrays.landmarks.astype(np.float16), features=arrays.features.astype(np.float32),
        labels=arrays.labels.astype(np.uint8), valid=arrays.valid.astype(bool), reference=arrays.reference,
    )
    frames = len(arrays.jpegs)
    record = VideoRecord(
        id=video_id, source=source, frames=frames, seconds=frames / fps,
        labels={label.value: int((arrays.labels == code).sum()) for code, label in enumerate(LABELS)},
        valid_frames=int(arrays.valid.sum()), source_size=list(source_size),
    )
    write_json(tmp / "video.json", asdict(record))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return record


def finished_videos(root: Path) -> list[VideoRecord]:
    """Records of the complete video folders under ``root``, sorted by id; removes leftover temp folders."""
    videos = root / "videos"
    if not videos.is_dir():
        return []
    records = []
    for folder in sorted(videos.iterdir()):
        if folder.name.startswith(TMP_PREFIX):
            shutil.rmtree(folder, ignore_errors=True)  # an interrupted write; redone
        elif (folder / "video.json").is_file():
            records.append(VideoRecord(**json.loads((folder / "video.json").read_text())))
    return records


def write_manifest(root: Path, *, kind: str, resolution: int, fps: int, jpeg_quality: int,
                   videos: list[VideoRecord], settings: dict[str, object]) -> dict[str, object]:
    """Write ``manifest.json`` (atomically) for ``videos``, with totals; returns it."""
    from importlib.metadata import version

    totals = {label.value: sum(v.labels[label.value] for v in videos) for label in LABELS}
    manifest = {
        "format": FORMAT, "version": FORMAT_VERSION, "facetalk": version("facetalk"), "kind": kind,
        "resolution": resolution, "fps": fps, "sample_rate": SAMPLE_RATE,
        "samples_per_frame": samples_per_frame(fps), "jpeg_quality": jpeg_quality,
        "labels": [label.value for label in LABELS], "features": list(FEATURES), "landmarks": 468,
        "counts": {"videos": len(videos), "frames": sum(v.frames for v in videos),
                   "seconds": round(sum(v.seconds for v in videos), 3), "labels": totals},
        "settings": settings,
        "videos": [asdict(v) for v in videos],
    }
    write_json(root / "manifest.json", manifest)
    return manifest


def read_manifest(root: Path) -> dict[str, object]:
    """Load and check ``manifest.json``; raises ValueError on another format or version."""
    manifest = json.loads((root / "manifest.json").read_text())
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise ValueError(f"{root}: {manifest.get('format')} v{manifest.get('version')}, "
                         f"expected {FORMAT} v{FORMAT_VERSION}")
    return manifest
