"""The turn-end policy: finished sentences end the turn soon, unfinished ones wait for more."""

from __future__ import annotations

import pytest
from livekit.agents import llm

from facetalk.dialogue.turn_end import TranscriptTurnDetector, estimate_turn_end


@pytest.mark.parametrize(
    "transcript",
    [
        "What's the weather like in Paris?",
        "Tell me a story about a dragon.",
        "That's amazing!",
        "Thank you",
        "I went to the store.",  # "the" inside, a noun at the end
        "Can you do that?",
        "Where are you from?",  # a question ending in a preposition is still a question
        "Yes, I do.",  # short answers end in an auxiliary
        "I'll take some.",
        "Yes, it is.",
        "That's where the international airport is.",  # a wh-clause closes on its copula
        "Hello. My name is Bruce.",
        "",
    ],
)
def test_finished_utterances_end_the_turn(transcript: str) -> None:
    """Questions, full sentences and plain words end the turn after the short delay."""
    assert estimate_turn_end(transcript).finished


@pytest.mark.parametrize(
    "transcript",
    [
        "I'd like to know about the",
        "I'd like to know about the.",  # Whisper's full stop does not finish it
        "My name is",
        "The problem is.",
        "I know where it is. My name is",  # only the last sentence counts
        "So I went there and",
        "I was thinking, um.",
        "I want to go because",
        "The capital of France is, well...",
        "Well, I think that,",
        "It's a bit like —",
        "We'll talk about my",
        "I don't know, I’m",  # a typographic apostrophe
        "Could you tell me more about the planets and?",  # Whisper's question mark on a pause
    ],
)
def test_unfinished_utterances_wait(transcript: str) -> None:
    """A trailing conjunction, filler, article, preposition or comma keeps the turn open."""
    estimate = estimate_turn_end(transcript)
    assert not estimate.finished, estimate.reason


async def test_detector_reads_the_last_user_message() -> None:
    """livekit-agents hands the chat so far; the user's latest words decide."""
    detector = TranscriptTurnDetector()
    chat = llm.ChatContext()
    chat.add_message(role="user", content="Tell me about the weather.")
    chat.add_message(role="assistant", content="It is sunny and")
    chat.add_message(role="user", content="And what about the")
    threshold = await detector.unlikely_threshold("en")
    assert await detector.predict_end_of_turn(chat) < threshold
    chat.add_message(role="user", content="And what about tomorrow?")
    assert await detector.predict_end_of_turn(chat) >= threshold


async def test_detector_defers_to_silence_for_other_languages() -> None:
    """The word lists are English: other languages fall back to silence alone."""
    detector = TranscriptTurnDetector()
    assert await detector.supports_language("en")
    assert await detector.supports_language(None)
    assert not await detector.supports_language("fr")
