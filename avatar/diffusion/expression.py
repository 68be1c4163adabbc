"""Expression control as in LLIA: the CPU engine poses the reference before ReferenceNet sees it.

The diffusion model copies appearance from its reference, so animating the
reference to the requested expression (a smile, raised brows, a head tilt)
steers every generated frame there, with no expression inputs in the model.
"""

from __future__ import annotations

import cv2
import numpy as np

from ...config import Expression
from ..motion import MotionParams
from ..persona import PersonaPack
from ..renderer import CpuRenderer

__all__ = ["expression_params", "posed_reference"]


def expression_params(expression: Expression) -> MotionParams:
    """Rest-pose motion parameters for ``expression``.

    The same mapping as the CPU engine's ``MotionSynthesizer`` applies on top
    of its motion: intensities add to the rest pose; eye openness below 0.5
    closes the lids, above raises the brows; head tilt 0.5 is upright.
    """
    squint = max(0.0, 0.5 - expression.eye_openness) * 1.2
    return MotionParams(
        smile=expression.smile,
        brow=min(1.0, expression.brow_raise + max(0.0, expression.eye_openness - 0.5) * 0.6),
        blink=squint,
        roll=(expression.head_tilt - 0.5) * 2.0,
    )


def posed_reference(pack: PersonaPack, expression: Expression, resolution: int,
                    renderer: CpuRenderer | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference posed to ``expression``, with its face and head masks, at ``resolution``.

    Returns:
        ``(H, W, 3)`` uint8 RGB image, ``(H, W)`` float32 face mask and
        ``(H, W)`` float32 head mask, ``H = W = resolution`` (area-downscaled from the pack).
    """
    image = (renderer or CpuRenderer(pack)).render(expression_params(expression))
    size = (resolution, resolution)
    resize = lambda a: cv2.resize(a, size, interpolation=cv2.INTER_AREA)  # noqa: E731
    return resize(image), resize(pack.masks.face).astype(np.float32), resize(pack.masks.head).astype(np.float32)
