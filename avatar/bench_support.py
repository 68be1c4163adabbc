"""What the avatar bench (:mod:`.bench`) and soak (:mod:`.soak`) share: speech streamed as TTS frames,
OpenCV held to one thread while measuring, and the process's memory."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
from livekit import rtc
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT

from .phonemes import PhonemeTimedString
from .speech import Speech

__all__ = ["CHUNK_S", "one_thread", "peak_rss_mb", "rss_mb", "tts_frames"]

CHUNK_S = 0.01
"""TTS audio arrives in 10 ms frames."""


@contextmanager
def one_thread() -> Iterator[None]:
    """OpenCV on one thread for the duration of a measurement only."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def rss_mb() -> float:
    """Resident memory of this process now, MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tts_frames(speech: Speech, *, timed: bool = False) -> Iterator[rtc.AudioFrame]:
    """10 ms frames of ``speech``; with ``timed``, the first carries its phoneme
    timing as our piper TTS attaches it."""
    n = int(speech.sample_rate * CHUNK_S)
    for i in range(0, speech.samples.size, n):
        part = speech.samples[i:i + n]
        frame = rtc.AudioFrame(part.tobytes(), speech.sample_rate, 1, part.size)
        if timed and i == 0 and speech.phonemes:
            frame.userdata[USERDATA_TIMED_TRANSCRIPT] = [
                PhonemeTimedString("", speech.phonemes, start_time=0.0, end_time=speech.duration)]
        yield frame
