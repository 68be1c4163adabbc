"""The tests' own measuring tools agree with themselves."""

from __future__ import annotations

import numpy as np

from .speech import speak, transcribe, word_error_rate


def test_piper_speech_transcribes_back_to_its_text() -> None:
    """Speech the simulated user says is understood by the user-side transcriber."""
    samples = speak("What is your name?")
    assert len(samples) > 48_000 * 0.5
    assert np.abs(samples).max() > 1000
    assert word_error_rate("What is your name?", transcribe(samples)) <= 0.2


def test_word_error_rate_counts_edits_per_reference_word() -> None:
    """Substitutions, insertions and deletions each cost one, over the reference length."""
    assert word_error_rate("what is your name", "what is your name") == 0
    assert word_error_rate("what is your name", "what was your name") == 0.25
    assert word_error_rate("what is your name", "what is name") == 0.25
    assert word_error_rate("what is your name", "so what is your name") == 0.25
