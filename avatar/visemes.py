"""Phonemes → mouth shapes over time (visemes with coarticulation).

A person reads lips by a few cues: the lips pressed together on p/b/m, the
lower lip under the upper teeth on f/v, rounding on "oo"/"oh"/"w", spreading
on "ee", the jaw open on "ah", and the tongue tip on "l" and "th". Each
espeak phoneme (piper's alphabet) maps to one :class:`Viseme` here.

Speech does not jump between these shapes: neighbours blend (coarticulation).
:class:`VisemeTrack` gives each phoneme a weight that is 1 while it sounds
and falls off with a raised cosine before and after, and averages the shapes
by those weights. Lip rounding starts earlier (it spreads over the consonants
before a rounded vowel, as in "spoon"), and a lip closure is not averaged at
all: it is a separate channel that reaches 1 for 40 ms about the bilabial's
middle (the whole of a short one) and ramps in just ahead of it, so the lips
are shut when the sound is made whatever the neighbours are. Holding it only
about the middle keeps the rest of a voiced "m" or "b" open with its
loudness, as a viewer (and the lip-sync correlation) expects of voiced sound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .phonemes import PhonemeSpan

__all__ = ["BILABIAL", "ROUNDED", "SPREAD", "SegmentVisemes", "Viseme", "VisemeFrame", "VisemeTrack", "viseme_of"]


@dataclass(frozen=True)
class Viseme:
    """A mouth shape.

    Attributes:
        open: jaw opening at full loudness, 0 .. 1.
        width: -1 rounded .. 1 spread (beyond -1: pursed).
        tongue: how much of the tongue tip shows, 0 .. 1.
        closure: how firmly the lips close, 0 .. 1 (1: bilabial).
    """

    open: float
    width: float = 0.0
    tongue: float = 0.0
    closure: float = 0.0


VISEMES: dict[str, Viseme] = {
    "rest": Viseme(0.0),
    "bilabial": Viseme(0.0, 0.0, 0.0, 1.0),
    "labiodental": Viseme(0.08, 0.15, 0.0, 0.75),
    "dental": Viseme(0.22, 0.1, 1.0),
    "lateral": Viseme(0.38, 0.0, 0.8),
    "alveolar": Viseme(0.2, 0.15, 0.25),
    "sibilant": Viseme(0.1, 0.45),
    "postalveolar": Viseme(0.16, -0.55),
    "velar": Viseme(0.3, 0.05),
    "glottal": Viseme(0.35),
    "rhotic": Viseme(0.22, -0.45),
    "w": Viseme(0.12, -1.2),
    "rounded_close": Viseme(0.25, -1.2),
    "rounded_mid": Viseme(0.55, -1.0),
    "spread_close": Viseme(0.2, 0.9),
    "spread_near": Viseme(0.3, 0.65),
    "spread_mid": Viseme(0.55, 0.55),
    "open": Viseme(1.0, 0.2),
    "open_front": Viseme(0.9, 0.45),
    "open_back_rounded": Viseme(0.85, -0.35),
    "mid": Viseme(0.45, 0.0),
}

_PHONEME_VISEME = {
    **dict.fromkeys("pbm", "bilabial"),
    **dict.fromkeys("fv", "labiodental"),
    **dict.fromkeys("θð", "dental"),
    **dict.fromkeys("lɫ", "lateral"),
    **dict.fromkeys("tdnɾʔ", "alveolar"),
    **dict.fromkeys("sz", "sibilant"),
    **dict.fromkeys("ʃʒ", "postalveolar"),
    **dict.fromkeys("kgŋx", "velar"),
    "h": "glottal",
    **dict.fromkeys("ɹr", "rhotic"),
    **dict.fromkeys("wʍ", "w"),
    **dict.fromkeys("uʊ", "rounded_close"),
    **dict.fromkeys("oɔ", "rounded_mid"),
    **dict.fromkeys("ij", "spread_close"),
    "ɪ": "spread_near",
    **dict.fromkeys("eɛ", "spread_mid"),
    **dict.fromkeys("aɑʌɐ", "open"),
    "æ": "open_front",
    "ɒ": "open_back_rounded",
    **dict.fromkeys("əɚɜɝᵻ", "mid"),
}

BILABIAL = frozenset("pbm")
"""Phonemes whose lips must close."""
ROUNDED = frozenset("uʊoɔw")
"""Phonemes with rounded lips (their first symbol)."""
SPREAD = frozenset("ieɛɪ")
"""Vowels with spread lips (their first symbol)."""


def viseme_of(phoneme: str) -> Viseme:
    """The shape of an espeak phoneme; pauses, punctuation and unknowns rest."""
    return VISEMES[_PHONEME_VISEME.get(phoneme[:1], "rest")]


@dataclass
class VisemeFrame:
    """The blended mouth shape at one instant (fields as in :class:`Viseme`)."""

    open: float
    width: float
    tongue: float
    closure: float


_RAMP_BEFORE = 0.07  # s: a shape starts forming this long before its phoneme
_RAMP_AFTER = 0.06  # s: and lingers this long after it
_ROUND_BEFORE = 0.14  # s: rounding is anticipated further
_CLOSE_HOLD = 0.02  # s: the lips stay shut this long either side of a bilabial's middle
_CLOSE_BEFORE = 0.03  # s: and travel to the closure over this long before
_CLOSE_AFTER = 0.02  # s: and part over this long after


def _raised_cosine(x: np.ndarray) -> np.ndarray:
    """1 at x <= 0, 0 at x >= 1, smooth in between."""
    x = np.clip(x, 0.0, 1.0)
    return 0.5 + 0.5 * np.cos(np.pi * x)


def _plateau(t: float, start: np.ndarray, end: np.ndarray, before: float, after: float) -> np.ndarray:
    """1 inside [start, end], raised-cosine ramps of ``before``/``after`` seconds outside."""
    return np.where(t < start, _raised_cosine((start - t) / before), _raised_cosine((t - end) / after))


class VisemeTrack:
    """The mouth shape at any time of a segment, from its phoneme spans.

    Args:
        spans: the segment's phonemes, in any order; times in seconds.
    """

    def __init__(self, spans: Sequence[PhonemeSpan]) -> None:
        spans = sorted(spans, key=lambda s: s.start)
        self._start = np.array([s.start for s in spans])
        self._end = np.array([s.end for s in spans])
        shapes = [viseme_of(s.phoneme) for s in spans]
        self._open = np.array([v.open for v in shapes])
        self._width = np.array([v.width for v in shapes])
        self._tongue = np.array([v.tongue for v in shapes])
        self._closure = np.array([v.closure for v in shapes])
        self._closing = self._closure > 0

    def __len__(self) -> int:
        return self._start.size

    def at(self, t: float) -> VisemeFrame:
        """The blended shape at ``t`` seconds; the rest shape far from any phoneme."""
        if not len(self):
            return VisemeFrame(0.0, 0.0, 0.0, 0.0)
        weight = _plateau(t, self._start, self._end, _RAMP_BEFORE, _RAMP_AFTER)
        rest = max(0.0, 1.0 - float(weight.sum()))  # pauses pull towards the rest shape
        total = float(weight.sum()) + rest
        shaping = weight * ~self._closing  # closures act through their own channel
        norm = float(shaping.sum()) + rest
        opening = float(shaping @ self._open) / norm if norm > 0 else 0.0
        tongue = float(shaping @ self._tongue) / norm if norm > 0 else 0.0
        round_weight = _plateau(t, self._start, self._end, _ROUND_BEFORE, _RAMP_AFTER)
        width = float(round_weight @ self._width) / (float(round_weight.sum()) + rest) if total > 0 else 0.0
        middle, hold = 0.5 * (self._start + self._end), np.minimum(_CLOSE_HOLD, 0.5 * (self._end - self._start))
        closure = _plateau(t, middle - hold, middle + hold, _CLOSE_BEFORE, _CLOSE_AFTER) * self._closure
        return VisemeFrame(open=opening, width=width, tongue=tongue, closure=float(closure.max(initial=0.0)))


class SegmentVisemes:
    """One audio segment's phoneme timing as it arrives, and the viseme at any time in it.

    Timing comes in pieces (a sentence at a time) and may reach past the end
    of the audio (a TTS's estimate, or audio cut short): spans are clipped to
    the segment's length once it is known, and frames past the last phoneme
    get the rest shape.
    """

    def __init__(self) -> None:
        self._spans: list[PhonemeSpan] = []
        self._track: VisemeTrack | None = None
        self._duration = float("inf")
        self.timed = False

    def add(self, spans: Sequence[PhonemeSpan] | None) -> None:
        """Add timing carried by one audio frame (``None``: that frame had none)."""
        if spans is None:
            return
        self.timed = True
        self._spans.extend(spans)
        self._clip()

    def end(self, duration: float) -> None:
        """The segment's audio is complete and ``duration`` seconds long."""
        self._duration = duration
        self._clip()

    def at(self, t: float) -> VisemeFrame | None:
        """The shape at ``t`` seconds into the segment; ``None`` if it came without timing."""
        if not self.timed:
            return None
        if self._track is None:
            self._track = VisemeTrack(self._spans)
        return self._track.at(t)

    def _clip(self) -> None:
        d = self._duration
        self._spans = [PhonemeSpan(s.phoneme, s.start, min(s.end, d)) for s in self._spans if s.start < d]
        self._track = None
