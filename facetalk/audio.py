"""Downmix and resampling of 16-bit PCM: the one place every part converts audio.

LiveKit hands us 16-bit interleaved frames at whatever rate the publisher chose
(48 kHz stereo from a browser, 24 kHz mono from the agent's own input, 22.05 kHz
from piper). webrtcvad and Whisper want 16 kHz mono, and the avatar wants its own
fixed rate. The speech plugins, the avatar and the evaluation all convert here,
with livekit's resampler.

This module imports nothing from the rest of FaceTalk, and imports ``livekit``
only where it resamples, so the avatar's diffusion bench imports it without
livekit installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from livekit import rtc

__all__ = ["SPEECH_RATE", "MonoBuffer", "MonoResampler", "downmix_int16", "mono_int16", "resample_int16"]

SPEECH_RATE = 16_000
"""Sample rate, in Hz, that speech detection and recognition run on (webrtcvad, Whisper)."""


def downmix_int16(samples: np.ndarray, num_channels: int) -> np.ndarray:
    """Interleaved int16 samples as one channel, shape ``(samples_per_channel,)``.

    Channels are averaged, which keeps a voice panned to one side audible.
    """
    if num_channels == 1:
        return samples
    channels = samples.reshape(-1, num_channels).astype(np.int32)
    return channels.mean(axis=1).astype(np.int16)


def mono_int16(frame: rtc.AudioFrame) -> np.ndarray:
    """The frame's samples downmixed to one channel: int16, shape ``(samples_per_channel,)``."""
    return downmix_int16(np.frombuffer(frame.data, dtype=np.int16), frame.num_channels)


def resample_int16(samples: np.ndarray, input_rate: int, output_rate: int) -> np.ndarray:
    """Resample a whole mono int16 clip; the resampler is flushed, so no tail is lost."""
    if input_rate == output_rate or samples.size == 0:
        return samples
    resampler = MonoResampler(output_rate, quality="high")
    return np.concatenate([resampler.push_samples(samples, input_rate), resampler.flush()])


class MonoResampler:
    """Turns a stream of frames of any rate and layout into int16 mono at ``sample_rate``.

    Stateful (it keeps the resampler's filter history between frames); call
    :meth:`flush` at the end of a segment and :meth:`reset` after an interruption.
    A frame at another input rate than the previous one starts a new resampler.
    """

    def __init__(self, sample_rate: int, *, quality: str = "medium") -> None:
        """
        Args:
            sample_rate: the output rate, in Hz.
            quality: livekit's ``AudioResamplerQuality`` by name: ``'quick'``
                (cheapest, enough for a speech detector), ``'low'``, ``'medium'``,
                ``'high'`` or ``'very_high'``.
        """
        self._rate = sample_rate
        self._quality = quality
        self._resampler: rtc.AudioResampler | None = None
        self._input_rate = 0

    @property
    def sample_rate(self) -> int:
        return self._rate

    def push(self, frame: rtc.AudioFrame) -> np.ndarray:
        """Convert one frame; returns the int16 samples available so far (maybe none)."""
        return self.push_samples(mono_int16(frame), frame.sample_rate)

    def push_samples(self, mono: np.ndarray, input_rate: int) -> np.ndarray:
        """Convert mono int16 samples at ``input_rate``; returns those available so far."""
        if input_rate == self._rate:
            return mono.copy()
        if self._resampler is None or input_rate != self._input_rate:
            from livekit import rtc

            quality = rtc.AudioResamplerQuality[self._quality.upper()]
            self._resampler = rtc.AudioResampler(input_rate, self._rate, num_channels=1, quality=quality)
            self._input_rate = input_rate
        return _concat(self._resampler.push(bytearray(mono.tobytes())))

    def flush(self) -> np.ndarray:
        """The samples still inside the resampler's filter, at the end of a segment."""
        if self._resampler is None:
            return np.zeros(0, np.int16)
        out = _concat(self._resampler.flush())
        self._resampler = None
        return out

    def reset(self) -> None:
        """Forget buffered input (after an interruption)."""
        self._resampler = None


class MonoBuffer:
    """A growing clip of mono int16 audio, appended frame by frame (downmixed).

    Appends are amortised O(1): a clip built from n frames costs O(n), where
    merging all frames again at every look would cost O(n²).
    """

    def __init__(self) -> None:
        self._samples = np.zeros(0, np.int16)
        self.size = 0
        self.sample_rate = 0

    def extend(self, frames: list[rtc.AudioFrame]) -> None:
        """Append the frames' samples; all frames must share one sample rate."""
        for frame in frames:
            self.sample_rate = frame.sample_rate
            mono = mono_int16(frame)
            if self.size + mono.size > self._samples.size:
                grown = np.zeros(max(2 * self._samples.size, self.size + mono.size), np.int16)
                grown[: self.size] = self._samples[: self.size]
                self._samples = grown
            self._samples[self.size : self.size + mono.size] = mono
            self.size += mono.size

    def frame(self, start: int = 0) -> rtc.AudioFrame:
        """The samples from ``start`` on, as one frame (a copy)."""
        from livekit import rtc

        samples = self._samples[start : self.size]
        return rtc.AudioFrame(
            data=samples.tobytes(),
            sample_rate=self.sample_rate,
            num_channels=1,
            samples_per_channel=samples.size,
        )


def _concat(frames: list[rtc.AudioFrame]) -> np.ndarray:
    if not frames:
        return np.zeros(0, np.int16)
    return np.concatenate([np.frombuffer(f.data, np.int16) for f in frames])
