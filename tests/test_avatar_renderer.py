"""The warp renderer: exact reference at rest, visible mouth and lids, no drift over minutes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facetalk.avatar.soak import psnr_outside_head, soak
from facetalk.avatar.landmarks import MeshIndex
from facetalk.avatar.motion import MotionParams
from facetalk.avatar.persona import PersonaPack, prepare_persona
from facetalk.avatar.renderer import CpuRenderer
from facetalk.avatar.speech import speak

PORTRAIT = Path(__file__).resolve().parent.parent / "configs" / "portraits" / "astronaut.png"


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> PersonaPack:
    return prepare_persona(PORTRAIT, resolution=384, out=tmp_path_factory.mktemp("pack"))


def _dark_fraction(image: np.ndarray, box: tuple[slice, slice]) -> float:
    return float(np.mean(cv2.cvtColor(np.ascontiguousarray(image[box]), cv2.COLOR_RGB2GRAY) < 70))


def test_rest_pose_is_the_reference(pack: PersonaPack) -> None:
    """With the portrait's own mouth opening and no motion, the frame is the reference."""
    renderer = CpuRenderer(pack)
    np.testing.assert_array_equal(renderer.render(MotionParams(jaw=renderer.rest_jaw)), pack.image)


def test_mouth_opens_into_a_dark_cavity_and_lips_keep_colour(pack: PersonaPack) -> None:
    """An open jaw paints a dark cavity between the lips; the lower lip moves down whole,
    keeping its colour (it is found again, shifted, with a small colour error)."""
    renderer = CpuRenderer(pack)
    lips = pack.points[list(MeshIndex.LIPS_LOWER_OUTER)]
    box = (slice(int(lips[:, 1].min()) - 10, int(lips[:, 1].max()) + 30),
           slice(int(lips[:, 0].min()), int(lips[:, 0].max())))
    closed = renderer.render(MotionParams(jaw=0.0))
    opened = renderer.render(MotionParams(jaw=0.9))
    assert _dark_fraction(opened, box) > _dark_fraction(closed, box) + 0.1
    lower_lip = np.zeros(pack.image.shape[:2], np.uint8)
    outline = np.vstack([pack.points[list(MeshIndex.LIPS_LOWER_OUTER)],
                         pack.points[list(MeshIndex.LIPS_LOWER_INNER)][::-1]])
    cv2.fillPoly(lower_lip, [np.round(outline).astype(np.int32)], 1)
    lower_lip = cv2.erode(lower_lip, np.ones((3, 3), np.uint8)).astype(bool)  # the lip's core
    ys, xs = np.nonzero(lower_lip)
    reference = pack.image[ys, xs].astype(float)
    errors = [np.abs(opened[ys + dy, xs].astype(float) - reference).mean() for dy in range(0, 40)]
    assert int(np.argmin(errors)) > 5 and min(errors) < 8


def _mouth_box(pack: PersonaPack) -> tuple[slice, slice]:
    lips = pack.points[list(MeshIndex.LIPS_UPPER_OUTER + MeshIndex.LIPS_LOWER_OUTER)]
    return (slice(int(lips[:, 1].min()) - 5, int(lips[:, 1].max()) + 40),
            slice(int(lips[:, 0].min()), int(lips[:, 0].max())))


def test_tongue_tip_rises_into_the_open_mouth(pack: PersonaPack) -> None:
    """On an open "l" the tongue (red, brighter than the cavity) fills more of the mouth than on "ah"."""
    renderer = CpuRenderer(pack)
    box = _mouth_box(pack)
    ah = renderer.render(MotionParams(jaw=0.8))[box].astype(int)
    ell = renderer.render(MotionParams(jaw=0.8, tongue=1.0))[box].astype(int)
    def tongue(image: np.ndarray) -> int:  # noqa: E306
        r, g, b = image[..., 0], image[..., 1], image[..., 2]
        return int(np.sum((r > 90) & (r > g + 40) & (r > b + 40)))
    assert tongue(ell) > tongue(ah) + 30


