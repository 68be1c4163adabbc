"""``facetalk bench soak``: the streaming runtime over many minutes of content, for memory and drift.

Speech segments play back to back, every third one interrupted, labels
switching between them; resident memory is sampled after each minute of
content and the last frame's background is compared with the reference.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd

from .bench_support import one_thread, rss_mb, tts_frames
from .engine import CpuEngine
from .labels import Label
from .measures import finite_or_none, psnr
from .persona import PersonaPack
from .runtime import AvatarVideoGenerator
from .speech import Speech

__all__ = ["SoakResult", "psnr_outside_head", "soak"]


@dataclass
class SoakResult:
    """A long run of the streaming runtime.

    Attributes:
        minutes: content generated, in minutes of video.
        frames: video frames generated.
        rss_mb: resident memory sampled after each minute of content, MB.
        rss_growth_mb: last sample minus the first.
        psnr_outside_head_db: PSNR of the last frame against the reference,
            over the pixels outside the moving head; ``None`` when identical
            (an infinite PSNR, which JSON cannot carry).
        wall_s: how long it took.
    """

    minutes: float
    frames: int
    rss_mb: list[float]
    rss_growth_mb: float
    psnr_outside_head_db: float | None
    wall_s: float


def psnr_outside_head(frame: np.ndarray, pack: PersonaPack) -> float:
    """PSNR (dB) of ``frame`` against the reference over pixels the head mask never covers."""
    return psnr(frame, pack.image, where=pack.masks.head == 0)


def soak(pack: PersonaPack, speech: Speech, *, minutes: float, fps: int = 25, seed: int = 0) -> SoakResult:
    """Stream ``minutes`` of content as fast as possible: speech segments back to
    back, every third one interrupted, labels switching; RSS sampled each minute."""

    async def run() -> tuple[int, list[float], np.ndarray]:
        gen = AvatarVideoGenerator(CpuEngine(pack, fps=fps, seed=seed), fps=fps)
        total = int(minutes * 60 * fps)
        frames, samples, last = 0, [rss_mb()], pack.image
        segment_ended = asyncio.Event()

        async def consume() -> None:
            nonlocal frames, last
            async for item in gen:
                if isinstance(item, rtc.VideoFrame):
                    frames += 1
                    if frames % (60 * fps) == 0:
                        samples.append(rss_mb())
                    if frames >= total:
                        last = np.frombuffer(item.data, np.uint8).reshape(item.height, item.width, 3).copy()
                        return
                elif isinstance(item, AudioSegmentEnd):
                    segment_ended.set()

        reader = asyncio.create_task(consume())
        n = 0
        while not reader.done():
            n += 1
            gen.set_state([Label.LISTENING, Label.IDLE][n % 2])
            segment_ended.clear()
            for i, frame in enumerate(tts_frames(speech)):
                await gen.push_audio(frame)
                if i % 20 == 0:
                    await asyncio.sleep(0)
                if n % 3 == 0 and i == 150:
                    gen.clear_buffer()  # an interruption mid-sentence
                    break
            else:
                await gen.push_audio(AudioSegmentEnd())
                waiter = asyncio.create_task(segment_ended.wait())
                await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
        await reader
        await gen.aclose()
        return frames, samples, last

    start = time.perf_counter()
    with one_thread():
        frames, samples, last = asyncio.run(run())
    return SoakResult(minutes=minutes, frames=frames, rss_mb=[round(s, 1) for s in samples],
                      rss_growth_mb=round(samples[-1] - samples[0], 1),
                      psnr_outside_head_db=finite_or_none(psnr_outside_head(last, pack)),
                      wall_s=round(time.perf_counter() - start, 1))
