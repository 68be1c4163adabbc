"""The mouth measures of the benches, training evaluation and the end-to-end tests, on known inputs."""

from __future__ import annotations

import numpy as np
import pytest

from facetalk.avatar.phonemes import PhonemeSpan
from facetalk.avatar.measures import (
    LipTrack,
    MouthBox,
    best_lag_correlation,
    bilabial_closure,
    boundary_step_ratio,
    pearson,
    psnr,
    rounding_ratio,
    ssim,
)

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


def test_mouth_box_counts_dark_pixels_alike_in_rgb_and_luma() -> None:
    """Openness is the dark share of the box, whether the frame comes as RGB or as its luma."""
    frame = np.full((20, 20, 3), 200, np.uint8)
    frame[10:12, 4:8] = 10  # a dark slit: 8 of the box's 40 pixels
    box = MouthBox(4, 8, 12, 13)
    assert box.darkness_of([frame])[0] == box.darkness(frame[..., 0]) == 8 / 40
    assert box.darkness_of([np.full((20, 20), 200, np.uint8)])[0] == 0.0


def test_best_lag_correlation_finds_the_mouth_behind_the_audio() -> None:
    """A mouth that repeats the envelope two frames later correlates fully at lag 2; flat series give (0, 0)."""
    envelope = np.random.default_rng(0).random(60)
    mouth = np.concatenate([[0.5, 0.5], envelope[:-2]])
    corr, lag = best_lag_correlation(mouth, envelope, range(-5, 6))
    assert lag == 2 and corr > 0.999
    assert best_lag_correlation(np.ones(60), envelope, range(3)) == (0.0, 0)
    assert pearson(np.ones(5), np.arange(5.0)) is None


def test_psnr_and_ssim() -> None:
    """PSNR is 10·log10(255²/MSE) (inf when identical, a mask picks pixels); SSIM is 1 for equal frames and
    falls with noise."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-8, 9, a.shape), 0, 255).astype(np.uint8)
    mse = np.mean((a.astype(float) - b) ** 2)
    assert psnr(a, b) == np.float64(10 * np.log10(255.0**2 / mse))
    assert psnr(a, a) == float("inf")
    where = np.zeros((32, 32), bool)
    where[:4] = True
    assert psnr(a, b, where) == np.float64(10 * np.log10(255.0**2 / np.mean((a[where].astype(float) - b[where]) ** 2)))
    pytest.importorskip("skimage")  # SSIM comes with the diffusion extra
    assert ssim(a, a) == 1.0
    noisier = np.clip(a.astype(int) + rng.integers(-64, 65, a.shape), 0, 255).astype(np.uint8)
    assert 0.0 < ssim(a, noisier) < ssim(a, b) < 1.0
