"""Training clips from a FaceTalk dataset (format v1, see :mod:`facetalk.avatar.data.format`).

The whole dataset is decoded once into memory at the model config's
resolution (two minutes at 64² are ~40 MB), so a training step never waits on
JPEG decoding. A *clip* is ``L`` consecutive frames of one video with what the
engine sees at run time for them:

- audio windows built exactly as :class:`~facetalk.avatar.diffusion.audio_windows.AudioWindows`
  builds them in the engine: past context from the frames before the clip,
  future context beyond the clip's end repeating its last frame, and *no audio*
  (the voiced flag 0) for frames not labelled speaking, since the runtime
  feeds ``None`` features to listening and idle frames;
- the ``motion_frames`` frames before the clip, or the reference when the clip
  starts the video (as the engine's first clip does);
- one label, the clip's most common frame label (the model takes one per clip).

Held-out split: the last ``hold_out`` fraction of the *last* video is never
trained on; ``facetalk eval generator`` reads it as unseen speech.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from ...errors import FaceTalkError
from ..audio import AudioFeatures
from ..data.format import LABELS
from ..data.reader import FaceTalkDataset, Span
from ..diffusion.audio_windows import feature_vector
from ..labels import Label
from ..landmarks import MeshIndex

__all__ = ["ClipBatch", "HeldOut", "TrainingClips", "VideoData"]

Split = Literal["train", "eval"]
_SPEAKING = LABELS.index(Label.SPEAKING)
_DECODE_CHUNK = 256  # frames decoded at the stored resolution at once


@dataclass
class VideoData:
    """One video in memory at the config's resolution ``S``.

    Attributes:
        id: the video's folder name.
        frames: ``(T, S, S, 3)`` uint8 RGB.
        features: ``(T, 4)`` float32 engine feature vectors (voiced 0 off speaking frames).
        raw_features: ``(T, 3)`` float32 energy, brightness, noisiness as stored.
        labels: ``(T,)`` uint8 indices into :data:`~facetalk.avatar.data.format.LABELS`.
        reference: ``(S, S, 3)`` uint8 identity image.
        face_mask: ``(S, S)`` float32 face oval (feathered, as persona packs draw it).
        lips_box: ``(x0, y0, x1, y1)`` pixels of the lips at ``S``.
    """

    id: str
    frames: np.ndarray
    features: np.ndarray
    raw_features: np.ndarray
    labels: np.ndarray
    reference: np.ndarray
    face_mask: np.ndarray
    lips_box: tuple[int, int, int, int]


@dataclass
class ClipBatch:
    """``B`` clips of ``L`` frames (numpy; the trainer moves them to the device).

    Attributes:
        frames: ``(B, L, S, S, 3)`` uint8 targets.
        motion: ``(B, M, S, S, 3)`` uint8 frames before each clip.
        motion_valid: ``(B,)`` bool; False where the clip starts its video (use the reference).
        windows: ``(B, L, window, 4)`` float32 audio windows.
        labels: ``(B,)`` int64 label indices.
        reference: ``(B, S, S, 3)`` uint8.
        face_mask: ``(B, S, S)`` float32.
        lips_box: ``(B, 4)`` int64 lips boxes at ``S``.
    """

    frames: np.ndarray
    motion: np.ndarray
    motion_valid: np.ndarray
    windows: np.ndarray
    labels: np.ndarray
    reference: np.ndarray
    face_mask: np.ndarray
    lips_box: np.ndarray


@dataclass
class HeldOut:
    """The held-out stretch for evaluation.

    Attributes:
        features: per-frame runtime features (``None`` off speaking frames).
        labels: per-frame labels.
        envelope: ``(T,)`` float32 stored energy (0 .. 1), the audio envelope.
        fps: frame rate of the dataset.
    """

    features: list[AudioFeatures | None]
    labels: list[Label]
    envelope: np.ndarray
    fps: int


def _face_mask(points: np.ndarray, side: int) -> np.ndarray:
    mask = np.zeros((side, side), np.uint8)
    cv2.fillPoly(mask, [np.round(points[list(MeshIndex.FACE_OVAL)]).astype(np.int32)], 255)
    return cv2.GaussianBlur(mask, (0, 0), max(side / 192, 0.5)).astype(np.float32) / 255.0


def lips_box(points: np.ndarray) -> tuple[int, int, int, int]:
    """The box of the outer lips, narrowed by 15% of their width at each side and extended down by 45% of it
    for the open jaw: where the training losses weigh the mouth, and where its evaluation measures it."""
    lips = points[list(MeshIndex.LIPS_UPPER_OUTER + MeshIndex.LIPS_LOWER_OUTER)]
    (x0, y0), (x1, y1) = lips.min(0), lips.max(0)
    w = x1 - x0
    return int(np.floor(x0 + 0.15 * w)), int(np.floor(y0)), int(np.ceil(x1 - 0.15 * w)), int(np.ceil(y1 + 0.45 * w))


class TrainingClips:
    """Samples training clips from a dataset folder.

    Args:
        root: the dataset folder (``manifest.json`` + ``videos/``).
        resolution: the model config's frame side.
        window: audio frames per video frame (the config's ``audio_window``, odd).
        motion_frames: frames before a clip given as motion context.
        hold_out: fraction of the last video kept for evaluation.

    It reads the dataset through :class:`~facetalk.avatar.data.reader.FaceTalkDataset`.

    Raises:
        FaceTalkError: missing folder, not a dataset, or no usable frames.
    """

    def __init__(self, root: Path, *, resolution: int, window: int, motion_frames: int,
                 hold_out: float = 0.15) -> None:
        dataset = FaceTalkDataset(root, require_valid=False)
        if not dataset.spans:
            raise FaceTalkError(f"{root}: the dataset has no videos", hint="build it again with more input")
        self.fps = dataset.fps
        self.window, self.motion_frames = window, motion_frames
        self.videos = [self._load(dataset, span, resolution) for span in dataset.spans]
        last = len(self.videos[-1].frames)
        self._cut = last - int(round(last * hold_out))

    @staticmethod
    def _load(dataset: FaceTalkDataset, span: Span, side: int) -> VideoData:
        """Decode ``span`` at ``side``, a chunk at a time so only ``side``-sized frames are kept."""
        count = span.stop - span.start
        if count < 1:
            raise FaceTalkError(f"{dataset.root}: video {span.video} has no frames", hint="rebuild the dataset")
        frames = np.empty((count, side, side, 3), np.uint8)
        raw, labels, landmarks = [], [], []
        for offset in range(0, count, _DECODE_CHUNK):
            chunk = dataset.clip(span.video, span.start + offset, min(_DECODE_CHUNK, count - offset))
            for k, rgb in enumerate(chunk.frames):
                frames[offset + k] = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA)
            raw.append(chunk.features)
            labels.append(chunk.labels)
            landmarks.append(chunk.landmarks[chunk.valid])
        scale = side / chunk.reference.shape[0]
        points = np.median(np.concatenate(landmarks), axis=0) * scale
        raw_features = np.concatenate(raw).astype(np.float32)
        label_codes = np.concatenate(labels).astype(np.uint8)
        features = np.stack([feature_vector(AudioFeatures(*map(float, f)) if code == _SPEAKING else None)
                             for f, code in zip(raw_features, label_codes, strict=True)])
        reference = cv2.resize(chunk.reference, (side, side), interpolation=cv2.INTER_AREA)
        return VideoData(id=span.video, frames=frames, features=features, raw_features=raw_features, labels=label_codes,
                         reference=reference, face_mask=_face_mask(points, side), lips_box=lips_box(points))

    # --- sampling ---------------------------------------------------------------------

    def _ranges(self, split: Split) -> list[tuple[int, int, int]]:
        """``(video, start, stop)`` frame ranges of ``split``."""
        last = len(self.videos) - 1
        if split == "eval":
            return [(last, self._cut, len(self.videos[last].frames))]
        return [(i, 0, self._cut if i == last else len(v.frames)) for i, v in enumerate(self.videos)]

    def sample(self, batch: int, length: int, rng: np.random.Generator) -> ClipBatch:
        """``batch`` random training clips of ``length`` frames (video chosen by its frame count)."""
        ranges = [r for r in self._ranges("train") if r[2] - r[1] >= length]
        if not ranges:
            raise FaceTalkError(f"no video has {length} training frames", hint="use a longer dataset")
        weights = np.array([stop - start for _, start, stop in ranges], np.float64)
        picks = rng.choice(len(ranges), size=batch, p=weights / weights.sum())
        clips = []
        for pick in picks:
            video, start, stop = ranges[pick]
            clips.append(self.clip(video, int(rng.integers(start, stop - length + 1)), length))
        return ClipBatch(**{name: np.stack([getattr(c, name) for c in clips]) for name in ClipBatch.__dataclass_fields__})

    def clip(self, video: int, start: int, length: int) -> ClipBatch:
        """One clip (batch of 1 squeezed: no leading ``B``) starting at frame ``start`` of ``video``."""
        v, half, m = self.videos[video], self.window // 2, self.motion_frames
        stop = start + length
        past = v.features[max(0, start - half):start]
        past = np.concatenate([np.tile(feature_vector(None), (half - len(past), 1)), past])
        padded = np.concatenate([past, v.features[start:stop], np.repeat(v.features[stop - 1:stop], half, axis=0)])
        windows = padded[np.arange(length)[:, None] + np.arange(2 * half + 1)[None, :]]
        counts = np.bincount(v.labels[start:stop], minlength=len(LABELS))
        motion = v.frames[start - m:start] if start >= m else np.repeat(v.reference[None], m, axis=0)
        return ClipBatch(frames=v.frames[start:stop], motion=motion, motion_valid=np.array(start >= m),
                         windows=windows.astype(np.float32), labels=np.array(int(counts.argmax()), np.int64),
                         reference=v.reference, face_mask=v.face_mask, lips_box=np.array(v.lips_box, np.int64))

    def held_out_frames(self, limit: int = 64) -> np.ndarray:
        """``(N, S, S, 3)`` uint8: up to ``limit`` frames of the evaluation stretch, never trained on."""
        video, start, stop = self._ranges("eval")[0]
        return self.videos[video].frames[start:min(stop, start + limit)]

    def held_out(self) -> HeldOut:
        """The evaluation stretch: runtime features, labels and the energy envelope."""
        video, start, stop = self._ranges("eval")[0]
        v = self.videos[video]
        if stop - start < 2:
            raise FaceTalkError("the dataset holds out fewer than 2 frames", hint="use a longer dataset")
        labels = [LABELS[code] for code in v.labels[start:stop]]
        features = [AudioFeatures(*map(float, f)) if label == Label.SPEAKING else None
                    for f, label in zip(v.raw_features[start:stop], labels, strict=True)]
        envelope = np.where(v.labels[start:stop] == _SPEAKING, v.raw_features[start:stop, 0], 0.0)
        return HeldOut(features=features, labels=labels, envelope=envelope.astype(np.float32), fps=self.fps)
