"""Real speech for the ASR/TTS/VAD tests: piper's bundled voice, and how to score it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
from livekit import rtc

from facetalk.agent.plugins.piper import PiperTTS


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fails a test that leaves asyncio tasks running (an unclosed stream, say)."""
    yield
    await asyncio.sleep(0)  # let cancelled tasks finish unwinding
    leaked = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leaked, f"leaked tasks: {leaked}"


async def speak(tts: PiperTTS, text: str) -> rtc.AudioFrame:
    """``text`` spoken by piper, as one mono 16-bit frame at the voice's rate."""
    async with tts.synthesize(text) as stream:
        return await stream.collect()


def samples(frame: rtc.AudioFrame) -> np.ndarray:
    return np.frombuffer(frame.data, dtype=np.int16)


def to_frame(pcm: np.ndarray, sample_rate: int, num_channels: int = 1) -> rtc.AudioFrame:
    data = pcm.astype(np.int16).tobytes()
    return rtc.AudioFrame(data, sample_rate, num_channels, pcm.size // num_channels)


def padded(frame: rtc.AudioFrame, before_s: float, after_s: float) -> np.ndarray:
    """The frame's samples with digital silence around them."""
    rate = frame.sample_rate
    before = np.zeros(int(before_s * rate), np.int16)
    after = np.zeros(int(after_s * rate), np.int16)
    return np.concatenate([before, samples(frame), after])


def voiced_span(pcm: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """First and last moment, in seconds, where the signal exceeds 2% of its peak."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 0.02 * np.abs(pcm).max())
    return loud[0] / sample_rate, loud[-1] / sample_rate


def chunks(
    pcm: np.ndarray, sample_rate: int, ms: int = 20, num_channels: int = 1
) -> Iterator[rtc.AudioFrame]:
    """Frames of ``ms`` milliseconds, the way a room delivers audio."""
    step = sample_rate * ms // 1000 * num_channels
    for i in range(0, pcm.size, step):
        yield to_frame(pcm[i : i + step], sample_rate, num_channels)


async def push_realtime(
    stream, pcm: np.ndarray, sample_rate: int, *, speedup: float = 1.0, end: bool = True
) -> None:
    """Push 20 ms frames at (a multiple of) real time, then end the input unless ``end`` is False."""
    for frame in chunks(pcm, sample_rate):
        stream.push_frame(frame)
        await asyncio.sleep(0.02 / speedup)
    if end:
        stream.end_input()
