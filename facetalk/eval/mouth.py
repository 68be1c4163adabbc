"""The avatar's mouth, measured on its video frames: the one place for mouth measures.

Two kinds, both engine-agnostic (they look only at frames):

- **openness** (:class:`MouthRegion`): the fraction of dark pixels (the mouth
  cavity) inside the lips' box, taken from the persona's landmarks. A closed
  mouth has almost none; an open one shows the cavity between the teeth. Cheap
  enough for every received frame; used for lip-sync correlation and lag.
- **lip geometry** (:func:`track_lips`): the face mesh run on each frame gives
  the inner-lip gap, the mouth's width and every landmark, from which
  :func:`bilabial_closure`, :func:`rounding_ratio` and
  :func:`boundary_step_ratio` are computed against the phoneme timing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..config import PersonaConfig
from ..testing.simulated_user import ReceivedVideo

if TYPE_CHECKING:
    from ..avatar.landmarks import FaceLandmarker
    from ..avatar.persona import PersonaPack
    from ..avatar.phonemes import PhonemeSpan

__all__ = ["LipTrack", "MouthRegion", "bilabial_closure", "boundary_step_ratio", "rounding_ratio", "track_lips"]

_DARK = 70  # luma below which a pixel counts as mouth cavity


@dataclass(frozen=True)
class MouthRegion:
    """The lips' box (x0, y0, x1, y1) in recorded-frame pixels."""

    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def for_persona(cls, persona: PersonaConfig, video: ReceivedVideo) -> MouthRegion:
        """The box for ``persona``'s pack at the stream's resolution, scaled to the kept frames."""
        from ..avatar.persona import prepare_persona

        width, _ = video.size
        pack = prepare_persona(persona.portrait, resolution=width)
        return cls.for_pack(pack, scale=video.frames[0].shape[1] / width)

    @classmethod
    def for_pack(cls, pack: PersonaPack, *, scale: float = 1.0) -> MouthRegion:
        """The box for ``pack``'s frames, scaled by ``scale`` (kept frame side ÷ pack side)."""
        from ..avatar.landmarks import MeshIndex

        lips = pack.points[list(MeshIndex.LIPS_UPPER_OUTER + MeshIndex.LIPS_LOWER_OUTER), :2]
        (x0, y0), (x1, y1) = lips.min(axis=0) * scale, lips.max(axis=0) * scale
        pad = 0.15 * (x1 - x0)
        return cls(int(x0 - pad), int(y0 - pad), int(np.ceil(x1 + pad)), int(np.ceil(y1 + 2 * pad)))

    def crop(self, frame: np.ndarray) -> np.ndarray:
        return frame[self.y0 : self.y1, self.x0 : self.x1]

    def darkness(self, luma: np.ndarray) -> float:
        """Openness of one frame: the dark-pixel fraction in the box of its luma (H, W) uint8."""
        return float((self.crop(luma) < _DARK).mean())

    def openness(self, video: ReceivedVideo) -> tuple[np.ndarray, np.ndarray]:
        """(arrival times, dark-pixel fraction in the box) per received frame."""
        values = np.array([self.darkness(f) for f in video.frames])
        return np.array(video.times), values

    def motion(self, video: ReceivedVideo, start: float, end: float) -> float:
        """Mean absolute frame-to-frame change in the box over [start, end] (grey levels)."""
        picked = [
            self.crop(f).astype(np.float32)
            for t, f in zip(video.times, video.frames, strict=True)
            if start <= t <= end
        ]
        if len(picked) < 3:
            raise ValueError(f"only {len(picked)} frames between {start:.2f} and {end:.2f}")
        return float(np.mean([np.abs(b - a).mean() for a, b in zip(picked, picked[1:])]))


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
    from ..avatar.visemes import BILABIAL

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
    from ..avatar.visemes import ROUNDED, SPREAD

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
