"""Face detection and the 468-point face mesh, for persona preparation.

OpenCV's Haar cascade proposes face boxes; MediaPipe's face-landmark network
(run by ``ai-edge-litert``) confirms each one with its face-presence score and
returns dense landmarks: lips, eyelids, brows and the face oval. Only persona
preparation uses this module; the renderer reads the landmarks from the pack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = ["FaceLandmarker", "FaceMesh", "MeshIndex"]


class MeshIndex:
    """Landmark indices of the MediaPipe face mesh used by the renderer.

    "Left"/"right" are as seen in the image.
    """

    LIPS_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
    LIPS_LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
    LIPS_UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
    LIPS_LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
    EYE_LEFT_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
    EYE_LEFT_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
    EYE_RIGHT_UPPER = (362, 398, 384, 385, 386, 387, 388, 466, 263)
    EYE_RIGHT_LOWER = (362, 382, 381, 380, 374, 373, 390, 249, 263)
    BROW_LEFT = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
    BROW_RIGHT = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
    FACE_OVAL = (
        10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
        377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
    )
    NOSE_TIP = 1
    CHIN = 152
    FOREHEAD = 10


@dataclass
class FaceMesh:
    """One detected face.

    Attributes:
        box: Haar detection box ``(x, y, w, h)`` in image pixels.
        points: ``(468, 2)`` float32 landmark positions in image pixels.
        presence: face-presence probability from the landmark network, 0-1.
    """

    box: tuple[int, int, int, int]
    points: np.ndarray
    presence: float

    @property
    def width(self) -> float:
        """Face width in pixels, from the face oval."""
        oval = self.points[list(MeshIndex.FACE_OVAL)]
        return float(oval[:, 0].max() - oval[:, 0].min())


class FaceLandmarker:
    """Finds faces and their mesh in an RGB image.

    Load it once (``FaceLandmarker.load()``) and call it on many images; the
    network input is a 192x192 square crop, RGB scaled to [0, 1] as MediaPipe's
    own graph feeds it.
    """

    _INPUT = 192
    _CROP_SCALE = 1.5  # crop side / Haar box side: the mesh wants the whole head

    def __init__(self, model_path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(model_path), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = self._interpreter.get_output_details()
        self._points_out = next(o["index"] for o in outputs if int(np.prod(o["shape"])) == 1404)
        self._score_out = next(o["index"] for o in outputs if int(np.prod(o["shape"])) == 1)
        self._cascade = cv2.CascadeClassifier(
            cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        )

    @classmethod
    def load(cls) -> FaceLandmarker:
        """Load the model, fetching it into the cache the first time."""
        from .models import ensure_face_landmark_model

        return cls(ensure_face_landmark_model())

    def __call__(self, rgb: np.ndarray, *, min_presence: float = 0.5) -> list[FaceMesh]:
        """All confirmed faces in ``rgb`` (HxWx3 uint8), largest first."""
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        min_side = max(24, min(gray.shape) // 40)
        boxes = self._cascade.detectMultiScale(gray, 1.1, 5, minSize=(min_side, min_side))
        faces = [self._mesh(rgb, tuple(int(v) for v in box)) for box in boxes]
        faces = [f for f in faces if f.presence >= min_presence]
        return sorted(faces, key=lambda f: f.width, reverse=True)

    def track(self, rgb: np.ndarray, previous: FaceMesh, *, min_presence: float = 0.5) -> FaceMesh | None:
        """The face near ``previous`` in the next video frame, or None if it is lost.

        Skips the Haar detector (about 60 ms on a 384² frame) and runs only the
        mesh network (about 3 ms) on a box derived from the previous landmarks;
        the box matches the detector's on a frontal face (side 1.03 x the oval
        width, centred 0.09 side above the oval's centre).
        """
        oval = previous.points[list(MeshIndex.FACE_OVAL)]
        (x0, y0), (x1, y1) = oval.min(0), oval.max(0)
        side = 1.03 * float(x1 - x0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.09 * side
        box = (int(round(cx - side / 2)), int(round(cy - side / 2)), int(round(side)), int(round(side)))
        face = self._mesh(rgb, box)
        return face if face.presence >= min_presence else None

    def _mesh(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> FaceMesh:
        x, y, w, h = box
        side = max(w, h) * self._CROP_SCALE
        scale = self._INPUT / side
        cx, cy = x + w / 2, y + h / 2
        affine = np.array(
            [[scale, 0, self._INPUT / 2 - cx * scale], [0, scale, self._INPUT / 2 - cy * scale]],
            np.float32,
        )
        crop = cv2.warpAffine(rgb, affine, (self._INPUT, self._INPUT), borderMode=cv2.BORDER_REPLICATE)
        self._interpreter.set_tensor(self._input, (crop[None] / 255.0).astype(np.float32))
        self._interpreter.invoke()
        points = self._interpreter.get_tensor(self._points_out).reshape(468, 3)[:, :2]
        logit = float(self._interpreter.get_tensor(self._score_out).ravel()[0])
        points = (points - affine[:, 2]) / scale
        return FaceMesh(box=box, points=points.astype(np.float32), presence=1 / (1 + np.exp(-logit)))
