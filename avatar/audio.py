"""Audio input of the avatar: one fixed format, and per-frame features.

Whatever the TTS produces (any sample rate, any channel count) is downmixed
and resampled (by :mod:`facetalk.audio`) to :data:`SAMPLE_RATE` mono int16,
the format the generator yields back. Motion synthesis reads one :class:`AudioFeatures` per video frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import audio

if TYPE_CHECKING:
    from .visemes import VisemeFrame

__all__ = ["CHANNELS", "SAMPLE_RATE", "AudioFeatures", "FeatureExtractor", "MonoResampler"]

SAMPLE_RATE = 24000
"""Sample rate (Hz) of every audio frame the avatar generators yield."""
CHANNELS = 1
"""Channel count of every audio frame the avatar generators yield."""


@dataclass
class AudioFeatures:
    """What motion synthesis hears in one video frame of audio.

    Attributes:
        energy: loudness mapped to 0 (silence) .. 1 (the loudest recent speech).
        brightness: spectral centroid mapped to 0 (dark vowels like "oo") .. 1 ("ee", "s").
        noisiness: zero-crossing rate, 0 .. 1; high for fricatives.
        viseme: the mouth shape the TTS's phoneme timing asks for at this
            frame, or ``None`` when the audio came without timing (then the
            mouth follows loudness and brightness alone).
    """

    energy: float
    brightness: float
    noisiness: float
    viseme: VisemeFrame | None = None


class MonoResampler(audio.MonoResampler):
    """:class:`facetalk.audio.MonoResampler` at the avatar's :data:`SAMPLE_RATE` by default."""

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__(sample_rate)


class FeatureExtractor:
    """Per-frame loudness and spectral shape, with an adaptive loudness scale.

    The loudness scale follows the recent peak level so that quiet and loud
    voices open the mouth alike; it decays slowly (``peak_decay_db`` per frame).
    """

    def __init__(self, *, floor_db: float = -55.0, range_db: float = 28.0, peak_decay_db: float = 0.05) -> None:
        self._floor_db = floor_db
        self._range_db = range_db
        self._decay = peak_decay_db
        self._peak_db = -22.0

    def __call__(self, samples: np.ndarray, viseme: VisemeFrame | None = None) -> AudioFeatures:
        """Features of one video frame's worth of int16 mono samples (and the
        frame's viseme, when phoneme timing came with the audio)."""
        x = samples.astype(np.float32) / 32768.0
        if x.size == 0:
            return AudioFeatures(0.0, 0.5, 0.0, viseme)
        rms = float(np.sqrt(np.mean(x * x)) + 1e-9)
        db = 20.0 * np.log10(rms)
        self._peak_db = max(db, self._peak_db - self._decay, -30.0)
        low = max(self._floor_db, self._peak_db - self._range_db)
        energy = float(np.clip((db - low) / (self._peak_db - low), 0.0, 1.0))
        spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
        freqs = np.fft.rfftfreq(x.size, 1.0 / SAMPLE_RATE)
        centroid = float((spectrum * freqs).sum() / (spectrum.sum() + 1e-9))
        brightness = float(np.clip((centroid - 500.0) / 2500.0, 0.0, 1.0))
        noisiness = float(np.clip(np.mean(np.abs(np.diff(np.signbit(x).astype(np.int8)))) * 4.0, 0.0, 1.0))
        return AudioFeatures(energy, brightness, noisiness, viseme)
