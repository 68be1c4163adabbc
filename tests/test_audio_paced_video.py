"""AudioPacedVideo: a video frame is shown when the audio pushed before it has played, whatever happened before."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import pytest
from livekit import rtc

from facetalk.agent.audio_paced_video import AudioPacedVideo

RATE = 16000
MARGIN_S = 0.5  # a busy machine may show a frame late, never early
INTERVAL_S = 0.02


class QueueClock:
    """The part of ``rtc.AudioSource`` the pacer reads: audio queued plays out in real time."""

    def __init__(self) -> None:
        self.ends_at = 0.0
        self.cleared = 0

    @property
    def queued_duration(self) -> float:
        return max(0.0, self.ends_at - time.monotonic())

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        self.ends_at = max(self.ends_at, time.monotonic()) + frame.duration

    def clear_queue(self) -> None:
        self.ends_at, self.cleared = 0.0, self.cleared + 1


class ShownAt:
    def __init__(self) -> None:
        self.shown: list[tuple[float, int]] = []

    def capture_frame(self, frame: rtc.VideoFrame) -> None:
        self.shown.append((time.monotonic(), frame.data[0]))


def video(tag: int) -> rtc.VideoFrame:
    return rtc.VideoFrame(2, 2, rtc.VideoBufferType.RGB24, bytes([tag] * 12))


def audio(seconds: float) -> rtc.AudioFrame:
    n = int(RATE * seconds)
    return rtc.AudioFrame(np.zeros(n, np.int16).tobytes(), RATE, 1, n)


async def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@dataclass
class Paced:
    pacer: AudioPacedVideo
    clock: QueueClock
    screen: ShownAt


@pytest.fixture
async def paced() -> AsyncIterator[Paced]:
    clock, screen = QueueClock(), ShownAt()
    pacer = AudioPacedVideo(clock, screen, min_interval_s=INTERVAL_S)
    yield Paced(pacer, clock, screen)
    await pacer.aclose()


async def test_a_frame_waits_for_the_audio_queued_before_it(paced: Paced) -> None:
    pacer, screen = paced.pacer, paced.screen
    await pacer.push(audio(0.3))
    pushed = time.monotonic()
    await pacer.push(video(1))
    await wait_for(lambda: screen.shown)
    shown, tag = screen.shown[0]
    assert tag == 1
    assert 0.3 - 0.02 <= shown - pushed <= 0.3 + MARGIN_S


async def test_with_no_audio_queued_frames_are_shown_at_once_and_in_order(paced: Paced) -> None:
    pacer, screen = paced.pacer, paced.screen
    pushed = time.monotonic()
    for tag in (1, 2, 3):
        await pacer.push(video(tag))
    await wait_for(lambda: len(screen.shown) == 3)
    assert [tag for _, tag in screen.shown] == [1, 2, 3]
    assert screen.shown[-1][0] - pushed <= MARGIN_S


async def test_frames_pushed_back_to_back_go_out_spaced(paced: Paced) -> None:
    """After a stall the generator catches up in a burst; WebRTC's encoder would keep only the last of it."""
    pacer, screen = paced.pacer, paced.screen
    for tag in range(1, 7):
        await pacer.push(video(tag))
    await wait_for(lambda: len(screen.shown) == 6)
    times = np.array([t for t, _ in screen.shown])
    assert [tag for _, tag in screen.shown] == [1, 2, 3, 4, 5, 6]
    assert np.diff(times).min() >= INTERVAL_S - 0.002


async def test_the_lag_does_not_depend_on_what_came_before(paced: Paced) -> None:
    """The drift AVSynchronizer had: after a stall, video went out ahead of its audio."""
    pacer, screen = paced.pacer, paced.screen
    lags = []
    for tag, stall in ((1, 0.0), (2, 0.4), (3, 0.0)):
        await asyncio.sleep(stall)  # the generator stalled: nothing pushed meanwhile
        await pacer.push(audio(0.1))
        pushed = time.monotonic()
        await pacer.push(video(tag))
        await wait_for(lambda tag=tag: any(t == tag for _, t in screen.shown))
        lags.append(screen.shown[-1][0] - pushed)
    assert all(0.08 <= lag <= 0.1 + MARGIN_S for lag in lags), lags


async def test_clear_drops_the_frames_waiting_and_the_audio(paced: Paced) -> None:
    pacer, clock, screen = paced.pacer, paced.clock, paced.screen
    await pacer.push(audio(0.3))
    await pacer.push(video(1))
    await pacer.push(video(2))
    pacer.clear()
    await pacer.push(video(3))
    await wait_for(lambda: screen.shown)
    await asyncio.sleep(0.4)  # past the cleared frames' due time
    assert [tag for _, tag in screen.shown] == [3]
    assert clock.cleared == 1
