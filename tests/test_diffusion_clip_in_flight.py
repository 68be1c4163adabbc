"""One clip in flight ahead in the streaming runtime: the next clip is requested before this one's frames are
consumed, and an interruption discards the clip in flight."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd

from facetalk.avatar import SAMPLE_RATE, AvatarVideoGenerator, Clip, FrameInfo, Label
from facetalk.avatar.audio import AudioFeatures
from facetalk.config import Expression

FPS = 25
WAIT_S = 10.0  # bounded waits on the engine's thread: a margin, never the thing measured


class GatedEngine:
    """A FrameEngine recording each request as it enters; requests from ``hold_from`` on wait for ``release``."""

    width = height = 8

    def __init__(self, hold_from: int = 10**6) -> None:
        self.entered: list[threading.Event] = [threading.Event() for _ in range(64)]
        self.calls: list[tuple[int, Label]] = []
        self.release = threading.Event()
        self.hold_from = hold_from
        self.rendering = False
        self.resets: list[tuple[int, bool]] = []  # (len(calls), whether a render was running) at each reset

    def render_clip(self, features: Sequence[AudioFeatures | None], label: Label) -> Clip:
        n = len(self.calls)
        self.calls.append((len(features), label))
        self.rendering = True
        self.entered[n].set()
        if n >= self.hold_from:
            assert self.release.wait(WAIT_S)
        self.rendering = False
        return Clip(frames=[np.full((8, 8, 3), n, np.uint8) for _ in features])

    def set_expression(self, expression: Expression) -> None:
        pass

    def reset(self) -> None:
        self.resets.append((len(self.calls), self.rendering))


async def _push_speech(gen: AvatarVideoGenerator, seconds: float) -> None:
    samples = (6000 * np.sin(2 * np.pi * 200 * np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE)).astype(np.int16)
    await gen.push_audio(rtc.AudioFrame(samples.tobytes(), SAMPLE_RATE, 1, samples.size))
    await gen.push_audio(AudioSegmentEnd())


async def test_next_clip_is_requested_before_this_clips_frames_are_consumed() -> None:
    """With the whole segment queued, each speaking clip's successor has entered the engine before the
    consumer takes the clip's first frame (if it had not, the consumer's wait would time out)."""
    engine, infos = GatedEngine(), []
    gen = AvatarVideoGenerator(engine, fps=FPS, max_clip_frames=8, on_frame=infos.append)
    await _push_speech(gen, 1.2)  # 30 frames: clips of 1, 2, 4, 8, 8, 7
    seen: set[int] = set()
    async for item in gen:
        if isinstance(item, AudioSegmentEnd):
            break
        if isinstance(item, rtc.VideoFrame) and infos[-1].clip not in seen:
            clip = infos[-1].clip
            seen.add(clip)
            if clip < 5:  # every clip but the last has a successor
                assert await asyncio.to_thread(engine.entered[clip + 1].wait, WAIT_S), f"clip {clip + 1} not requested"
    await gen.aclose()
    assert [n for n, _ in engine.calls] == [1, 2, 4, 8, 8, 7]
    assert sum(1 for i in infos if i.label == Label.SPEAKING) == 30


async def test_an_interruption_discards_the_clip_in_flight() -> None:
    """clear_buffer while clip 1 is in flight: its render is awaited but none of its frames is yielded, and the
    next frame is a listening frame."""
    engine, infos = GatedEngine(hold_from=1), []
    gen = AvatarVideoGenerator(engine, fps=FPS, max_clip_frames=8, on_frame=infos.append)
    await _push_speech(gen, 1.2)
    stream = gen.__aiter__()
    first = await asyncio.wait_for(stream.__anext__(), WAIT_S)
    assert isinstance(first, rtc.VideoFrame) and infos[-1].clip == 0
    assert await asyncio.to_thread(engine.entered[1].wait, WAIT_S)  # clip 1 (2 frames) is in flight, held
    gen.clear_buffer()
    engine.release.set()
    frames: list[FrameInfo] = []
    while len(frames) < 3:
        item = await asyncio.wait_for(stream.__anext__(), WAIT_S)
        if isinstance(item, rtc.VideoFrame):
            frames.append(infos[-1])
            assert item.data[0] != 1, "a frame of the discarded clip was yielded"
    await gen.aclose()
    assert [f.label for f in frames] == [Label.LISTENING] * 3
    assert engine.calls[1] == (2, Label.SPEAKING)


async def test_the_engine_is_reset_after_the_clip_in_flight_not_during_it() -> None:
    """clear_buffer while clip 1 renders on its thread: the engine's reset waits for that render to end and
    comes before the next clip (resetting mid-render would let the discarded clip write state after it)."""
    engine, infos = GatedEngine(hold_from=1), []
    gen = AvatarVideoGenerator(engine, fps=FPS, max_clip_frames=8, on_frame=infos.append)
    await _push_speech(gen, 1.2)
    stream = gen.__aiter__()
    await asyncio.wait_for(stream.__anext__(), WAIT_S)
    assert await asyncio.to_thread(engine.entered[1].wait, WAIT_S)  # clip 1 is in flight, held
    gen.clear_buffer()

    async def read_past_the_next_clip() -> None:
        while len(engine.calls) < 3:
            await stream.__anext__()

    reader = asyncio.create_task(read_past_the_next_clip())
    await asyncio.sleep(0.1)  # the stream runs meanwhile: it must not reset under the running render
    assert engine.resets == []
    engine.release.set()
    await asyncio.wait_for(reader, WAIT_S)
    await gen.aclose()
    assert engine.resets == [(2, False)]
    assert engine.calls[2][1] == Label.LISTENING
