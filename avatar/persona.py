"""Persona preparation: one portrait in, a cached persona pack out.

A pack holds what the renderer needs and nothing it can recompute cheaply:
the aligned square crop at the output resolution, the 468 face-mesh landmarks
in that crop, region masks, and metadata. Packs are keyed by a hash of the
portrait's bytes and the resolution, so a changed portrait is prepared again
and an unchanged one loads in milliseconds.

Every way a portrait can be unusable is reported as a :class:`PortraitError`
saying what is wrong and how to fix it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import FaceTalkError
from .landmarks import FaceLandmarker, MeshIndex
from .models import cache_dir

__all__ = ["PersonaPack", "PortraitError", "RegionMasks", "alignment_transform", "load_pack", "prepare_persona",
           "read_portrait"]

logger = logging.getLogger(__name__)

PACK_FORMAT = 1
MAX_SIDE = 2048  # larger portraits are downscaled first: detail beyond this is never shown
MIN_SIDE = 64
MIN_FACE_WIDTH = 64  # pixels across the face oval; below this the mouth is a few pixels wide
FACE_FRACTION = 0.36  # face-oval width / output side: head-and-shoulders framing
_HINT = "use a well-lit, front-facing head-and-shoulders photo (PNG or JPEG)"


class PortraitError(FaceTalkError):
    """A portrait that cannot be turned into a persona."""


@dataclass
class RegionMasks:
    """Soft masks over the pack image, ``(S, S)`` float32 in [0, 1].

    Attributes:
        head: where the head may move (face, hair, upper neck); zero elsewhere,
            so pixels outside it always equal the reference.
        face: inside the face oval.
    """

    head: np.ndarray
    face: np.ndarray


@dataclass
class PersonaPack:
    """A prepared persona.

    Attributes:
        image: ``(S, S, 3)`` uint8 RGB aligned crop, S = resolution.
        points: ``(468, 2)`` float32 landmarks in ``image`` pixels.
        masks: region masks in ``image`` pixels.
        resolution: S, 384 or 512.
        key: content hash of the portrait bytes, resolution and pack format.
        source: the portrait path it was prepared from.
        notes: what preparation changed or chose (conversions, downscale, which face).
    """

    image: np.ndarray
    points: np.ndarray
    masks: RegionMasks
    resolution: int
    key: str
    source: str
    notes: list[str] = field(default_factory=list)

    def save(self, folder: Path) -> None:
        """Write the pack (``pack.npz``, ``meta.json``, ``preview.png``) into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            folder / "pack.npz", image=self.image, points=self.points,
            head=self.masks.head, face=self.masks.face,
        )
        meta = {"format": PACK_FORMAT, "key": self.key, "resolution": self.resolution,
                "source": self.source, "notes": self.notes}
        (folder / "meta.json").write_text(json.dumps(meta, indent=2))
        cv2.imwrite(str(folder / "preview.png"), cv2.cvtColor(_preview(self), cv2.COLOR_RGB2BGR))


