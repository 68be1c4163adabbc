"""What changes over a training run: clip length (LLIA's two phases) and learning rate.

LLIA trains first on clips of a fixed length and then on variable lengths, so
the model also renders the short clips that keep first-frame latency low. Here
the first ``fixed_fraction`` of the steps use the config's
``max_clip_frames``; afterwards each step draws a length uniformly from
``1..max_clip_frames``. The learning rate warms up linearly over
``warmup_steps`` and then stays constant (short runs; no decay to tune).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TrainSchedule"]


@dataclass(frozen=True, kw_only=True)
class TrainSchedule:
    """Clip length and learning-rate factor per step (steps count from 1).

    Attributes:
        steps: total optimizer steps.
        max_frames: the config's ``max_clip_frames``.
        fixed_fraction: share of the steps at the fixed (maximum) clip length.
        warmup_steps: linear warm-up of the learning rate.
    """

    steps: int
    max_frames: int
    fixed_fraction: float = 0.5
    warmup_steps: int = 50

    def clip_frames(self, step: int, rng: np.random.Generator) -> int:
        """Frames per clip at ``step`` (draws from ``rng`` only in the variable phase)."""
        if step <= round(self.fixed_fraction * self.steps):
            return self.max_frames
        return int(rng.integers(1, self.max_frames + 1))

    def lr_factor(self, step: int) -> float:
        """Multiplier of the base learning rate for optimizer step ``step`` (0-based, as LambdaLR counts)."""
        return min(1.0, (step + 1) / max(1, self.warmup_steps))
