"""The mouth measures of the bench and the end-to-end tests, on known lip tracks."""

from __future__ import annotations

import numpy as np

from facetalk.avatar.phonemes import PhonemeSpan
from facetalk.eval.mouth import LipTrack, bilabial_closure, boundary_step_ratio, rounding_ratio

FPS = 25


def _track(gap: list[float], width: list[float] | None = None) -> LipTrack:
    n = len(gap)
    points = np.zeros((n, 468, 2), np.float32)
    return LipTrack(gap=np.array(gap, float), width=np.array(width or [50.0] * n, float), points=points)


def _times(n: int) -> np.ndarray:
    return (np.arange(n) + 0.5) / FPS


def test_bilabial_closure_counts_shut_lips_at_the_middle() -> None:
    """Two m's: one shut at its middle frame (gap 1 of p95 ~20), one open (gap 10): half closed."""
    gap = [20.0] * 20
    gap[5], gap[15] = 1.0, 10.0
    spans = [PhonemeSpan("m", 5 / FPS, 6 / FPS), PhonemeSpan("a", 6 / FPS, 15 / FPS), PhonemeSpan("b", 15 / FPS, 16 / FPS)]
    assert bilabial_closure(_track(gap), _times(20), spans) == 0.5
    assert bilabial_closure(_track(gap), _times(20), spans[1:2]) is None


def test_a_window_forgives_a_frame_of_timing_error() -> None:
    """The receiver's timing is known to a frame: the shut frame next to the middle counts with a window."""
    gap = [20.0] * 20
    gap[6] = 1.0
    spans = [PhonemeSpan("p", 5 / FPS, 6 / FPS)]
    assert bilabial_closure(_track(gap), _times(20), spans) == 0.0
    assert bilabial_closure(_track(gap), _times(20), spans, window=1.5 / FPS) == 1.0


def test_rounding_ratio_compares_rounded_with_spread_vowels() -> None:
    """Width 40 on u, 50 on i: 0.8."""
    width = [50.0] * 10
    width[2] = 40.0
    spans = [PhonemeSpan("uː", 2 / FPS, 3 / FPS), PhonemeSpan("i", 6 / FPS, 7 / FPS)]
    assert rounding_ratio(_track([5.0] * 10, width), _times(10), spans) == 0.8


def test_boundary_steps_like_any_other_give_one() -> None:
    """Landmarks moving 1 px every frame: boundaries step like the rest, ratio 1; a jump at a boundary shows."""
    track = _track([5.0] * 12)
    track.points[:, :, 0] = np.arange(12)[:, None]
    boundary = np.zeros(12, bool)
    boundary[[4, 8]] = True
    assert boundary_step_ratio(track, boundary) == 1.0
    track.points[8:, :, 0] += 5
    assert boundary_step_ratio(track, boundary) > 3
