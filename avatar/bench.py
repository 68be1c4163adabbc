"""Benchmarks of the avatar engine: speed, latency, memory, lip sync, visemes, continuity, drift.

``bench_avatar`` measures what the issue's targets name; ``soak`` runs the
streaming runtime over many minutes of content and reports memory and drift.
Both drive the real runtime with piper speech, not synthetic tones.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np
from livekit import rtc
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT
from livekit.agents.voice.avatar import AudioSegmentEnd

from ..config import Expression
from ..eval.mouth import MouthRegion, bilabial_closure, boundary_step_ratio, rounding_ratio, track_lips
from .audio import SAMPLE_RATE, FeatureExtractor, MonoResampler
from .engine import CpuEngine
from .labels import Label
from .landmarks import FaceLandmarker, MeshIndex
from .persona import PersonaPack
from .phonemes import PhonemeSpan, PhonemeTimedString
from .runtime import AvatarVideoGenerator, FrameInfo
from .speech import Speech
from .visemes import SegmentVisemes

__all__ = ["BenchResult", "MouthFigures", "SoakResult", "bench_avatar", "psnr_outside_head", "soak"]

_CHUNK_S = 0.01  # TTS audio arrives in 10 ms frames


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


@contextmanager
def _one_thread() -> Iterator[None]:
    """OpenCV on one thread for the duration of a measurement only."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _chunks(speech: Speech, *, timed: bool = False) -> Iterator[rtc.AudioFrame]:
    """10 ms frames of ``speech``; with ``timed``, the first carries its phoneme
    timing as our piper TTS attaches it."""
    n = int(speech.sample_rate * _CHUNK_S)
    for i in range(0, speech.samples.size, n):
        part = speech.samples[i:i + n]
        frame = rtc.AudioFrame(part.tobytes(), speech.sample_rate, 1, part.size)
        if timed and i == 0 and speech.phonemes:
            frame.userdata[USERDATA_TIMED_TRANSCRIPT] = [
                PhonemeTimedString("", speech.phonemes, start_time=0.0, end_time=speech.duration)]
        yield frame


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
        self._mouth = MouthRegion.for_pack(pack)
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
        for frame in _chunks(speech, timed=timed):
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


def _lag_corr(mouth: np.ndarray, envelope: np.ndarray, max_lag: int = 5) -> tuple[float, int]:
    """Best Pearson correlation over lags of the mouth behind the envelope, in frames."""
    best = (-1.0, 0)
    for lag in range(-max_lag, max_lag + 1):
        a = mouth[max(0, lag):mouth.size + min(0, lag)]
        b = envelope[max(0, -lag):envelope.size - max(0, lag)]
        corr = float(np.corrcoef(a, b)[0, 1])
        if corr > best[0]:
            best = (corr, lag)
    return best


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
    mono = np.concatenate([resampler.push(f) for f in _chunks(speech)] + [resampler.flush()])
    visemes = SegmentVisemes()
    visemes.add(speech.phonemes if timed else None)
    per_frame = SAMPLE_RATE // fps
    feats = [features(mono[i:i + per_frame], visemes.at((i / per_frame + 0.5) / fps))
             for i in range(0, mono.size - per_frame + 1, per_frame)]
    with _one_thread():
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
        with _one_thread():
            latencies, probe, speaking = asyncio.run(stream(timed))
        envelope = np.array([20 * np.log10(np.sqrt(np.mean((i.audio / 32768.0) ** 2)) + 1e-4) for i in speaking])
        corr, lag = _lag_corr(np.array(probe.darkness), envelope)
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
                       first_frame_ms=round(float(np.median(latencies)), 2), rss_mb=round(_peak_rss_mb(), 1),
                       phoneme_timed=timed, audio_only=audio_only)


def psnr_outside_head(frame: np.ndarray, pack: PersonaPack) -> float:
    """PSNR (dB) of ``frame`` against the reference over pixels the head mask never covers."""
    outside = pack.masks.head == 0
    err = np.mean((frame[outside].astype(np.float64) - pack.image[outside]) ** 2)
    return float("inf") if err == 0 else float(10 * np.log10(255.0**2 / err))


def _finite_or_none(value: float) -> float | None:
    return value if np.isfinite(value) else None


def soak(pack: PersonaPack, speech: Speech, *, minutes: float, fps: int = 25, seed: int = 0) -> SoakResult:
    """Stream ``minutes`` of content as fast as possible: speech segments back to
    back, every third one interrupted, labels switching; RSS sampled each minute."""

    async def run() -> tuple[int, list[float], np.ndarray]:
        gen = AvatarVideoGenerator(CpuEngine(pack, fps=fps, seed=seed), fps=fps)
        total = int(minutes * 60 * fps)
        frames, samples, last = 0, [_rss_mb()], pack.image
        segment_ended = asyncio.Event()

        async def consume() -> None:
            nonlocal frames, last
            async for item in gen:
                if isinstance(item, rtc.VideoFrame):
                    frames += 1
                    if frames % (60 * fps) == 0:
                        samples.append(_rss_mb())
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
            for i, frame in enumerate(_chunks(speech)):
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
    with _one_thread():
        frames, samples, last = asyncio.run(run())
    return SoakResult(minutes=minutes, frames=frames, rss_mb=[round(s, 1) for s in samples],
                      rss_growth_mb=round(samples[-1] - samples[0], 1),
                      psnr_outside_head_db=_finite_or_none(psnr_outside_head(last, pack)), wall_s=round(time.perf_counter() - start, 1))
