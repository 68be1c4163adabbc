"""Publishes the avatar's audio and video to the room, tuned for a talking face.

Built on livekit's public pieces (``rtc.AudioSource``, ``rtc.VideoSource`` and
the ``AudioReceiver`` interface of livekit-agents)
rather than on livekit-agents' ``AvatarRunner``: that class fixes its publish
options and has no public hook for the queue handling below, so using it meant
overriding its private methods. Three things differ from ``AvatarRunner``:

- Video is one layer that keeps its frame rate. ``AvatarRunner`` publishes with
  WebRTC's defaults, simulcast (several encodes of every frame) and *balanced*
  degradation, which on a busy small machine dropped a fifth of the avatar's
  frames; ``MAINTAIN_FRAMERATE`` keeps 25 fps. Its frame-rate limit is twice
  the frame rate, so frames held back by a stall can catch up.
- Each video frame goes to the room when its audio starts to play
  (:class:`~.audio_paced_video.AudioPacedVideo`), not on a clock of its own as
  with ``rtc.AVSynchronizer``, whose lip-sync lag drifted over a long room.
  Listening frames still waiting when an answer starts are shown, not dropped:
  only a stall leaves any, the answer's frames gain 20 ms a frame on them, and
  dropping them cost every stall's frames (the soak's slow windows).
- An interruption also empties the queues to the room, so the ~100 ms
  of audio already handed to the room is not played after the user has
  started talking; the interrupted playback is reported finished after that.

What ``AgentSession`` relies on is kept as in ``AvatarRunner``: the receiver
hears "playback started" when a segment's first audio goes to the room, and
"playback finished" with the seconds of audio handed over, when the generator
ends the segment or, ``interrupted=True``, when the receiver asked to clear
(locally ``QueueAudioOutput``; remotely ``DataStreamAudioReceiver``, which
turns these into the ``lk.clear_buffer`` / ``lk.playback_finished`` RPCs).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine

from livekit import rtc
from livekit.agents.utils import aio, log_exceptions
from livekit.agents.voice.avatar import AudioReceiver, AudioSegmentEnd

from ..avatar.runtime import AvatarVideoGenerator
from .audio_paced_video import AudioPacedVideo

__all__ = ["VIDEO_BITRATE", "AvatarPublisher"]

logger = logging.getLogger(__name__)

VIDEO_BITRATE = 1_500_000
"""Bits/s of the one video layer: a clean 512² face at 25 fps."""


class AvatarPublisher:
    """Feeds a receiver's audio to the generator and publishes what it yields.

    Args:
        room: a connected room; the tracks are published as its local participant.
        audio_recv: where the agent's speech comes from, and where playback is reported.
        video_gen: renders the frames; it paces frames without audio itself, the audio queue paces the rest.
        video_bitrate: the video layer's maximum bitrate, bits/s.
        queue_ms: audio buffered ahead of the room; video waits for its audio.
    """

    def __init__(self, room: rtc.Room, *, audio_recv: AudioReceiver, video_gen: AvatarVideoGenerator,
                 video_bitrate: int = VIDEO_BITRATE, queue_ms: int = 100) -> None:
        options = video_gen.avatar_options()
        self._room = room
        self._audio_recv = audio_recv
        self._video_gen = video_gen
        # Twice the frame rate: after a stall the frames held back go out faster, 1 / (2 fps) apart, to catch
        # up. At the frame rate itself, WebRTC's limiter dropped them (366 of 481 frames delivered against 473).
        self._video_encoding = rtc.VideoEncoding(max_framerate=2 * options.video_fps, max_bitrate=video_bitrate)
        self._audio_source = rtc.AudioSource(options.audio_sample_rate, options.audio_channels,
                                             queue_size_ms=queue_ms)
        self._video_source = rtc.VideoSource(options.video_width, options.video_height)
        self._av = AudioPacedVideo(self._audio_source, self._video_source,
                                   min_interval_s=1 / (2 * options.video_fps))
        self._playing = False  # a segment's audio has come in and is not finished
        self._position = 0.0  # seconds of the segment's audio handed to the room
        self._clears = 0  # interruptions so far: a frame handed over across one belongs to no segment
        self._published = False
        self._loops: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def queued_audio_s(self) -> float:
        """Seconds of audio handed to the room's audio source and not yet played."""
        return self._audio_source.queued_duration

    async def start(self) -> None:
        """Start reading audio and forwarding frames; the tracks are published with the first frame."""
        if not self._room.isconnected():
            raise RuntimeError("connect the room before starting the AvatarPublisher")
        if self._loops:
            raise RuntimeError("an AvatarPublisher can be started only once")
        await self._audio_recv.start()
        self._audio_recv.on("clear_buffer", self._on_clear_buffer)
        self._loops = [asyncio.create_task(self._read_audio()), asyncio.create_task(self._forward_frames())]

    async def aclose(self) -> None:
        """Stop both loops and release the sources (the tracks go with the room)."""
        self._audio_recv.off("clear_buffer", self._on_clear_buffer)
        await self._audio_recv.aclose()
        await aio.cancel_and_wait(*self._loops, *self._tasks)
        await self._av.aclose()
        await self._audio_source.aclose()
        await self._video_source.aclose()

    @log_exceptions(logger=logger)
    async def _read_audio(self) -> None:
        async for frame in self._audio_recv:
            if isinstance(frame, rtc.AudioFrame):
                self._playing = True
            await self._video_gen.push_audio(frame)

    @log_exceptions(logger=logger)
    async def _forward_frames(self) -> None:
        async for frame in self._video_gen:
            if isinstance(frame, AudioSegmentEnd):
                if self._playing:
                    self._soon(self._audio_recv.notify_playback_finished(self._position, interrupted=False))
                    self._playing, self._position = False, 0.0
                continue
            if not self._published:
                await self._publish()
            clears = self._clears
            await self._av.push(frame)  # waits while the room's queue is full
            if isinstance(frame, rtc.AudioFrame) and clears == self._clears:
                if self._position == 0.0 and frame.duration > 0.0:
                    self._soon(self._audio_recv.notify_playback_started())
                self._position += frame.duration

    async def _publish(self) -> None:
        """Audio first, then, once someone listens, the one video layer."""
        participant = self._room.local_participant
        audio = await participant.publish_track(
            rtc.LocalAudioTrack.create_audio_track("avatar_audio", self._audio_source),
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
        )
        await audio.wait_for_subscription()
        await participant.publish_track(
            rtc.LocalVideoTrack.create_video_track("avatar_video", self._video_source),
            rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_CAMERA,
                simulcast=False,
                degradation_preference=rtc.DegradationPreference.MAINTAIN_FRAMERATE,
                video_encoding=self._video_encoding,
            ),
        )
        self._published = True

    def _on_clear_buffer(self) -> None:
        self._clears += 1
        self._soon(self._after_clear())

    async def _after_clear(self) -> None:
        """Drop what the generator and the room have not played yet, then report the interrupted playback.

        A task, not the event handler, as in ``AvatarRunner``: audio the receiver handed out just before
        the clear reaches the generator first and is dropped with the rest; cleared in the handler, that
        audio started a new segment that played on after the user had cut in.
        """
        self._video_gen.clear_buffer()
        # Again, with the generator's clear and in the same step: a frame the generator yielded
        # before it was cleared, and still being pushed, must not count towards the next answer.
        self._clears += 1
        was_playing, self._playing = self._playing, False
        position, self._position = self._position, 0.0
        self._av.clear()
        if was_playing:
            if (notified := self._audio_recv.notify_playback_finished(position, interrupted=True)) is not None:
                await notified

    def _soon(self, work: Coroutine[None, None, None] | None) -> None:
        """Run a receiver's notification (a coroutine for some receivers) without blocking the frames."""
        if work is None:
            return
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("reporting the avatar's playback failed", exc_info=error)