def test_pressed_lips_hide_the_whole_interior(pack: PersonaPack) -> None:
    """jaw -0.2 (a p/b/m): no cavity, no teeth between the lips, and the neck below the chin hardly moves."""
    renderer = CpuRenderer(pack)
    box = _mouth_box(pack)
    pressed = renderer.render(MotionParams(jaw=-0.2))
    closed = renderer.render(MotionParams(jaw=0.0))
    assert _dark_fraction(pressed, box) < 0.01
    def teeth(image: np.ndarray) -> int:  # noqa: E306
        region = image[box].astype(int)
        return int(np.sum((region.min(axis=2) > 190) & (np.ptp(region, axis=2) < 30)))
    assert teeth(pressed) < 0.2 * teeth(pack.image)  # the portrait's teeth are gone
    chin = int(pack.points[MeshIndex.CHIN][1])
    below = (slice(chin + 5, chin + 25), box[1])
    assert np.abs(pressed[below].astype(int) - closed[below].astype(int)).mean() < 12


@pytest.mark.parametrize("pose", [{}, {"yaw": 0.35, "roll": 0.2, "pitch": 0.3}, {"yaw": -0.35, "roll": -0.2},
                                  {"tx": 0.5, "ty": -0.5}])
def test_shut_lips_leave_no_dark_specks_at_the_corners(pack: PersonaPack, pose: dict[str, float]) -> None:
    """A p/b/m on this open-mouthed portrait: the lips meet out to the outer corners, whatever the
    head's pose, so none of the portrait's dark corner shadows shows there (they were specks)."""
    frame = CpuRenderer(pack).render(MotionParams(jaw=-0.3, smile=0.09, **pose))
    p = pack.points
    width = float(np.linalg.norm(p[61] - p[291]))
    for corner in (p[61], p[291]):
        x, y, dx, dy = int(corner[0]), int(corner[1]), int(0.2 * width), int(0.15 * width)
        around = (slice(y - dy, y + dy), slice(x - dx, x + dx))
        assert _dark_fraction(frame, around) == 0.0, (pose, corner)


def test_blink_closes_the_eyes(pack: PersonaPack) -> None:
    """A full blink hides the dark iris under the lid."""
    renderer = CpuRenderer(pack)
    eye = pack.points[list(MeshIndex.EYE_LEFT_UPPER + MeshIndex.EYE_LEFT_LOWER)]
    box = (slice(int(eye[:, 1].min()), int(eye[:, 1].max()) + 1), slice(int(eye[:, 0].min()), int(eye[:, 0].max()) + 1))
    open_eye = renderer.render(MotionParams(jaw=renderer.rest_jaw))
    shut = renderer.render(MotionParams(jaw=renderer.rest_jaw, blink=1.0))
    assert _dark_fraction(shut, box) < 0.5 * _dark_fraction(open_eye, box)


def test_pixels_outside_the_head_never_change(pack: PersonaPack) -> None:
    """Extreme motion leaves every pixel outside the head mask equal to the reference."""
    renderer = CpuRenderer(pack)
    frame = renderer.render(MotionParams(jaw=1, mouth_width=1, smile=1, blink=1, brow=1, gaze_x=1,
                                         yaw=1, pitch=-1, roll=1, tx=1, ty=-1))
    outside = pack.masks.head == 0
    np.testing.assert_array_equal(frame[outside], pack.image[outside])


def test_two_minutes_of_streaming_do_not_drift(pack: PersonaPack) -> None:
    """Two minutes of speech, interruptions and label changes through the runtime (faster
    than real time): outside the head the last frame still equals the reference (PSNR >= 40 dB)
    and memory stays flat."""
    result = soak(pack, speak("Hello there. I am testing how the avatar holds up over time."), minutes=2.0)
    assert result.frames == 2 * 60 * 25
    # None: identical to the reference (an infinite PSNR)
    assert result.psnr_outside_head_db is None or result.psnr_outside_head_db >= 40.0
    assert result.rss_growth_mb < 50
    assert result.wall_s < 60
    assert psnr_outside_head(pack.image, pack) == float("inf")
