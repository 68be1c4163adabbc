"""Reading a dataset as clips of consecutive frames, for the trainers.

:class:`FaceTalkDataset` indexes fixed-length clips (``len`` / ``[i]``, the
shape a PyTorch ``DataLoader`` wants) and draws clips of any length
(:meth:`FaceTalkDataset.sample`, for variable-length training). A clip never
crosses a video's end, and by default never contains a frame without a face.
:meth:`FaceTalkDataset.split` separates held-out data, by whole videos or by
the tail of each video. Nothing here needs torch; arrays are numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from ...errors import FaceTalkError
from .format import LABELS, read_manifest

__all__ = ["ClipSample", "FaceTalkDataset", "Span"]


@dataclass
class ClipSample:
    """``N`` consecutive frames of one video with their audio and labels.

    Attributes:
        video: the video's id.
        start: index of the first frame in the video.
        frames: uint8 ``(N, S, S, 3)`` RGB aligned face crops.
        audio: int16 ``((N + 2 * C) * spf,)`` mono 24 kHz, where ``C`` is the
            dataset's ``audio_context`` frames on each side (zeros beyond the
            video); frame ``k`` of the clip owns ``audio[(C + k) * spf:(C + k + 1) * spf]``.
        features: float32 ``(N, 3)`` energy, brightness, noisiness per frame.
        labels: uint8 ``(N,)`` label codes, indices into :data:`~.format.LABELS`.
        landmarks: float32 ``(N, 468, 2)`` face mesh in crop pixels.
        transforms: float32 ``(N, 2, 3)`` source-frame → crop affines.
        valid: bool ``(N,)`` a face was found in the frame.
        reference: uint8 ``(S, S, 3)`` the video's identity image.
    """

    video: str
    start: int
    frames: np.ndarray
    audio: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    landmarks: np.ndarray
    transforms: np.ndarray
    valid: np.ndarray
    reference: np.ndarray


@dataclass(frozen=True)
class Span:
    """Frames ``[start, stop)`` of one video that belong to a dataset view."""

    video: str
    start: int
    stop: int


class _Video:
    """One video folder: crops and audio memory-mapped, the per-frame arrays in memory."""

    def __init__(self, folder: Path) -> None:
        try:
            self.jpegs = np.load(folder / "frames.npy", mmap_mode="r")
            self.index = np.load(folder / "frame_index.npy")
            self.audio = np.load(folder / "audio.npy", mmap_mode="r")
            with np.load(folder / "meta.npz") as meta:
                self.meta = {name: meta[name] for name in meta.files}
        except (OSError, ValueError) as e:
            raise FaceTalkError(f"{folder}: unreadable video ({e})", hint="rebuild the dataset") from e

    def frame(self, k: int) -> np.ndarray:
        data = np.asarray(self.jpegs[self.index[k]:self.index[k + 1]])
        return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


class FaceTalkDataset:
    """Clips from a dataset folder written by ``facetalk data synth`` or ``data build``.

    Args:
        root: the dataset folder (with ``manifest.json``).
        clip_frames: N, the length of indexed clips (``len`` and ``[i]``).
        stride: frames between the starts of indexed clips; default ``clip_frames``.
        audio_context: extra frames of audio on each side of a clip, for models
            that look at audio around the frame (e.g. 2 for a ±2-frame window).
        require_valid: leave out clips with a frame in which no face was found.
        spans: the frame ranges this view covers; default every frame of every video.

    Raises:
        FaceTalkError: ``root`` is not a dataset of this format.
    """

    def __init__(self, root: Path, *, clip_frames: int = 16, stride: int | None = None, audio_context: int = 0,
                 require_valid: bool = True, spans: tuple[Span, ...] | None = None) -> None:
        self.root = Path(root)
        try:
            self.manifest = read_manifest(self.root)
        except (OSError, ValueError, KeyError) as e:
            raise FaceTalkError(f"{root}: not a FaceTalk dataset ({e})",
                                hint="make one with 'facetalk data synth' or 'facetalk data build'") from e
        if clip_frames < 1 or (stride is not None and stride < 1) or audio_context < 0:
            raise ValueError(f"clip_frames {clip_frames} and stride {stride} must be >= 1, audio_context >= 0")
        self.clip_frames = clip_frames
        self.stride = stride or clip_frames
        self.audio_context = audio_context
        self.require_valid = require_valid
        self.resolution: int = self.manifest["resolution"]
        self.fps: int = self.manifest["fps"]
        self.samples_per_frame: int = self.manifest["samples_per_frame"]
        self.label_names: tuple[str, ...] = tuple(self.manifest["labels"])
        if self.label_names != tuple(label.value for label in LABELS):
            raise FaceTalkError(f"{root}: labels {self.label_names}, expected {[label.value for label in LABELS]}",
                                hint="rebuild the dataset with this version of FaceTalk")
        self.spans = spans if spans is not None else tuple(
            Span(v["id"], 0, v["frames"]) for v in self.manifest["videos"])
        self._videos: dict[str, _Video] = {}
        self._every_start: dict[int, list[tuple[str, int]]] = {}
        self._starts = self._index(self.clip_frames, self.stride)

    # --- views --------------------------------------------------------------

    def with_options(self, **changes: object) -> FaceTalkDataset:
        """The same spans with other options (e.g. ``clip_frames=32`` for the next training stage)."""
        options = {"clip_frames": self.clip_frames, "stride": self.stride, "audio_context": self.audio_context,
                   "require_valid": self.require_valid, "spans": self.spans, **changes}
        return FaceTalkDataset(self.root, **options)  # type: ignore[arg-type]

    def split(self, held_out: float = 0.1, *, by: Literal["video", "time"] = "video",
              seed: int = 0) -> tuple[FaceTalkDataset, FaceTalkDataset]:
        """``(train, held_out)`` views that share no frame.

        ``by="video"`` holds out ``ceil(held_out * videos)`` whole videos, chosen
        with ``seed`` (needs two videos or more); ``by="time"`` holds out the last
        ``held_out`` fraction of every video.
        """
        if not 0 < held_out < 1:
            raise ValueError(f"held_out must be in (0, 1), got {held_out}")
        if by == "video":
            ids = sorted({s.video for s in self.spans})
            if len(ids) < 2:
                raise FaceTalkError(f"{self.root}: one video cannot be split by video",
                                    hint="split by='time', or add videos")
            order = np.random.default_rng(seed).permutation(len(ids))
            held = {ids[i] for i in order[:min(len(ids) - 1, math.ceil(held_out * len(ids)))]}
            train_spans = tuple(s for s in self.spans if s.video not in held)
            held_spans = tuple(s for s in self.spans if s.video in held)
        elif by == "time":
            cuts = [(s, s.stop - round((s.stop - s.start) * held_out)) for s in self.spans]
            train_spans = tuple(Span(s.video, s.start, cut) for s, cut in cuts if cut > s.start)
            held_spans = tuple(Span(s.video, cut, s.stop) for s, cut in cuts if cut < s.stop)
        else:
            raise ValueError(f"split by 'video' or 'time', not {by!r}")
        return self.with_options(spans=train_spans), self.with_options(spans=held_spans)

    # --- clips --------------------------------------------------------------

    def __len__(self) -> int:
        """The number of indexed clips of ``clip_frames`` frames."""
        return len(self._starts)

    def __getitem__(self, i: int) -> ClipSample:
        """Indexed clip ``i``, ``clip_frames`` long."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"clip {i} of {len(self)}")
        video, start = self._starts[i]
        return self.clip(video, start, self.clip_frames)

    def sample(self, rng: np.random.Generator, frames: int) -> ClipSample:
        """A clip of ``frames`` frames from a uniformly random position (variable-length training)."""
        if frames not in self._every_start:
            self._every_start[frames] = self._index(frames, 1)
        starts = self._every_start[frames]
        if not starts:
            raise ValueError(f"no clip of {frames} frames fits in this dataset view")
        video, start = starts[int(rng.integers(len(starts)))]
        return self.clip(video, start, frames)

    def clip(self, video: str, start: int, frames: int) -> ClipSample:
        """Frames ``[start, start + frames)`` of ``video``, with their audio and labels."""
        data = self._video(video)
        count = data.index.size - 1
        if start < 0 or frames < 1 or start + frames > count:
            raise IndexError(f"frames {start}..{start + frames} of {video}, which has {count}")
        spf, context = self.samples_per_frame, self.audio_context
        lo, hi = (start - context) * spf, (start + frames + context) * spf
        audio = np.zeros(hi - lo, np.int16)
        audio[max(0, -lo):audio.size - max(0, hi - data.audio.size)] = data.audio[max(0, lo):hi]
        window = slice(start, start + frames)
        return ClipSample(
            video=video, start=start, frames=np.stack([data.frame(k) for k in range(start, start + frames)]),
            audio=audio, features=data.meta["features"][window], labels=data.meta["labels"][window],
            landmarks=data.meta["landmarks"][window].astype(np.float32), transforms=data.meta["transforms"][window],
            valid=data.meta["valid"][window], reference=data.meta["reference"],
        )

    def label_counts(self) -> dict[str, int]:
        """Frames per label name in this view."""
        counts = dict.fromkeys(self.label_names, 0)
        for span in self.spans:
            labels = self._video(span.video).meta["labels"][span.start:span.stop]
            for code, name in enumerate(self.label_names):
                counts[name] += int((labels == code).sum())
        return counts

    @property
    def frames(self) -> int:
        """Frames in this view."""
        return sum(s.stop - s.start for s in self.spans)

    # --- internals ----------------------------------------------------------

    def _video(self, video: str) -> _Video:
        if video not in self._videos:
            self._videos[video] = _Video(self.root / "videos" / video)
        return self._videos[video]

    def _index(self, frames: int, stride: int) -> list[tuple[str, int]]:
        """``(video, start)`` of every clip of ``frames`` frames, ``stride`` apart, inside the spans."""
        starts = []
        for span in self.spans:
            candidates = np.arange(span.start, span.stop - frames + 1, stride)
            if self.require_valid and candidates.size:
                valid = self._video(span.video).meta["valid"]
                bad = np.concatenate([[0], np.cumsum(~valid)])
                candidates = candidates[bad[candidates + frames] == bad[candidates]]
            starts += [(span.video, int(s)) for s in candidates]
        return starts

    def __getstate__(self) -> dict[str, object]:
        """Pickle without the open memory maps (DataLoader workers reopen them)."""
        state = self.__dict__.copy()
        state["_videos"] = {}
        return state

    def __repr__(self) -> str:
        return (f"FaceTalkDataset({str(self.root)!r}, {len(self.spans)} spans, {self.frames} frames, "
                f"{len(self)} clips of {self.clip_frames})")
