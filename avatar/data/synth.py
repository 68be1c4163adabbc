"""``facetalk data synth``: a dataset rendered by the CPU engine, offline and seeded.

Each video is a random label timeline: speaking segments carry one to three
sentences spoken by piper (from :data:`SENTENCES`), listening (1-4 s) and idle
(2-6 s) segments carry silence. The CPU engine renders it at 384² (512² for
larger datasets) exactly as ``facetalk render`` does (the mouth follows the
audio only under speaking), and the frames then go through the same tracking,
alignment and cropping as recorded videos (:mod:`.convert`), so synthetic and
real datasets look alike to a trainer.

Video ``i`` depends only on ``(seed, i)``: equal seeds give equal datasets,
and an interrupted run keeps its finished videos.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...config import PersonaConfig
from ...errors import FaceTalkError
from ..audio import SAMPLE_RATE, AudioFeatures
from ..engine import CpuEngine
from ..labels import Label
from ..landmarks import FaceLandmarker
from ..persona import PersonaPack, prepare_persona
from .convert import assemble, audio_features, fit_audio, resample
from .format import (
    LABELS, VideoRecord, finished_videos, folder_bytes, read_manifest, samples_per_frame, write_manifest, write_video,
)
from .tracking import track_faces

__all__ = ["SENTENCES", "Segment", "SynthResult", "random_timeline", "synth_dataset"]

SENTENCES = (
    "Hello there, it's good to see you again.",
    "From the station, the oceans look impossibly blue.",
    "Sunrise comes every ninety minutes in orbit.",
    "Could you tell me a little more about that?",
    "I think that's a wonderful idea.",
    "Well, it depends on how you look at it.",
    "The experiment took almost three weeks to finish.",
    "Floating in zero gravity feels strange at first.",
    "We ate dinner together every evening.",
    "Really? I had no idea!",
    "Let me think about that for a moment.",
    "The launch was loud, and the shaking was intense.",
    "My favourite view was the aurora over Canada.",
    "Water forms perfect spheres when nothing holds it.",
    "Yes, absolutely.",
    "Sleeping bags are strapped to the wall.",
    "Exercise keeps your bones and muscles strong up there.",
    "What would you like to know about life in orbit?",
    "Honestly, I miss the smell of rain.",
    "Mission control checks everything twice.",
    "Oh, that's a great question.",
    "The stars don't twinkle above the atmosphere.",
    "It took years of training before my first flight.",
    "Seven people can live on the station at once.",
    "Hmm, I'm not quite sure about that.",
    "Thank you so much for asking.",
    "Coming home, gravity felt incredibly heavy.",
    "Bright city lights trace the coastlines at night.",
    "Fresh fruit was the best delivery of all.",
    "Goodbye for now, and keep looking up!",
)
"""Varied lengths, questions, exclamations and fillers, so the mouth sees varied speech."""

_NEXT = {  # transition weights of the label timeline: (speaking, listening, idle)
    Label.SPEAKING: (0.2, 0.6, 0.2),
    Label.LISTENING: (0.7, 0.0, 0.3),
    Label.IDLE: (0.6, 0.4, 0.0),
}
_SILENCE_S = {Label.LISTENING: (1.0, 4.0), Label.IDLE: (2.0, 6.0)}


@dataclass
class Segment:
    """A stretch of one label; ``audio`` is int16 mono 24 kHz (speech, or zeros)."""

    label: Label
    audio: np.ndarray


@dataclass
class SynthResult:
    """What ``synth_dataset`` wrote.

    Attributes:
        root: the dataset folder.
        videos: records of all its videos.
        rendered: how many videos this run rendered (the others were already done).
        seconds: total content, seconds.
        wall_s: wall-clock time of this run.
        bytes: size of the dataset folder.
    """

    root: Path
    videos: list[VideoRecord]
    rendered: int
    seconds: float
    wall_s: float
    bytes: int


def _piper() -> Callable[[str], np.ndarray]:
    """``say(text)``: piper speech at 24 kHz, memoised per text for this run."""
    from ..speech import speak

    said: dict[str, np.ndarray] = {}

    def say(text: str) -> np.ndarray:
        if text not in said:
            speech = speak(text)
            said[text] = resample(speech.samples, speech.sample_rate)
        return said[text]

    return say


def random_timeline(rng: np.random.Generator, seconds: float, say: Callable[[str], np.ndarray]) -> list[Segment]:
    """Segments totalling at least ``seconds``: speech from ``say`` for speaking, silence otherwise."""
    segments: list[Segment] = []
    label = LABELS[int(rng.integers(len(LABELS)))]
    total = 0.0
    while total < seconds:
        if label == Label.SPEAKING:
            picks = rng.choice(len(SENTENCES), size=int(rng.integers(1, 4)), replace=False)
            audio = say(" ".join(SENTENCES[i] for i in picks))
        else:
            audio = np.zeros(int(rng.uniform(*_SILENCE_S[label]) * SAMPLE_RATE), np.int16)
        segments.append(Segment(label, audio))
        total += audio.size / SAMPLE_RATE
        label = LABELS[int(rng.choice(len(LABELS), p=_NEXT[label]))]
    return segments


def _frames(pack: PersonaPack, persona: PersonaConfig, labels: np.ndarray, features: np.ndarray, *, fps: int,
            seed: int) -> Iterator[np.ndarray]:
    """Render the video with a fresh engine (same seed, so every pass gives the same frames)."""
    engine = CpuEngine(pack, fps=fps, seed=seed, expression=persona.expression)
    for code, row in zip(labels, features, strict=True):
        label = LABELS[code]
        feature = AudioFeatures(*map(float, row)) if label == Label.SPEAKING else None
        yield engine.render_clip([feature], label).frames[0]


def synth_dataset(
    persona: PersonaConfig,
    out: Path,
    *,
    minutes: float,
    resolution: int = 128,
    seed: int = 0,
    fps: int = 25,
    video_seconds: float = 30.0,
    quality: int = 95,
    on_video: Callable[[VideoRecord], None] | None = None,
) -> SynthResult:
    """Render ``minutes`` of synthetic talking-face data into the dataset folder ``out``.

    Args:
        persona: the persona (its portrait and expression).
        out: dataset folder; created, or resumed if it holds the same settings.
        minutes: total content, split into videos of about ``video_seconds``.
        resolution: crop side in pixels (128 for the ``tiny`` config, 512 for base).
        seed: the seed of timelines, sentences and motion.
        fps: frame rate; must divide 24000.
        video_seconds: target length of one video.
        quality: JPEG quality of the stored crops.
        on_video: called after each video is written (progress).

    Raises:
        FaceTalkError: bad arguments, or ``out`` holds a dataset made with other settings.
    """
    # 1. Check the arguments and any earlier run in ``out``.
    started = time.perf_counter()
    if minutes <= 0 or video_seconds <= 0 or not 32 <= resolution <= 1024:
        raise FaceTalkError(f"cannot synthesise {minutes} min in {video_seconds} s videos at {resolution}px",
                            hint="pass --minutes and --video-seconds > 0, and a --resolution of 32-1024 (128 or 512)")
    spf = samples_per_frame(fps)
    settings = {"persona": str(persona.portrait), "minutes": minutes, "resolution": resolution, "seed": seed,
                "fps": fps, "video_seconds": video_seconds, "quality": quality}
    if (out / "manifest.json").is_file() and read_manifest(out)["settings"] != settings:
        raise FaceTalkError(f"{out} holds a dataset made with other settings",
                            hint="pass a new --out folder, or the same settings to resume it")
    out.mkdir(parents=True, exist_ok=True)
    done = {v.id: v for v in finished_videos(out)}
    # 2. Render the persona at a resolution the tracker resolves well.
    render_size = 384 if resolution <= 384 else 512
    pack = prepare_persona(persona.portrait, resolution=render_size)
    landmarker = FaceLandmarker.load()
    say = _piper()
    count = max(1, math.ceil(minutes * 60 / video_seconds))
    frames_each = round(minutes * 60 * fps / count)
    records: list[VideoRecord] = []
    rendered = 0
    for index in range(count):
        video_id = f"synth-{index:04d}"
        if video_id in done:
            records.append(done[video_id])
            continue
        # 3. A timeline, its audio, labels and features.
        video_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
        segments = random_timeline(np.random.default_rng(video_seed), frames_each / fps, say)
        audio = fit_audio(np.concatenate([s.audio for s in segments]), frames_each, fps)
        labels = np.concatenate([np.full(s.audio.size, LABELS.index(s.label), np.uint8) for s in segments])
        labels = labels[spf // 2::spf][:frames_each]  # the label at each frame's centre
        features = audio_features(audio, fps)

        # 4. Render, track, crop and write.
        def frames(labels: np.ndarray = labels, features: np.ndarray = features,
                   video_seed: int = video_seed) -> Iterator[np.ndarray]:
            return _frames(pack, persona, labels, features, fps=fps, seed=video_seed)

        track = track_faces(frames(), landmarker, size=resolution, fps=fps)
        if not track.valid.any():
            raise FaceTalkError(f"no face found in the frames rendered from {persona.portrait}",
                                hint="check the persona with 'facetalk persona prepare'")
        arrays = assemble(frames, track, audio, labels, fps=fps, size=resolution, quality=quality)
        record = write_video(out, video_id, f"synth:{seed}:{index}", arrays, fps=fps,
                             source_size=track.source_size)
        records.append(record)
        rendered += 1
        write_manifest(out, kind="synth", resolution=resolution, fps=fps, jpeg_quality=quality,
                       videos=records, settings=settings)
        if on_video is not None:
            on_video(record)
    write_manifest(out, kind="synth", resolution=resolution, fps=fps, jpeg_quality=quality, videos=records,
                   settings=settings)
    return SynthResult(root=out, videos=records, rendered=rendered, seconds=sum(v.seconds for v in records),
                       wall_s=time.perf_counter() - started, bytes=folder_bytes(out))
