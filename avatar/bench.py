"""``facetalk bench avatar``: speed, first-frame latency, memory, lip sync, visemes and clip continuity.

``bench_avatar`` measures what the issue's targets name, driving the real
streaming runtime with piper speech (not synthetic tones); the measures are
:mod:`.measures`'. The long run for memory and drift is :mod:`.soak`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import cv2
import numpy as np
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd

from ..config import Expression
from .audio import SAMPLE_RATE, FeatureExtractor, MonoResampler
from .bench_support import one_thread, peak_rss_mb, tts_frames
from .engine import CpuEngine
from .labels import Label
from .landmarks import FaceLandmarker, MeshIndex
from .measures import MouthBox, best_lag_correlation, bilabial_closure, boundary_step_ratio, rounding_ratio, track_lips
from .persona import PersonaPack
from .phonemes import PhonemeSpan
from .runtime import AvatarVideoGenerator, FrameInfo
from .speech import Speech
from .visemes import SegmentVisemes

__all__ = ["BenchResult", "MouthFigures", "bench_avatar"]

_MAX_LAG = 5  # frames either way searched for the lip-sync lag


@dataclass
class MouthFigures:
    """How well the mouth says the words, from the streamed frames of one mode.

    Attributes:
        fps: frames generated per second of CPU time (motion + render), one thread.
        bilabial_closure: share of p/b/m phonemes whose inner-lip gap (face mesh
            on the frame at the phoneme's middle) is <= 15 % of the speaking
            95th-percentile gap.
        rounding_ratio: median mouth width (face mesh) on rounded vowels ÷ on spread vowels.
        lipsync_corr: Pearson correlation of mouth openness (dark pixels
            between the lips) with the audio envelope (dB), at the best lag.
        lipsync_lag_ms: lag of the mouth behind the audio at that correlation.
        boundary_step_ratio: 95th percentile of the landmark step into frames
            that start a clip ÷ the 95th percentile elsewhere (1.0: boundaries
            look like any other frame).
    """

    fps: float
    bilabial_closure: float | None
    rounding_ratio: float | None
    lipsync_corr: float
    lipsync_lag_ms: float
    boundary_step_ratio: float


@dataclass
class BenchResult:
    """One benchmark run (the JSON ``facetalk bench avatar --json`` prints).

    Attributes:
        engine: engine name.
        resolution: frame side in pixels.
        first_frame_ms: first audio chunk pushed → first speaking frame yielded (median of 5).
        rss_mb: peak resident memory of the process, MB.
        phoneme_timed: the mouth with piper's phoneme timing carried with the
            audio, as the agent sends it.
        audio_only: the same audio without timing (any other TTS): the mouth
            follows loudness and brightness.
    """

    engine: str
    resolution: int
    first_frame_ms: float
    rss_mb: float
    phoneme_timed: MouthFigures
    audio_only: MouthFigures


def _face_box(pack: PersonaPack) -> tuple[slice, slice]:
    """The face with room for the head's motion: what the face mesh is run on."""
    oval = pack.points[list(MeshIndex.FACE_OVAL)]
    (x0, y0), (x1, y1) = oval.min(0), oval.max(0)
    pad = 0.3 * (x1 - x0)
    size = pack.resolution
    return (slice(max(0, int(y0 - pad)), min(size, int(y1 + pad))),
            slice(max(0, int(x0 - pad)), min(size, int(x1 + pad))))


class _Probe:
    """Reads a generator's stream, keeping each speech segment's frames as it plays."""

    def __init__(self, pack: PersonaPack) -> None:
        self.gen: AvatarVideoGenerator | None = None
        self.infos: list[FrameInfo] = []
        self._mouth = MouthBox.for_pack(pack)
        self._face = _face_box(pack)
        self.darkness: list[float] = []
        self.faces: list[np.ndarray] = []
        self._first: list[float] = []
        self._ended = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    def attach(self, gen: AvatarVideoGenerator) -> None:
        """Measure ``gen``, built with ``on_frame=self.on_frame``."""
        self.gen = gen

    def on_frame(self, info: FrameInfo) -> None:
        self.infos.append(info)

    async def _consume(self) -> None:
        assert self.gen is not None
        async for item in self.gen:
            if isinstance(item, rtc.VideoFrame) and self.infos[-1].label == Label.SPEAKING:
                if not self._first:
                    self._first.append(self.infos[-1].created)
                image = np.frombuffer(item.data, np.uint8).reshape(item.height, item.width, 3)
                self.darkness.append(self._mouth.darkness(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)))
                self.faces.append(image[self._face].copy())
            elif isinstance(item, AudioSegmentEnd):
                self._ended.set()

    async def speak(self, speech: Speech, *, timed: bool = False) -> float:
        """Push one segment and wait until it has played; returns the first-frame latency in ms."""
        assert self.gen is not None
        if self._reader is None:
            self._reader = asyncio.create_task(self._consume())
            await asyncio.sleep(0.05)  # the stream is up and yielding listening frames
        self.darkness, self.faces, self._first = [], [], []
        self._ended.clear()
        pushed = time.perf_counter()
        for frame in tts_frames(speech, timed=timed):
            await self.gen.push_audio(frame)
            await asyncio.sleep(0)  # like a TTS stream: other tasks run between chunks
        await self.gen.push_audio(AudioSegmentEnd())
        await asyncio.wait_for(self._ended.wait(), timeout=60)
        return (self._first[0] - pushed) * 1000

    async def aclose(self) -> None:
        assert self.gen is not None
        await self.gen.aclose()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout=5)


