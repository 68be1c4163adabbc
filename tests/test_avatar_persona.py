"""Persona preparation: bad inputs are refused or converted, packs are cached by content."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from facetalk.avatar.persona import PortraitError, load_pack, prepare_persona
from facetalk.cli import app

PORTRAIT = Path(__file__).resolve().parent.parent / "configs" / "portraits" / "astronaut.png"


@pytest.fixture(scope="module")
def bgr() -> np.ndarray:
    return cv2.imread(str(PORTRAIT))


def _write(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


def test_prepares_the_default_portrait(tmp_path: Path) -> None:
    """The astronaut yields a square RGB crop with 468 landmarks inside it."""
    pack = prepare_persona(PORTRAIT, resolution=384, out=tmp_path / "pack")
    assert pack.image.shape == (384, 384, 3) and pack.image.dtype == np.uint8
    assert pack.points.shape == (468, 2)
    assert (pack.points >= 0).all() and (pack.points < 384).all()
    assert pack.masks.head.shape == (384, 384) and pack.masks.head.max() == 1.0
    assert pack.notes == []


def test_pack_is_cached_by_content(tmp_path: Path, bgr: np.ndarray) -> None:
    """A second prepare loads the pack; different bytes give a different key."""
    first = prepare_persona(PORTRAIT, resolution=384, out=tmp_path / "a")
    again = prepare_persona(PORTRAIT, resolution=384, out=tmp_path / "a")
    assert again.key == first.key
    np.testing.assert_array_equal(again.image, load_pack(tmp_path / "a").image)
    other = _write(tmp_path / "other.png", cv2.flip(bgr, 1))
    assert prepare_persona(other, resolution=384, out=tmp_path / "b").key != first.key


def test_not_an_image(tmp_path: Path) -> None:
    """A text file is refused as not an image."""
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(PortraitError, match="not an image"):
        prepare_persona(path, out=tmp_path / "pack")


def test_truncated_file(tmp_path: Path) -> None:
    """A PNG cut in half is reported as truncated."""
    data = PORTRAIT.read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PortraitError, match="truncated"):
        prepare_persona(path, out=tmp_path / "pack")


def test_missing_file(tmp_path: Path) -> None:
    """A path that does not exist is reported as not found."""
    with pytest.raises(PortraitError, match="not found"):
        prepare_persona(tmp_path / "nope.png")


def test_no_face(tmp_path: Path) -> None:
    """A picture without a face is refused."""
    gradient = np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (256, 1))
    path = _write(tmp_path / "wall.png", cv2.merge([gradient] * 3))
    with pytest.raises(PortraitError, match="no face"):
        prepare_persona(path, out=tmp_path / "pack")


def test_face_too_small(tmp_path: Path, bgr: np.ndarray) -> None:
    """A face only ~54 px wide is refused as too small."""
    path = _write(tmp_path / "small.png", cv2.resize(bgr, (300, 300), interpolation=cv2.INTER_AREA))
    with pytest.raises(PortraitError, match="too small"):
        prepare_persona(path, out=tmp_path / "pack")


def test_several_faces_uses_the_largest_and_says_so(tmp_path: Path, bgr: np.ndarray) -> None:
    """With two faces the largest is used and the notes say which."""
    small = cv2.copyMakeBorder(cv2.resize(bgr, (400, 400)), 56, 56, 0, 0, cv2.BORDER_REPLICATE)
    path = _write(tmp_path / "two.png", np.hstack([bgr, small]))
    pack = prepare_persona(path, resolution=384, out=tmp_path / "pack")
    assert any("found 2 faces; using the largest, at x=" in n for n in pack.notes)
    assert pack.points[:, 0].mean() == pytest.approx(192, abs=30)


def test_huge_image_is_downscaled(tmp_path: Path, bgr: np.ndarray) -> None:
    """A 4096 px portrait is downscaled before detection."""
    path = _write(tmp_path / "huge.png", cv2.resize(bgr, (4096, 4096), interpolation=cv2.INTER_LINEAR))
    pack = prepare_persona(path, resolution=384, out=tmp_path / "pack")
    assert any("downscaled from 4096x4096" in n for n in pack.notes)


@pytest.mark.parametrize(
    ("name", "convert", "note"),
    [
        ("gray", lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), "grayscale"),
        ("rgba", lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2BGRA), "RGBA"),
        ("deep", lambda im: im.astype(np.uint16) * 257, "16-bit"),
    ],
)
def test_unusual_pixel_formats_are_converted(tmp_path: Path, bgr: np.ndarray, name: str, convert, note: str) -> None:
    """Grayscale, RGBA and 16-bit portraits become 8-bit RGB packs, with a note."""
    path = _write(tmp_path / f"{name}.png", convert(bgr))
    pack = prepare_persona(path, resolution=384, out=tmp_path / "pack")
    assert pack.image.shape == (384, 384, 3) and pack.image.dtype == np.uint8
    assert any(note in n for n in pack.notes)


def test_cli_reports_bad_input_with_exit_code(tmp_path: Path) -> None:
    """'facetalk persona prepare' on a non-image prints the error and exits 1."""
    path = tmp_path / "notes.png"
    path.write_text("hello")
    result = CliRunner().invoke(app, ["persona", "prepare", str(path), "--out", str(tmp_path / "pack")])
    assert result.exit_code == 1
    assert "not an image" in result.output
