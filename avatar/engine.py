"""The seam between the streaming runtime and an avatar engine.

The runtime (:mod:`.runtime`) owns audio buffering, clip scheduling, pacing
and interruption; an engine only turns a clip's audio features into frames,
and forgets the speech it was following when the runtime says the speech was
cut off. The CPU engine here and the diffusion engine
(:class:`~.diffusion.engine.DiffusionEngine`) both fit :class:`FrameEngine`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..config import Expression
from .audio import AudioFeatures
from .labels import Label
from .motion import MotionParams, MotionSynthesizer
from .persona import PersonaPack
from .renderer import CpuRenderer

__all__ = ["Clip", "CpuEngine", "FrameEngine"]


@dataclass
class Clip:
    """Frames rendered for consecutive video frames.

    Attributes:
        frames: ``(S, S, 3)`` uint8 RGB images, one per requested frame.
        motion: the motion parameters of each frame, when the engine has them.
    """

    frames: list[np.ndarray]
    motion: list[MotionParams] | None = None


class FrameEngine(Protocol):
    """What the streaming runtime needs from an avatar engine.

    Engines are stateful: consecutive :meth:`render_clip` calls continue the
    same motion, so clip boundaries must not show.
    """

    width: int
    height: int

    def render_clip(self, features: Sequence[AudioFeatures | None], label: Label) -> Clip:
        """Render one frame per entry of ``features`` (``None`` = no audio) under ``label``."""
        ...

    def set_expression(self, expression: Expression) -> None:
        """Change the expression controls from the next frame on."""
        ...

    def reset(self) -> None:
        """Forget the speech being followed: it was interrupted, and the next clip must not continue it.

        Called by the runtime between clips, never while one renders.
        """
        ...


class CpuEngine:
    """Motion synthesis plus the warp renderer: real time on one CPU core.

    Args:
        pack: the prepared persona.
        fps: video frame rate.
        seed: motion seed; equal seeds and inputs give equal frames.
        expression: initial expression controls (usually the persona's).
    """

    def __init__(self, pack: PersonaPack, *, fps: float, seed: int = 0, expression: Expression | None = None) -> None:
        self.renderer = CpuRenderer(pack)
        self.motion = MotionSynthesizer(fps=fps, seed=seed, expression=expression)
        self.width = self.height = pack.resolution

    def render_clip(self, features: Sequence[AudioFeatures | None], label: Label) -> Clip:
        """Step the motion once per frame and render it."""
        self.motion.set_label(label)
        motion = [self.motion.step(f) for f in features]
        return Clip(frames=[self.renderer.render(m) for m in motion], motion=motion)

    def set_expression(self, expression: Expression) -> None:
        """Change the expression controls from the next frame on."""
        self.motion.expression = expression

    def reset(self) -> None:
        """Forget the interrupted speech (mouth, emphasis); head, gaze and blinks go on without a jump."""
        self.motion.forget_speech()
