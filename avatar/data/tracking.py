"""Face tracking and a temporally smoothed alignment, for dataset frames.

Each frame's face mesh is found with :class:`~facetalk.avatar.landmarks.FaceLandmarker`
(the detector once, then tracking from the previous frame's landmarks), and
each frame's alignment is the persona crop's
(:func:`~facetalk.avatar.persona.alignment_transform`). Per-frame alignments
jitter with the landmarks, and a crop that follows the head exactly would
remove the head motion the generator must learn, so the transform's four
similarity parameters are smoothed with a Gaussian over ``smooth_s`` seconds
(1 s by default): the crop follows slow drift, and faster head motion stays
in the frames, as in the CPU engine's output.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from ..landmarks import FaceLandmarker, FaceMesh
from ..persona import alignment_transform

__all__ = ["FaceTrack", "crop", "track_faces"]

REDETECT_EVERY = 5
"""After the face is lost, run the (slow) detector on every fifth frame only."""


@dataclass
class FaceTrack:
    """The face through a video.

    Attributes:
        points: float32 ``(T, 468, 2)`` landmarks in source pixels; frames without
            a face carry the nearest found frame's.
        valid: bool ``(T,)``, a face was found in the frame.
        transforms: float32 ``(T, 2, 3)`` smoothed source → crop affines.
        source_size: ``(width, height)`` of the source frames.
    """

    points: np.ndarray
    valid: np.ndarray
    transforms: np.ndarray
    source_size: tuple[int, int]

    def crop_landmarks(self) -> np.ndarray:
        """float32 ``(T, 468, 2)``: the landmarks in crop pixels."""
        linear = self.transforms[:, :, :2]
        return (np.einsum("tnj,tij->tni", self.points, linear) + self.transforms[:, None, :, 2]).astype(np.float32)


def _find(landmarker: FaceLandmarker, rgb: np.ndarray, previous: FaceMesh | None, lost_for: int) -> FaceMesh | None:
    if previous is not None:
        tracked = landmarker.track(rgb, previous)
        if tracked is not None:
            return tracked
    if lost_for % REDETECT_EVERY:
        return None
    faces = landmarker(rgb)
    return faces[0] if faces else None


def _fill(points: list[np.ndarray | None]) -> np.ndarray:
    """Carry the nearest found frame's landmarks into frames without a face."""
    found = np.array([k for k, p in enumerate(points) if p is not None])
    after = np.clip(np.searchsorted(found, np.arange(len(points))), 0, found.size - 1)
    before = np.clip(after - 1, 0, found.size - 1)
    k = np.arange(len(points))
    nearest = np.where(np.abs(found[before] - k) <= np.abs(found[after] - k), found[before], found[after])
    return np.stack([points[j] for j in nearest]).astype(np.float32)


def _smooth(transforms: np.ndarray, valid: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian-smooth the similarity parameters (a, b, tx, ty) over valid frames only."""
    params = transforms.reshape(-1, 6)[:, [0, 1, 2, 5]].astype(np.float64)
    if sigma_frames > 0:
        radius = int(3 * sigma_frames)
        kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
        weight = valid.astype(np.float64)

        def centred(x: np.ndarray) -> np.ndarray:  # np.convolve's "same" is longer than x for short videos
            return np.convolve(x, kernel)[radius:radius + x.size]

        params = np.stack([centred(params[:, i] * weight) for i in range(4)], 1)
        params /= np.maximum(centred(weight), 1e-12)[:, None]
    a, b, tx, ty = params.T
    return np.stack([np.stack([a, b, tx], 1), np.stack([-b, a, ty], 1)], 1).astype(np.float32)


def track_faces(frames: Iterable[np.ndarray], landmarker: FaceLandmarker, *, size: int, fps: int,
                smooth_s: float = 1.0) -> FaceTrack:
    """Track the largest face through ``frames`` (RGB uint8) and align it to ``size`` pixels.

    Returns a track with no valid frame (and zero-length arrays if there were
    no frames) when no face is ever found; callers decide what is too few.
    """
    found: list[np.ndarray | None] = []
    previous: FaceMesh | None = None
    lost_for = 0
    source_size = (0, 0)
    for rgb in frames:
        source_size = (rgb.shape[1], rgb.shape[0])
        previous = _find(landmarker, rgb, previous, lost_for)
        lost_for = 0 if previous is not None else lost_for + 1
        found.append(None if previous is None else previous.points)
    valid = np.array([p is not None for p in found], bool)
    if not valid.any():
        empty = np.zeros((len(found), 468, 2), np.float32)
        return FaceTrack(empty, valid, np.zeros((len(found), 2, 3), np.float32), source_size)
    points = _fill(found)
    raw = np.stack([alignment_transform(p, size) for p in points])
    return FaceTrack(points, valid, _smooth(raw, valid, smooth_s * fps), source_size)


def crop(rgb: np.ndarray, transform: np.ndarray, size: int) -> np.ndarray:
    """The ``(size, size, 3)`` aligned crop of a source frame (area-averaged when shrinking)."""
    scale = float(np.hypot(transform[0, 0], transform[0, 1]))
    if scale < 0.5:  # shrink in octaves first, so the warp does not alias
        factor = 2 ** int(np.floor(np.log2(1 / scale)))
        rgb = cv2.resize(rgb, (rgb.shape[1] // factor, rgb.shape[0] // factor), interpolation=cv2.INTER_AREA)
        transform = transform.astype(np.float64)
        transform[:, 2] += transform[:, :2] @ np.full(2, (factor - 1) / 2)  # pixel centres of the shrunk image
        transform[:, :2] *= factor
    return cv2.warpAffine(rgb, transform.astype(np.float64), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