def _preview(pack: PersonaPack) -> np.ndarray:
    """The crop with landmarks and the head mask outline, for a human to check."""
    view = pack.image.copy()
    for x, y in pack.points:
        cv2.circle(view, (int(round(x)), int(round(y))), 1, (0, 255, 0), -1, cv2.LINE_AA)
    contours, _ = cv2.findContours((pack.masks.head > 0).astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(view, contours, -1, (255, 200, 0), 1, cv2.LINE_AA)
    return view


def load_pack(folder: Path) -> PersonaPack:
    """Load a pack written by :meth:`PersonaPack.save`."""
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("format") != PACK_FORMAT:
        raise PortraitError(f"{folder}: persona pack format {meta.get('format')}, expected {PACK_FORMAT}",
                            hint="prepare the persona again")
    with np.load(folder / "pack.npz") as data:
        return PersonaPack(
            image=data["image"], points=data["points"],
            masks=RegionMasks(head=data["head"], face=data["face"]),
            resolution=meta["resolution"], key=meta["key"], source=meta["source"], notes=meta["notes"],
        )


# --- reading -----------------------------------------------------------------


def _looks_truncated(data: bytes) -> bool:
    """PNG and JPEG files carry an end marker; a cut-off download lacks it."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return b"IEND" not in data[-32:]
    if data.startswith(b"\xff\xd8"):
        return b"\xff\xd9" not in data[-64:]
    return False


def read_portrait(path: Path, notes: list[str] | None = None) -> np.ndarray:
    """Read any common image as ``(H, W, 3)`` uint8 RGB, at most ``MAX_SIDE`` pixels.

    Grayscale, RGBA (composited on white) and 16-bit images are converted, and
    huge ones downscaled; each change is appended to ``notes``.
    """
    notes = notes if notes is not None else []
    if not path.is_file():
        raise PortraitError(f"{path}: portrait not found", hint="check the path")
    data = path.read_bytes()
    if _looks_truncated(data):
        raise PortraitError(f"{path}: the image file is truncated (its end is missing)",
                            hint="download or export the image again")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise PortraitError(f"{path}: not an image, or a format OpenCV cannot read", hint=_HINT)
    if image.dtype == np.uint16:
        image = (image / 257.0 + 0.5).astype(np.uint8)
        notes.append("converted 16-bit to 8-bit")
    elif image.dtype != np.uint8:
        raise PortraitError(f"{path}: unsupported pixel type {image.dtype}", hint="save it as 8-bit PNG or JPEG")
    if image.ndim == 2 or image.shape[2] == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        notes.append("converted grayscale to RGB")
    elif image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        image = (image[:, :, :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        notes.append("composited RGBA on white")
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise PortraitError(f"{path}: image is {width}x{height}, too small (need at least {MIN_SIDE} px)",
                            hint=_HINT)
    if max(height, width) > MAX_SIDE:
        scale = MAX_SIDE / max(height, width)
        image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        notes.append(f"downscaled from {width}x{height} to {image.shape[1]}x{image.shape[0]}")
    return image


# --- preparing ---------------------------------------------------------------


def alignment_transform(points: np.ndarray, size: int) -> np.ndarray:
    """The ``(2, 3)`` float64 affine (image pixels → crop pixels) of the aligned crop.

    It rotates so the eyes are level, scales so the face-oval width is
    ``FACE_FRACTION`` of ``size`` and puts the face a little above the centre;
    datasets store it per frame, so it is public.
    """
    left = points[list(MeshIndex.EYE_LEFT_UPPER + MeshIndex.EYE_LEFT_LOWER)].mean(0)
    right = points[list(MeshIndex.EYE_RIGHT_UPPER + MeshIndex.EYE_RIGHT_LOWER)].mean(0)
    angle = np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0]))
    oval = points[list(MeshIndex.FACE_OVAL)]
    center = oval.mean(0)
    scale = FACE_FRACTION * size / float(oval[:, 0].max() - oval[:, 0].min())
    affine = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), float(angle), scale)
    affine[:, 2] += np.array([size / 2, size * 0.44]) - center  # face a little above centre
    return affine


def _align(image: np.ndarray, points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The aligned crop of ``image`` and ``points`` moved into it."""
    affine = alignment_transform(points, size)
    crop = cv2.warpAffine(image, affine, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    moved = points @ affine[:, :2].T + affine[:, 2]
    return crop, moved.astype(np.float32)


def _masks(points: np.ndarray, size: int) -> RegionMasks:
    """The head ellipse (with hair and upper neck) and the face oval, feathered."""
    oval = points[list(MeshIndex.FACE_OVAL)]
    (x0, y0), (x1, y1) = oval.min(0), oval.max(0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.14 * (y1 - y0)
    ax, ay = 0.80 * (x1 - x0), 0.80 * (y1 - y0)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    radius = np.sqrt(((xs - cx) / ax) ** 2 + ((ys - cy) / ay) ** 2)
    t = np.clip((1.08 - radius) / 0.3, 0.0, 1.0)
    head = t * t * (3 - 2 * t)
    head[head < 1e-3] = 0.0
    face = np.zeros((size, size), np.uint8)
    cv2.fillPoly(face, [np.round(oval).astype(np.int32)], 255)
    face = cv2.GaussianBlur(face, (0, 0), 2).astype(np.float32) / 255.0
    return RegionMasks(head=head.astype(np.float32), face=face)


def prepare_persona(
    portrait: Path,
    *,
    resolution: int = 512,
    out: Path | None = None,
    landmarker: FaceLandmarker | None = None,
) -> PersonaPack:
    """Prepare (or load from the cache) the persona pack of ``portrait``.

    Args:
        portrait: image file; PNG, JPEG or anything OpenCV reads.
        resolution: output side in pixels (384 or 512).
        out: folder to write the pack to; defaults to ``<cache>/personas/<key>``.
        landmarker: a loaded :class:`FaceLandmarker` to reuse across calls.

    Raises:
        PortraitError: the portrait is unreadable, has no usable face, or is too small.
    """
    portrait = Path(portrait)
    if not portrait.is_file():
        raise PortraitError(
            f"{portrait}: portrait not found (no file at {portrait.absolute()})",
            hint="pass the path of an existing PNG or JPEG with one face, e.g. configs/portraits/astronaut.png "
            "after 'facetalk init'",
        )
    digest = hashlib.sha256(portrait.read_bytes()).hexdigest()[:16]
    key = f"{digest}-{resolution}-v{PACK_FORMAT}"
    folder = out or cache_dir() / "personas" / key
    if (folder / "meta.json").is_file():
        try:
            cached = load_pack(folder)
        except (OSError, ValueError, KeyError, PortraitError):
            cached = None  # a damaged or old pack is simply rebuilt
        if cached is not None and cached.key == key:
            return cached

    # 1. Read and normalise the image.
    notes: list[str] = []
    image = read_portrait(portrait, notes)
    # 2. Find the face.
    faces = (landmarker or FaceLandmarker.load())(image)
    if not faces:
        raise PortraitError(f"{portrait}: no face found", hint=_HINT)
    face = faces[0]
    if len(faces) > 1:
        x, y, w, h = face.box
        notes.append(f"found {len(faces)} faces; using the largest, at x={x} y={y} ({w}x{h} px)")
        logger.warning("%s: %s", portrait, notes[-1])
    if face.width < MIN_FACE_WIDTH:
        raise PortraitError(
            f"{portrait}: the face is {face.width:.0f} px wide, too small (need at least {MIN_FACE_WIDTH})",
            hint="use a larger or closer-cropped photo of the face",
        )
    # 3. Align, crop and mask.
    crop, points = _align(image, face.points, resolution)
    pack = PersonaPack(image=crop, points=points, masks=_masks(points, resolution), resolution=resolution,
                       key=key, source=str(portrait), notes=notes)
    pack.save(folder)
    return pack
