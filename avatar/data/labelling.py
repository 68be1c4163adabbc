"""Speaking / listening / idle labels for a recorded video, from voice activity.

The rule, applied to the video's own audio track:

1. webrtcvad (aggressiveness 2) judges 30 ms windows at 16 kHz, as the agent's
   VAD does;
2. speech starts after ``min_speech_s`` (0.09 s) of consecutive speech windows and
   ends after ``min_silence_s`` (0.3 s) of consecutive silence, so the pauses
   between words stay inside speech (the agent's defaults);
3. frames inside speech are **speaking**;
4. a silence *between two stretches of speech* shorter than ``listening_max_s``
   (2 s) is **listening** (a turn's pause, when the other party speaks briefly
   or the speaker waits); every other silence (before the first speech, after
   the last, or 2 s and longer) is **idle**.

A frame takes the label of the window under its centre. Another voice in the
audio counts as speech too: use videos whose audio is the subject's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio import SAMPLE_RATE
from ..labels import Label
from .convert import resample
from .format import LABELS

__all__ = ["VadLabelRule", "speech_labels"]

_VAD_RATE = 16000
_WINDOW = _VAD_RATE * 30 // 1000  # 480 samples, 30 ms
_SPEAKING, _LISTENING, _IDLE = (LABELS.index(label) for label in (Label.SPEAKING, Label.LISTENING, Label.IDLE))


@dataclass(frozen=True, kw_only=True)
class VadLabelRule:
    """The thresholds of the labelling rule (seconds); defaults as in the module docstring."""

    aggressiveness: int = 2
    min_speech_s: float = 0.09
    min_silence_s: float = 0.3
    listening_max_s: float = 2.0


def _runs(flags: np.ndarray) -> list[tuple[bool, int, int]]:
    """``(value, start, stop)`` for each run of equal values."""
    edges = np.flatnonzero(np.diff(flags.astype(np.int8))) + 1
    bounds = np.concatenate([[0], edges, [flags.size]])
    return [(bool(flags[a]), int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _speech_windows(audio: np.ndarray, rule: VadLabelRule) -> np.ndarray:
    """bool per 30 ms window: inside speech, after the start/end hysteresis."""
    import webrtcvad

    pcm = resample(audio, SAMPLE_RATE, _VAD_RATE)
    count = pcm.size // _WINDOW
    detector = webrtcvad.Vad(rule.aggressiveness)
    raw = np.array([detector.is_speech(pcm[i * _WINDOW:(i + 1) * _WINDOW].tobytes(), _VAD_RATE)
                    for i in range(count)], bool)
    window_s = _WINDOW / _VAD_RATE
    speech = raw.copy()
    for value, start, stop in _runs(raw) if raw.size else []:
        length = (stop - start) * window_s
        if value and length < rule.min_speech_s:
            speech[start:stop] = False  # a click or a cough
        if not value and 0 < start and stop < raw.size and length < rule.min_silence_s:
            speech[start:stop] = True  # a pause between words
    return speech


def speech_labels(audio: np.ndarray, *, fps: int, frames: int, rule: VadLabelRule | None = None) -> np.ndarray:
    """uint8 ``(frames,)`` label codes (see :data:`~.format.LABELS`) of int16 mono 24 kHz ``audio``."""
    rule = rule or VadLabelRule()
    speech = _speech_windows(audio, rule)
    centres = ((np.arange(frames) + 0.5) / fps * _VAD_RATE / _WINDOW).astype(int)
    speaking = np.zeros(frames, bool)
    inside = centres < speech.size
    speaking[inside] = speech[centres[inside]]
    labels = np.full(frames, _IDLE, np.uint8)
    runs = _runs(speaking) if frames else []
    for i, (value, start, stop) in enumerate(runs):
        if value:
            labels[start:stop] = _SPEAKING
        elif 0 < i < len(runs) - 1 and (stop - start) / fps < rule.listening_max_s:
            labels[start:stop] = _LISTENING
    return labels
