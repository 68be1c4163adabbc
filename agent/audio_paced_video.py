"""Hands video frames to the room when the audio that came with them starts to play.

Why not ``rtc.AVSynchronizer``: it paces video on its own clock (a frame every
1/fps from whenever it started) and audio on the audio source's queue, and the
two never meet. Its clock only moves forward; after a stall it is behind, then
captures every frame the moment it is pushed, while the audio still waits its
~100 ms in the queue. Stall by stall, over a 30-minute room the lip-sync lag at
the receiver walked from +10 ms to -130 ms (video ever earlier).

Here the audio source's queue is the only clock. The generator yields each
video frame right before the audio rendered with it, so when a frame is pushed,
its audio will start after exactly the audio queued so far; the frame is shown
then. Frames without audio (listening, idle) are paced by the generator and,
with nothing queued, shown at once. The offset is the same in the first minute
and the hundredth.

Frames never go out closer than ``min_interval_s``. WebRTC's encoder holds one
pending frame, so frames handed over back to back, as after a stall when the
generator catches up, are lost but the last: with a 150 ms stall every twelfth
clip the user received 366 of 492 frames; spaced 20 ms apart (and with the
encoder allowed 50 fps, see :mod:`.avatar_publisher`), 473 of 482.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from livekit import rtc
from livekit.agents.utils import aio

__all__ = ["AudioPacedVideo"]


class _AudioSink(Protocol):
    """What this needs of ``rtc.AudioSource``."""

    @property
    def queued_duration(self) -> float: ...

    async def capture_frame(self, frame: rtc.AudioFrame) -> None: ...

    def clear_queue(self) -> None: ...


class _VideoSink(Protocol):
    """What this needs of ``rtc.VideoSource``."""

    def capture_frame(self, frame: rtc.VideoFrame) -> None: ...


class AudioPacedVideo:
    """Audio to its source at once; each video frame to its source when the audio before it has played.

    Args:
        audio: the room's audio source (its ``queue_size_ms`` bounds how far audio runs ahead).
        video: the room's video source.
        min_interval_s: the least time between two frames handed to the room.
        max_frames: video frames waiting at most; a push beyond waits, as the audio does.
    """

    def __init__(self, audio: _AudioSink, video: _VideoSink, *, min_interval_s: float,
                 max_frames: int = 16) -> None:
        self._audio = audio
        self._video = video
        self._min_interval_s = min_interval_s
        self._frames: asyncio.Queue[tuple[float, int, rtc.VideoFrame]] = asyncio.Queue(maxsize=max_frames)
        self._generation = 0  # bumped by clear(): a frame taken before it is not shown
        self._show_task = asyncio.create_task(self._show())

    async def push(self, frame: rtc.VideoFrame | rtc.AudioFrame) -> None:
        """Queue audio for the room (waits while its queue is full), or a video frame for its audio's start."""
        if isinstance(frame, rtc.AudioFrame):
            await self._audio.capture_frame(frame)
            return
        due = time.monotonic() + self._audio.queued_duration
        await self._frames.put((due, self._generation, frame))

    def clear(self) -> None:
        """Drop the audio and video not yet handed to the room."""
        self._generation += 1
        self._audio.clear_queue()
        while not self._frames.empty():
            self._frames.get_nowait()

    async def aclose(self) -> None:
        await aio.cancel_and_wait(self._show_task)

    async def _show(self) -> None:
        shown = -float("inf")
        while True:
            due, generation, frame = await self._frames.get()
            if (wait := max(due, shown + self._min_interval_s) - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            if generation == self._generation:
                self._video.capture_frame(frame)
                shown = time.monotonic()
