"""The streaming runtime: a livekit-agents ``VideoGenerator`` around any engine.

Audio pushed in (any rate, any layout) is resampled to :data:`~.audio.SAMPLE_RATE`
mono and cut into one chunk per video frame. Frames are rendered in clips of
variable length, as in LLIA: the first clip of a segment, or after a label
change, is one frame, so video starts as soon as one frame of audio is in;
later clips double up to ``max_clip_frames`` to amortise per-clip cost. The
engine keeps its motion state across clips, so boundaries are continuous.

Each rendered video frame is yielded right before the audio it was rendered
from, so the mouth in the frame at time t matches the audio at time t. With
no audio queued, the runtime keeps yielding frames of the current label
(listening or idle) at ``fps``, paced against its own media clock.

One clip in flight ahead: once a speaking clip is rendered, if the audio of
the next clip is already queued, the next clip's render starts (on a thread)
before this clip's frames are yielded. The engine works while the consumer
takes frames, and a pipelined engine (the diffusion engine's separate denoise
and decode streams) overlaps the two clips.

What an interruption drops: :meth:`AvatarVideoGenerator.clear_buffer` drops
queued audio, any rendered frames not yet yielded and the clip in flight (its
render is waited for, then discarded); the engine then forgets the cut-off
speech (:meth:`~.engine.FrameEngine.reset`, between clips, since a render may be
running on a thread), and the next frame is a listening frame. No
``AudioSegmentEnd`` follows a cleared segment: the publisher
(:mod:`facetalk.agent.avatar_publisher`) reports the interruption itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd, AvatarOptions, VideoGenerator

from ..config import Expression
from .audio import CHANNELS, SAMPLE_RATE, AudioFeatures, FeatureExtractor, MonoResampler
from .engine import Clip, FrameEngine
from .labels import Label
from .motion import MotionParams
from .phonemes import spans_from_frame
from .visemes import SegmentVisemes

__all__ = ["AvatarVideoGenerator", "FrameInfo"]

logger = logging.getLogger(__name__)

_INLINE_FRAMES = 2  # clips this short render on the loop: a thread hop costs more than it saves
_SLOW_CLIP_S = 0.5
# Frames up to this late still go out after a stall: the publisher spaces them 1/(2 fps) apart, so they catch up
# in as long again and the user loses none. Later than this they are skipped: a face that lagged the conversation
# by more would show a listening face after the user had heard the answer begin.
_CATCH_UP_S = 0.6


@dataclass
class FrameInfo:
    """What the runtime knows about one yielded video frame (for metrics and tests).

    Attributes:
        index: frame number in the stream, from 0.
        label: the label it was rendered under.
        clip: clip number in the stream, from 0.
        clip_size: number of frames in that clip.
        audio: int16 mono samples yielded with it (empty for a frame without audio).
        motion: its motion parameters, when the engine reports them.
        created: ``time.perf_counter()`` when it was yielded.
    """

    index: int
    label: Label
    clip: int
    clip_size: int
    audio: np.ndarray
    motion: MotionParams | None
    created: float


@dataclass
class _Segment:
    """Resampled audio of one TTS segment, consumed frame by frame."""

    samples: list[np.ndarray] = field(default_factory=list)
    queued: int = 0
    pushed: int = 0
    ended: bool = False
    frames_done: int = 0
    visemes: SegmentVisemes = field(default_factory=SegmentVisemes)

    def append(self, samples: np.ndarray) -> None:
        if samples.size:
            self.samples.append(samples)
            self.queued += samples.size
            self.pushed += samples.size

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` samples, zero-padded if the segment has fewer."""
        data = np.concatenate(self.samples) if len(self.samples) != 1 else self.samples[0]
        out, rest = data[:n], data[n:]
        self.samples = [rest] if rest.size else []
        self.queued = rest.size
        return out if out.size == n else np.pad(out, (0, n - out.size))


@dataclass
class _InFlight:
    """A speaking clip whose render started ahead: the audio it took, and the generation it belongs to."""

    task: asyncio.Task[Clip]
    chunks: list[np.ndarray]
    generation: int


@dataclass
class _Options:
    fps: float
    max_clip_frames: int


