"""Phoneme timing carried with TTS audio, from the voice to the avatar's mouth.

livekit-agents already carries one kind of timing inside the audio: the
``TimedString`` transcripts a TTS attaches to its frames
(``frame.userdata[USERDATA_TIMED_TRANSCRIPT]``), which survive the TTS node,
the transcript synchroniser and the audio output untouched. FaceTalk rides on
that mechanism instead of inventing a side channel:

- our piper TTS attaches one :class:`PhonemeTimedString` per sentence: the
  sentence's text (so transcripts read exactly as before) plus piper's phoneme
  alignment;
- any other TTS that sends word-level ``TimedString`` s (``start_time`` and
  ``end_time`` given) gets rough phonemes spread over each word's letters;
- audio with neither falls back to the audio-driven mouth.

Times are seconds from the start of the TTS segment (livekit's convention for
``TimedString.start_time``), which is also the start of the avatar's segment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from livekit import rtc
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT, TimedString
from livekit.agents.utils import is_given

__all__ = [
    "PhonemeSpan",
    "PhonemeTimedString",
    "piper_spans",
    "spans_from_frame",
    "spans_from_json",
    "spans_to_json",
    "word_spans",
]


@dataclass(frozen=True)
class PhonemeSpan:
    """One phoneme and when it sounds.

    Attributes:
        phoneme: an espeak IPA symbol (piper's alphabet), e.g. ``"m"``, ``"uː"``.
        start: seconds from the start of the segment.
        end: seconds from the start of the segment (> ``start``).
    """

    phoneme: str
    start: float
    end: float

    @property
    def middle(self) -> float:
        return 0.5 * (self.start + self.end)


class PhonemeTimedString(TimedString):
    """A sentence's ``TimedString`` that also carries its phonemes.

    To livekit-agents it is an ordinary sentence-level transcript entry; the
    avatar reads :attr:`phonemes` from it.
    """

    phonemes: tuple[PhonemeSpan, ...]

    def __new__(cls, text: str, phonemes: Sequence[PhonemeSpan], *, start_time: float, end_time: float
                ) -> PhonemeTimedString:
        obj = super().__new__(cls, text, start_time=start_time, end_time=end_time)
        obj.phonemes = tuple(phonemes)
        return obj


_MODIFIERS = frozenset("ːˑ")  # lengthen the phoneme before them
_STRESS = frozenset("ˈˌ")  # piper times them, but they sound as the onset of the next phoneme
_WORD_GAP = " "  # the transition between two words: half to each side
_SILENT = frozenset("^$_")  # piper's sentence start, end and padding


def piper_spans(alignments: Iterable[tuple[str, int]], sample_rate: int, *, offset: float = 0.0) -> list[PhonemeSpan]:
    """Spans from piper's ``(phoneme, num_samples)`` alignment of one sentence.

    Length marks are merged into the phoneme before them and stress marks into
    the one after; the time piper gives a space between words goes half to
    each neighbour. Punctuation stays as a span of its own (a pause, which
    the mouth shows at rest) and piper's sentence markers are dropped.
    ``offset`` is where the sentence starts in the segment, seconds.
    """
    spans: list[PhonemeSpan] = []
    t = offset
    onset: float | None = None  # where the next phoneme starts, if earlier than t
    for phoneme, samples in alignments:
        duration = int(samples) / sample_rate
        end = t + duration
        if phoneme in _MODIFIERS and spans and spans[-1].end == t:
            spans[-1] = PhonemeSpan(spans[-1].phoneme + phoneme, spans[-1].start, end)
        elif phoneme in _STRESS:
            onset = t if onset is None else onset
        elif phoneme == _WORD_GAP and spans and spans[-1].end == t:
            spans[-1] = PhonemeSpan(spans[-1].phoneme, spans[-1].start, t + duration / 2)
            onset = t + duration / 2
        elif phoneme not in _SILENT and phoneme not in _MODIFIERS and duration > 0:
            spans.append(PhonemeSpan(phoneme, t if onset is None else onset, end))
            onset = None
        t = end
    return spans


# Letters → espeak-like symbols, for TTS that time words but not phonemes.
# Crude on purpose: it only has to find the lip closures and roundings.
_DIGRAPHS = {"th": "θ", "sh": "ʃ", "ch": "tʃ", "ph": "f", "oo": "uː", "ee": "iː", "ea": "iː", "ou": "aʊ", "ow": "oʊ",
             "ck": "k", "ng": "ŋ", "wh": "w", "qu": "kw"}
_LETTERS = {"a": "æ", "e": "ɛ", "i": "ɪ", "o": "ɑ", "u": "ʌ", "y": "ɪ", "c": "k", "q": "k", "x": "ks", "j": "dʒ", "r": "ɹ"}


def _letter_phonemes(word: str) -> list[str]:
    letters = re.sub(r"[^a-z]", "", word.lower())
    out, i = [], 0
    while i < len(letters):
        if letters[i:i + 2] in _DIGRAPHS:
            out.append(_DIGRAPHS[letters[i:i + 2]])
            i += 2
        elif i + 1 < len(letters) and letters[i] == letters[i + 1]:
            i += 1  # doubled consonant: one sound
        else:
            out.append(_LETTERS.get(letters[i], letters[i]))
            i += 1
    return out


def word_spans(word: TimedString) -> list[PhonemeSpan]:
    """Rough phonemes for a word-level ``TimedString``, spread evenly over its time."""
    phonemes = _letter_phonemes(str(word))
    if not phonemes or not (is_given(word.start_time) and is_given(word.end_time)):
        return []
    start, end = float(word.start_time), float(word.end_time)
    if end <= start:
        return []
    step = (end - start) / len(phonemes)
    return [PhonemeSpan(p, start + i * step, start + (i + 1) * step) for i, p in enumerate(phonemes)]


def spans_from_frame(frame: rtc.AudioFrame) -> list[PhonemeSpan] | None:
    """The phoneme timing an audio frame carries, or ``None`` if it carries no timing.

    An empty list means "timing given, no phonemes here" (e.g. a sentence-level
    TimedString without end time from livekit's own StreamAdapter).
    """
    texts = frame.userdata.get(USERDATA_TIMED_TRANSCRIPT) or []
    timed = [t for t in texts if isinstance(t, TimedString)]
    if not timed:
        return None
    spans: list[PhonemeSpan] = []
    for text in timed:
        spans.extend(text.phonemes if isinstance(text, PhonemeTimedString) else word_spans(text))
    return spans


def spans_to_json(spans: Iterable[PhonemeSpan]) -> list[list[str | float]]:
    """A compact JSON form: ``[[phoneme, start, end], ...]`` (ms precision)."""
    return [[s.phoneme, round(s.start, 4), round(s.end, 4)] for s in spans]


def spans_from_json(data: object) -> list[PhonemeSpan]:
    """Inverse of :func:`spans_to_json`; raises ``ValueError`` on anything else."""
    if not isinstance(data, list):
        raise ValueError(f"phoneme timing must be a list, not {type(data).__name__}")
    spans = []
    for item in data:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)):
            raise ValueError(f"bad phoneme entry {item!r}: expected [phoneme, start, end]")
        start, end = float(item[1]), float(item[2])
        if not end > start >= 0:
            raise ValueError(f"bad phoneme times {item!r}: need 0 <= start < end")
        spans.append(PhonemeSpan(item[0], start, end))
    return spans
