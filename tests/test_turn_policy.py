"""The pipeline's turn section becomes the session's turn handling, one setting for one option."""

from __future__ import annotations

from facetalk.config import TurnConfig
from facetalk.dialogue.turn_end import TranscriptTurnDetector
from facetalk.dialogue.turn_policy import MAX_PREFLIGHTS_PER_TURN, turn_handling


def test_transcript_end_of_turn_uses_the_word_rules_and_both_delays() -> None:
    """With end_of_turn 'transcript' the words pick min or max delay, as configured."""
    options = turn_handling(TurnConfig(min_endpointing_delay_s=0.3, max_endpointing_delay_s=2.5))
    assert isinstance(options["turn_detection"], TranscriptTurnDetector)
    assert options["endpointing"] == {"min_delay": 0.3, "max_delay": 2.5}


def test_silence_end_of_turn_leaves_it_to_the_vad() -> None:
    """With end_of_turn 'silence' livekit-agents' VAD alone ends the turn."""
    assert turn_handling(TurnConfig(end_of_turn="silence"))["turn_detection"] == "vad"


def test_interruption_and_preemption_follow_the_config() -> None:
    """Interruptions by voice after min_interruption_s; preemptive replies, enough of them per turn."""
    options = turn_handling(TurnConfig(allow_interruptions=False, min_interruption_s=0.4, preemptive_generation=False))
    assert options["interruption"] == {"enabled": False, "mode": "vad", "min_duration": 0.4}
    assert options["preemptive_generation"] == {"enabled": False, "preemptive_tts": False, "max_retries": MAX_PREFLIGHTS_PER_TURN}
    assert turn_handling(TurnConfig())["preemptive_generation"]["enabled"] is True