class AvatarVideoGenerator(VideoGenerator):
    """Drives a :class:`~.engine.FrameEngine` from streaming speech audio.

    Args:
        engine: renders the frames (the CPU engine or the diffusion engine).
        fps: video frame rate.
        label: the label before any :meth:`set_state` call.
        max_clip_frames: upper bound of the growing clip length.
        expression: the starting expression controls (the persona's).
        on_frame: called with a :class:`FrameInfo` for each yielded video frame.

    Yields (``async for``) ``rtc.VideoFrame`` (RGB24, ``video_width`` x
    ``video_height``), ``rtc.AudioFrame`` (``audio_sample_rate`` Hz,
    ``audio_channels`` channels, int16) and ``AudioSegmentEnd``.
    """

    def __init__(
        self,
        engine: FrameEngine,
        *,
        fps: float,
        label: Label = Label.LISTENING,
        max_clip_frames: int = 8,
        expression: Expression | None = None,
        on_frame: Callable[[FrameInfo], None] | None = None,
    ) -> None:
        self._engine = engine
        self._opts = _Options(fps=fps, max_clip_frames=max_clip_frames)
        self._expression = expression or Expression()
        self._on_frame = on_frame
        self._state = label
        self._resampler = MonoResampler()
        self._features = FeatureExtractor()
        self._segments: deque[_Segment] = deque()
        self._wake = asyncio.Event()
        self._generation = 0
        self._resync = True
        self._engine_stale = False  # interrupted: reset the engine before its next clip
        self._closed = False
        self._streaming = False
        self._told_untimed = False

    # --- public surface ------------------------------------------------------------

    @property
    def video_width(self) -> int:
        return self._engine.width

    @property
    def video_height(self) -> int:
        return self._engine.height

    @property
    def fps(self) -> float:
        return self._opts.fps

    @property
    def audio_sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def audio_channels(self) -> int:
        return CHANNELS

    @property
    def state(self) -> Label:
        """The label frames without audio are rendered under."""
        return self._state

    def avatar_options(self) -> AvatarOptions:
        """The sizes, frame rate and audio format this generator yields, in livekit's terms."""
        return AvatarOptions(video_width=self.video_width, video_height=self.video_height,
                             video_fps=self.fps, audio_sample_rate=SAMPLE_RATE, audio_channels=CHANNELS)

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        """Queue TTS audio (any rate or layout), or end the current segment."""
        if self._closed:
            raise RuntimeError("push_audio on a closed AvatarVideoGenerator")
        if isinstance(frame, AudioSegmentEnd):
            if self._segments and not self._segments[-1].ended:
                segment = self._segments[-1]
                segment.append(self._resampler.flush())
                segment.ended = True
                segment.visemes.end(segment.pushed / SAMPLE_RATE)
                self._note_untimed(segment)
        else:
            if not self._segments or self._segments[-1].ended:
                self._segments.append(_Segment())
            self._segments[-1].append(self._resampler.push(frame))
            self._segments[-1].visemes.add(spans_from_frame(frame))
        self._wake.set()

    def _note_untimed(self, segment: _Segment) -> None:
        """Say once per stream that the TTS sends no phoneme timing."""
        if not segment.visemes.timed and not self._told_untimed:
            self._told_untimed = True
            logger.info("the TTS audio carries no phoneme or word timing: the mouth follows its loudness")

    def clear_buffer(self) -> None:
        """Drop queued audio and unyielded frames; the next frame is listening."""
        self._segments.clear()
        self._resampler.reset()
        self._generation += 1
        self._engine_stale = True
        self._state = Label.LISTENING
        self._resync = True
        self._wake.set()

    def set_state(self, label: Label) -> None:
        """Set the label of frames without audio (frames with audio are speaking)."""
        self._state = Label(label)
        self._wake.set()

    def set_expression(self, **intensities: float) -> None:
        """Change expression controls by name (``smile=0.6``), intensities 0-1."""
        self._expression = self._expression.model_validate({**self._expression.model_dump(), **intensities})
        self._engine.set_expression(self._expression)

    async def aclose(self) -> None:
        """End the stream; a running ``async for`` finishes after its current frame."""
        self._closed = True
        self._wake.set()

    def __aiter__(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        if self._streaming:
            raise RuntimeError("an AvatarVideoGenerator can be iterated only once")
        self._streaming = True
        return self._stream()

    # --- the stream --------------------------------------------------------------------

    def _frame_samples(self, k: int) -> int:
        """Samples in frame ``k`` of a segment; exact for any fps (no drift)."""
        rate = SAMPLE_RATE / self._opts.fps
        return round((k + 1) * rate) - round(k * rate)

    async def _stream(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        loop = asyncio.get_running_loop()
        fps = self._opts.fps
        index = clip_index = 0
        clip_size, last_label = 1, None
        ahead: _InFlight | None = None
        t0 = loop.time()
        try:
            while not self._closed:
                if self._engine_stale and ahead is None:  # no render running: safe to reset
                    self._engine_stale = False
                    self._engine.reset()
                now = loop.time()
                if self._resync or now > t0 + index / fps + _CATCH_UP_S:  # fell too far behind: skip ahead
                    t0, self._resync = now - index / fps, False
                due = t0 + index / fps  # when the next frame plays out
                segment = self._segments[0] if self._segments else None
                if ahead is not None:
                    # 0. The speaking clip in flight: its audio was taken when its render started.
                    flight, ahead = ahead, None
                    clip = await flight.task
                    if flight.generation != self._generation:
                        continue  # interrupted while in flight: these frames are dropped
                    label, chunks, generation = Label.SPEAKING, flight.chunks, flight.generation
                else:
                    if segment is not None and segment.ended and segment.queued == 0:
                        self._segments.popleft()
                        if segment.frames_done:
                            yield AudioSegmentEnd()
                        continue
                    ready = self._frames_ready(segment, clip_size) if segment is not None else 0
                    if ready:
                        # 1. Speaking: the first clip of a segment is one frame; later ones
                        #    wait for a full clip of audio while the consumer is ahead.
                        assert segment is not None
                        if last_label != Label.SPEAKING or segment.frames_done == 0:
                            clip_size = ready = 1
                        margin = (clip_size + 1) / fps
                        if ready < clip_size and not segment.ended and due - margin > now:
                            await self._wait(due - margin - now)
                            continue
                        chunks, features = self._take(segment, ready)
                        label = Label.SPEAKING
                    else:
                        # 2. No audio frame ready: a listening/idle frame when its time comes.
                        if due > now and await self._wait(due - now):
                            continue  # something changed: decide again
                        label, chunks, features = self._state, [], [None]
                    # 3. Render, off the loop unless the clip is tiny.
                    generation = self._generation
                    clip = await self._render(features, label)
                    if generation != self._generation:
                        continue  # interrupted while rendering: these frames are dropped
                if label == Label.SPEAKING:
                    clip_size = min(2 * clip_size, self._opts.max_clip_frames)
                    # 4. Keep one clip in flight: start the next one before yielding this one.
                    ahead = await self._start_ahead(segment, clip_size)
                size = len(clip.frames)
                for i, image in enumerate(clip.frames):
                    if generation != self._generation:
                        break
                    audio = chunks[i] if chunks else np.zeros(0, np.int16)
                    if self._on_frame is not None:
                        self._on_frame(FrameInfo(index=index, label=label, clip=clip_index, clip_size=size,
                                                 audio=audio, motion=clip.motion[i] if clip.motion else None,
                                                 created=time.perf_counter()))
                    yield rtc.VideoFrame(image.shape[1], image.shape[0], rtc.VideoBufferType.RGB24, image.tobytes())
                    index += 1
                    if audio.size and generation == self._generation:  # not if cleared while the video went out
                        yield rtc.AudioFrame(audio.tobytes(), SAMPLE_RATE, CHANNELS, audio.size)
                clip_index += 1
                last_label = label
        finally:
            if ahead is not None:
                ahead.task.cancel()

    def _take(self, segment: _Segment, frames: int) -> tuple[list[np.ndarray], list[AudioFeatures | None]]:
        """The audio of the next ``frames`` frames of ``segment``, one chunk per frame, and their features
        (with the viseme due at each frame's middle, when the segment came with phoneme timing)."""
        first, fps = segment.frames_done, self._opts.fps
        chunks = [segment.take(self._frame_samples(first + i)) for i in range(frames)]
        features: list[AudioFeatures | None] = [
            self._features(c, segment.visemes.at((first + i + 0.5) / fps)) for i, c in enumerate(chunks)
        ]
        segment.frames_done += frames
        return chunks, features

    async def _start_ahead(self, segment: _Segment | None, size: int) -> _InFlight | None:
        """Start rendering the next speaking clip of ``segment`` if its audio is all queued (a full clip, or the
        rest of an ended segment); returns once the render has been handed to its thread."""
        ready = self._frames_ready(segment, size) if segment is not None else 0
        if segment is None or not ready or (ready < size and not segment.ended):
            return None
        generation = self._generation
        chunks, features = self._take(segment, ready)
        loop = asyncio.get_running_loop()
        handed = loop.create_future()

        def render() -> Clip:
            loop.call_soon_threadsafe(lambda: handed.done() or handed.set_result(None))
            return self._engine.render_clip(features, Label.SPEAKING)

        task = asyncio.create_task(asyncio.to_thread(render))
        await handed
        return _InFlight(task=task, chunks=chunks, generation=generation)

    def _frames_ready(self, segment: _Segment, limit: int) -> int:
        """Complete frames of audio queued in ``segment``, up to ``limit`` (a
        partial last frame counts once the segment has ended)."""
        queued, n = segment.queued, 0
        while n < limit and queued > 0:
            need = self._frame_samples(segment.frames_done + n)
            if queued < need and not segment.ended:
                break
            queued -= need
            n += 1
        return n

    async def _wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` s; True if woken early by new audio or a state change."""
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def _render(self, features: list[AudioFeatures | None], label: Label) -> Clip:
        if len(features) <= _INLINE_FRAMES:
            return self._engine.render_clip(features, label)
        start = time.perf_counter()
        clip = await asyncio.to_thread(self._engine.render_clip, features, label)
        if (elapsed := time.perf_counter() - start) > _SLOW_CLIP_S:
            logger.warning("avatar clip of %d frames took %.0f ms", len(features), elapsed * 1000)
        return clip

