"""The avatar's measures, on frames only: the one place the benches, training evaluation and the latency eval share.

Engine-agnostic (they look only at frames, audio envelopes and phoneme timing):

- **mouth openness** (:class:`MouthBox`): the fraction of dark pixels (luma
  below :data:`DARK_LUMA`, the mouth cavity) inside a box around the lips. A
  closed mouth has almost none; an open one shows the cavity between the
  teeth. Cheap enough for every frame; the lip-sync correlation and lag are
  taken on it.
- **lag correlation** (:func:`best_lag_correlation`): Pearson correlation of
  the openness with an audio envelope at the best lag of the mouth behind the audio.
- **lip geometry** (:func:`track_lips`): the face mesh run on each frame gives
  the inner-lip gap, the mouth's width and every landmark, from which
  :func:`bilabial_closure`, :func:`rounding_ratio` and
  :func:`boundary_step_ratio` are computed against the phoneme timing.
- **fidelity**: :func:`psnr` (10·log10(255²/MSE), in NumPy: the live soak
  takes it between frames, where importing SciPy would stall the event loop)
  and :func:`ssim` (scikit-image's, imported on use; it comes with the
  ``diffusion`` extra, as the training evaluation that uses it does).

Luma is OpenCV's RGB→grey (ITU-R BT.601 weights, rounded to uint8), for every measure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import FaceTalkError

if TYPE_CHECKING:
    from .landmarks import FaceLandmarker
    from .persona import PersonaPack
    from .phonemes import PhonemeSpan

__all__ = ["DARK_LUMA", "LipTrack", "MouthBox", "best_lag_correlation", "bilabial_closure", "boundary_step_ratio",
           "finite_or_none", "pearson", "psnr", "rounding_ratio", "ssim", "to_luma", "track_lips"]

DARK_LUMA = 70
"""Luma below which a pixel counts as mouth cavity."""

_FLAT = 1e-9  # a standard deviation at or below this: the series carries no correlation


def to_luma(frame: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint8 luma of an ``(H, W, 3)`` uint8 RGB frame; a luma frame is returned as is."""
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