def _looped(speech: Speech, seconds: float) -> Speech:
    """``speech`` repeated to ``seconds`` (its phonemes too), cut there."""
    repeats = int(np.ceil(seconds / speech.duration))
    n = int(seconds * speech.sample_rate)
    phonemes = [PhonemeSpan(p.phoneme, p.start + r * speech.duration, p.end + r * speech.duration)
                for r in range(repeats) for p in speech.phonemes]
    return Speech(np.tile(speech.samples, repeats)[:n], speech.sample_rate,
                  [p for p in phonemes if p.end <= seconds])


def _render_fps(pack: PersonaPack, speech: Speech, fps: int, expression: Expression | None, *, timed: bool) -> float:
    """Motion + render of every frame of ``speech``, one thread, frames per CPU second."""
    engine = CpuEngine(pack, fps=fps, expression=expression)
    resampler, features = MonoResampler(), FeatureExtractor()
    mono = np.concatenate([resampler.push(f) for f in tts_frames(speech)] + [resampler.flush()])
    visemes = SegmentVisemes()
    visemes.add(speech.phonemes if timed else None)
    per_frame = SAMPLE_RATE // fps
    feats = [features(mono[i:i + per_frame], visemes.at((i / per_frame + 0.5) / fps))
             for i in range(0, mono.size - per_frame + 1, per_frame)]
    with one_thread():
        engine.render_clip(feats[:8], Label.SPEAKING)  # warm caches
        cpu = time.process_time()
        for i in range(0, len(feats), 8):
            engine.render_clip(feats[i:i + 8], Label.SPEAKING)
        return len(feats) / (time.process_time() - cpu)


def bench_avatar(pack: PersonaPack, speech: Speech, *, seconds: float = 20.0, fps: int = 25,
                 expression: Expression | None = None) -> BenchResult:
    """Measure the CPU engine on ``seconds`` of ``speech`` (looped if shorter),
    with its phoneme timing and without."""
    speech = _looped(speech, seconds)
    landmarker = FaceLandmarker.load()

    async def stream(timed: bool) -> tuple[list[float], _Probe, list[FrameInfo]]:
        probe = _Probe(pack)
        probe.attach(AvatarVideoGenerator(CpuEngine(pack, fps=fps, expression=expression), fps=fps,
                                          expression=expression, on_frame=probe.on_frame))
        latencies = []
        if timed:
            short = Speech(speech.samples[: int(1.0 * speech.sample_rate)], speech.sample_rate)
            latencies = [await probe.speak(short) for _ in range(5)]
        start = len(probe.infos)
        await probe.speak(speech, timed=timed)
        speaking = [i for i in probe.infos[start:] if i.label == Label.SPEAKING]
        await probe.aclose()
        return latencies, probe, speaking

    def figures(timed: bool) -> tuple[MouthFigures, list[float]]:
        render_fps = _render_fps(pack, speech, fps, expression, timed=timed)
        with one_thread():
            latencies, probe, speaking = asyncio.run(stream(timed))
        envelope = np.array([20 * np.log10(np.sqrt(np.mean((i.audio / 32768.0) ** 2)) + 1e-4) for i in speaking])
        corr, lag = best_lag_correlation(np.array(probe.darkness), envelope, range(-_MAX_LAG, _MAX_LAG + 1))
        lips = track_lips(probe.faces, landmarker)
        times = (np.arange(len(speaking)) + 0.5) / fps  # each frame's middle, in the segment
        boundary = np.array([i > 0 and a.clip != speaking[i - 1].clip for i, a in enumerate(speaking)])
        closure = bilabial_closure(lips, times, speech.phonemes)
        rounding = rounding_ratio(lips, times, speech.phonemes)
        return MouthFigures(
            fps=round(render_fps, 1),
            bilabial_closure=None if closure is None else round(closure, 3),
            rounding_ratio=None if rounding is None else round(rounding, 3),
            lipsync_corr=round(corr, 3), lipsync_lag_ms=round(lag * 1000 / fps, 1),
            boundary_step_ratio=round(boundary_step_ratio(lips, boundary), 3),
        ), latencies

    timed, latencies = figures(timed=True)
    audio_only, _ = figures(timed=False)
    return BenchResult(engine="cpu", resolution=pack.resolution,
                       first_frame_ms=round(float(np.median(latencies)), 2), rss_mb=round(peak_rss_mb(), 1),
                       phoneme_timed=timed, audio_only=audio_only)
