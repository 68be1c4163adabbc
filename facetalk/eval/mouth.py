"""How open the avatar's mouth is, read from received video frames.

The measure is deliberately simple and engine-agnostic: the fraction of dark
pixels (the mouth cavity) inside the lips' box, taken from the persona's
landmarks. A closed mouth has almost none; an open one shows the cavity
between the teeth. It is computed on the small grayscale frames that
:class:`~facetalk.simulated_user.SimulatedUser` keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import PersonaConfig
from ..simulated_user import ReceivedVideo

__all__ = ["MouthRegion"]

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
        from ..avatar.landmarks import MeshIndex
        from ..avatar.persona import prepare_persona

        width, _ = video.size
        pack = prepare_persona(persona.portrait, resolution=width)
        lips = pack.points[list(MeshIndex.LIPS_UPPER_OUTER + MeshIndex.LIPS_LOWER_OUTER), :2]
        scale = video.frames[0].shape[1] / width
        (x0, y0), (x1, y1) = lips.min(axis=0) * scale, lips.max(axis=0) * scale
        pad = 0.15 * (x1 - x0)
        return cls(int(x0 - pad), int(y0 - pad), int(np.ceil(x1 + pad)), int(np.ceil(y1 + 2 * pad)))

    def crop(self, frame: np.ndarray) -> np.ndarray:
        return frame[self.y0 : self.y1, self.x0 : self.x1]

    def openness(self, video: ReceivedVideo) -> tuple[np.ndarray, np.ndarray]:
        """(arrival times, dark-pixel fraction in the box) per received frame."""
        values = np.array([(self.crop(f) < _DARK).mean() for f in video.frames])
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
