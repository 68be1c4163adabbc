"""The avatar's mouth in a received video stream: :class:`MouthRegion`, the lips' box of what a user received.

The measures themselves (openness, lip geometry, lag correlation) are
:mod:`facetalk.avatar.measures`, shared with the avatar bench and training
evaluation; this module places the box on the frames a simulated user kept.
"""

from __future__ import annotations

import numpy as np

from ..avatar.measures import MouthBox
from ..config import PersonaConfig
from ..testing.simulated_user import ReceivedVideo

__all__ = ["MouthRegion"]


class MouthRegion(MouthBox):
    """The lips' box (x0, y0, x1, y1) in recorded-frame pixels (see :meth:`MouthBox.for_pack`)."""

    @classmethod
    def for_persona(cls, persona: PersonaConfig, video: ReceivedVideo) -> MouthRegion:
        """The box for ``persona``'s pack at the stream's resolution, scaled to the kept frames."""
        from ..avatar.persona import prepare_persona

        width, _ = video.size
        pack = prepare_persona(persona.portrait, resolution=width)
        return cls.for_pack(pack, scale=video.frames[0].shape[1] / width)

    def openness(self, video: ReceivedVideo) -> tuple[np.ndarray, np.ndarray]:
        """(arrival times, dark-pixel fraction in the box) per received frame."""
        return np.array(video.times), self.darkness_of(video.frames)

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