@dataclass(frozen=True)
class MouthBox:
    """A box (x0, y0, x1, y1) around the lips, in pixels of the frames it measures."""

    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def for_pack(cls, pack: PersonaPack, *, scale: float = 1.0) -> MouthBox:
        """The outer lips of ``pack``'s landmarks, padded by 15 % of their width (twice that below, for the
        open jaw), scaled by ``scale`` (measured frame side ÷ pack side)."""
        from .landmarks import MeshIndex

        lips = pack.points[list(MeshIndex.LIPS_UPPER_OUTER + MeshIndex.LIPS_LOWER_OUTER), :2]
        (x0, y0), (x1, y1) = lips.min(axis=0) * scale, lips.max(axis=0) * scale
        pad = 0.15 * (x1 - x0)
        return cls(int(x0 - pad), int(y0 - pad), int(np.ceil(x1 + pad)), int(np.ceil(y1 + 2 * pad)))

    def crop(self, frame: np.ndarray) -> np.ndarray:
        return frame[self.y0 : self.y1, self.x0 : self.x1]

    def darkness(self, luma: np.ndarray) -> float:
        """Openness of one frame: the dark-pixel fraction in the box of its luma (H, W) uint8."""
        return float((self.crop(luma) < DARK_LUMA).mean())

    def darkness_of(self, frames: Iterable[np.ndarray]) -> np.ndarray:
        """Openness per frame of RGB or luma uint8 frames."""
        return np.array([float((to_luma(self.crop(f)) < DARK_LUMA).mean()) for f in frames])


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation of two equal-length series; ``None`` when either is flat."""
    if a.std() <= _FLAT or b.std() <= _FLAT:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def best_lag_correlation(mouth: np.ndarray, envelope: np.ndarray, lags: Iterable[int]) -> tuple[float, int]:
    """``(correlation, lag)``: the best Pearson correlation of ``mouth`` ``lag`` frames behind ``envelope``.

    A negative lag puts the mouth ahead. Ties go to the first lag given;
    ``(0.0, 0)`` when the series are flat at every lag.
    """
    found = []
    for lag in lags:
        corr = pearson(mouth[max(0, lag):mouth.size + min(0, lag)], envelope[max(0, -lag):envelope.size - max(0, lag)])
        if corr is not None:
            found.append((corr, lag))
    return max(found, key=lambda pair: pair[0]) if found else (0.0, 0)


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    """PSNR in dB of two 8-bit images (any shape, uint8 or float in 0..255), over the pixels ``where`` is
    true if given; ``inf`` when they are identical."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    err = float(np.mean(diff[where] ** 2 if where is not None else diff**2))
    return math.inf if err == 0 else 10 * math.log10(255.0**2 / err)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two ``(H, W, 3)`` uint8 RGB frames on luma (Wang et al. 2004: Gaussian window σ 1.5, 11 taps).

    scikit-image's, which leaves out the 5-pixel border where the window would leave the frame.
    """
    try:  # on use: it loads SciPy (~80 MB, seconds on a busy machine), which no other measure needs
        from skimage.metrics import structural_similarity
    except ImportError as e:
        raise FaceTalkError("SSIM needs scikit-image", hint="pip install 'facetalk[diffusion]'") from e
    return float(structural_similarity(to_luma(a), to_luma(b), data_range=255, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def finite_or_none(value: float) -> float | None:
    """``value``, or ``None`` where it is infinite (JSON has no infinity)."""
    return value if np.isfinite(value) else None


@dataclass
class LipTrack:
    """The face mesh's lips, per frame (frames where no face was found are NaN).

    Attributes:
        gap: inner-lip gap, pixels (mean of three upper/lower inner pairs about the middle).
        width: mouth width corner to corner, pixels.
        points: ``(N, 468, 2)`` every landmark, pixels.
    """

    gap: np.ndarray
    width: np.ndarray
    points: np.ndarray


_INNER_PAIRS = ((82, 87), (13, 14), (312, 317))  # upper/lower inner lip, left of middle .. right
_CORNERS = (61, 291)


def track_lips(frames: Iterable[np.ndarray], landmarker: FaceLandmarker) -> LipTrack:
    """Run the face mesh over consecutive frames (RGB, or luma stacked to RGB).

    The face is detected once and then tracked from frame to frame (the mesh
    network alone, a few ms a frame); it is detected again if tracking loses it.
    """
    gaps, widths, points = [], [], []
    previous = None
    for frame in frames:
        rgb = np.repeat(frame[..., None], 3, axis=2) if frame.ndim == 2 else frame
        face = landmarker.track(rgb, previous) if previous is not None else None
        if face is None:
            found = landmarker(rgb)
            face = found[0] if found else None
        previous = face
        if face is None:
            gaps.append(np.nan)
            widths.append(np.nan)
            points.append(np.full((468, 2), np.nan, np.float32))
            continue
        p = face.points
        gaps.append(float(np.mean([np.linalg.norm(p[a] - p[b]) for a, b in _INNER_PAIRS])))
        widths.append(float(np.linalg.norm(p[_CORNERS[0]] - p[_CORNERS[1]])))
        points.append(p)
    return LipTrack(gap=np.array(gaps), width=np.array(widths), points=np.array(points).reshape(-1, 468, 2))


def _values_at(values: np.ndarray, frame_times: np.ndarray, t: float, window: float, pick: str) -> float:
    """``values`` at the frame nearest ``t``, or their min/max over frames within ``window`` s of it."""
    if window <= 0:
        return float(values[int(np.argmin(np.abs(frame_times - t)))])
    near = np.abs(frame_times - t) <= window
    if not near.any():
        return float("nan")
    return float(np.nanmin(values[near]) if pick == "min" else np.nanmax(values[near]))


def bilabial_closure(track: LipTrack, frame_times: np.ndarray, spans: Sequence[PhonemeSpan], *,
                     threshold: float = 0.15, window: float = 0.0) -> float | None:
    """Share of p/b/m phonemes whose inner-lip gap at the phoneme's middle is at most
    ``threshold`` × the 95th percentile of the gap over all ``frame_times`` (the speaking frames).

    ``window`` > 0 takes the smallest gap within that many seconds of the middle,
    for timing known only to within a frame (a receiver's arrival times).
    ``None`` when the timing has no p/b/m.
    """
    from .visemes import BILABIAL

    middles = [s.middle for s in spans if s.phoneme[:1] in BILABIAL and frame_times[0] <= s.middle <= frame_times[-1]]
    if not middles:
        return None
    limit = threshold * float(np.nanpercentile(track.gap, 95))
    closed = [_values_at(track.gap, frame_times, t, window, "min") <= limit for t in middles]
    return float(np.mean(closed))


def rounding_ratio(track: LipTrack, frame_times: np.ndarray, spans: Sequence[PhonemeSpan]) -> float | None:
    """Median mouth width at the middle of rounded vowels ÷ at the middle of spread vowels.

    Rounded: u ʊ o ɔ; spread: i ɪ e ɛ (espeak symbols, first letter; the
    halves of diphthongs count). ``None`` without both kinds.
    """
    from .visemes import ROUNDED, SPREAD

    def widths(kind: frozenset[str]) -> list[float]:
        return [_values_at(track.width, frame_times, s.middle, 0.0, "min") for s in spans
                if s.phoneme[:1] in kind and s.phoneme[:1] != "w" and frame_times[0] <= s.middle <= frame_times[-1]]

    rounded, spread = widths(ROUNDED), widths(SPREAD)
    if not rounded or not spread:
        return None
    return float(np.nanmedian(rounded) / np.nanmedian(spread))


def boundary_step_ratio(track: LipTrack, boundary: np.ndarray) -> float:
    """p95 of the landmark step into frames that start a clip ÷ p95 of the step elsewhere.

    A step is the mean distance every landmark moves from one frame to the
    next. ``boundary[i]`` says whether frame ``i`` (i >= 1) starts a new clip.
    1.0 means a clip boundary is like any other frame.
    """
    steps = np.linalg.norm(np.diff(track.points, axis=0), axis=2).mean(axis=1)
    at = boundary[1:].astype(bool)
    ok = np.isfinite(steps)
    return float(np.percentile(steps[at & ok], 95) / np.percentile(steps[~at & ok], 95))
