"""PCM conversions shared by the speech plugins: downmix and resample.

LiveKit hands us 16-bit interleaved frames at whatever rate the publisher chose
(48 kHz stereo from a browser, 24 kHz mono from the agent's own input). Both
webrtcvad and Whisper want 16 kHz mono, so the conversion lives in one place.
"""

from __future__ import annotations

import numpy as np
from livekit import rtc
from livekit.agents.utils import AudioBuffer, merge_frames

__all__ = ["SPEECH_RATE", "mono_int16", "resample_int16", "speech_float32"]

SPEECH_RATE = 16_000
"""Sample rate, in Hz, of the audio webrtcvad and Whisper run on."""


def mono_int16(frame: rtc.AudioFrame) -> np.ndarray:
    """The frame's samples as one channel: int16, shape ``(samples_per_channel,)``.

    Channels are averaged, which keeps a voice panned to one side audible.
    """
    samples = np.frombuffer(frame.data, dtype=np.int16)
    if frame.num_channels == 1:
        return samples
    channels = samples.reshape(-1, frame.num_channels).astype(np.int32)
    return channels.mean(axis=1).astype(np.int16)


def resample_int16(samples: np.ndarray, input_rate: int, output_rate: int) -> np.ndarray:
    """Resample a whole mono int16 clip; the resampler is flushed, so no tail is lost."""
    if input_rate == output_rate or samples.size == 0:
        return samples
    resampler = rtc.AudioResampler(
        input_rate, output_rate, num_channels=1, quality=rtc.AudioResamplerQuality.HIGH
    )
    frame = rtc.AudioFrame(
        data=samples.tobytes(),
        sample_rate=input_rate,
        num_channels=1,
        samples_per_channel=samples.size,
    )
    out = [*resampler.push(frame), *resampler.flush()]
    if not out:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in out])


def speech_float32(buffer: AudioBuffer) -> np.ndarray:
    """Audio as Whisper takes it: 16 kHz mono float32 in [-1, 1], shape ``(n,)``."""
    if isinstance(buffer, list) and not buffer:
        return np.zeros(0, dtype=np.float32)
    frame = merge_frames(buffer) if isinstance(buffer, list) else buffer
    if frame.samples_per_channel == 0:
        return np.zeros(0, dtype=np.float32)
    samples = resample_int16(mono_int16(frame), frame.sample_rate, SPEECH_RATE)
    return samples.astype(np.float32) / 32768.0
