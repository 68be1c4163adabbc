"""When the user's turn ends and when the agent yields: the session's turn settings.

livekit-agents does the turn-taking itself (``AgentSession(turn_handling=...)``);
this module only decides its settings from the pipeline's ``turn`` section
(:class:`~facetalk.config.TurnConfig`, where every default lives):

- **end of turn**: :class:`.turn_end.TranscriptTurnDetector` reads the words
  (an unfinished sentence waits ``max_endpointing_delay_s``, a finished one
  ``min_endpointing_delay_s``), or silence alone decides (``"vad"``);
- **interruption**: the user's speech, as the VAD hears it, stops the agent
  after ``min_interruption_s``;
- **preemptive generation**: the LLM and TTS start on the preflight transcript,
  in the silence that ends the turn.

The worker passes the result on and reads none of it, so a change of policy
is a change here.
"""

from __future__ import annotations

from livekit.agents import TurnHandlingOptions

from ..config import TurnConfig
from .turn_end import TranscriptTurnDetector

__all__ = ["AEC_WARMUP_S", "MAX_PREFLIGHTS_PER_TURN", "MIC_FRAME_MS", "turn_handling"]

MIC_FRAME_MS = 20
"""The user's audio reaches the VAD in 20 ms frames (livekit-agents' default is
50): a frame's length is added to every end-of-speech and barge-in detection."""

MAX_PREFLIGHTS_PER_TURN = 12
"""Preemptive replies allowed per user turn; each later one cancels the one before.
Every pause of 90 ms inside a sentence sends a preflight, and livekit-agents stops
preempting after ``max_retries`` of them per turn (3 by default): the one at the
real end must still count."""

AEC_WARMUP_S = None
"""No echo reaches the agent through a LiveKit room with AEC on the client, so
user speech may interrupt from the first moment (livekit-agents' ``aec_warmup_duration``)."""


def turn_handling(turn: TurnConfig) -> TurnHandlingOptions:
    """``AgentSession``'s ``turn_handling`` for the pipeline's ``turn`` section."""
    return {
        "turn_detection": TranscriptTurnDetector() if turn.end_of_turn == "transcript" else "vad",
        "endpointing": {
            "min_delay": turn.min_endpointing_delay_s,
            "max_delay": turn.max_endpointing_delay_s,
        },
        "interruption": {
            "enabled": turn.allow_interruptions,
            "mode": "vad",
            "min_duration": turn.min_interruption_s,
        },
        "preemptive_generation": {
            "enabled": turn.preemptive_generation,
            "preemptive_tts": turn.preemptive_generation,
            "max_retries": MAX_PREFLIGHTS_PER_TURN,
        },
    }
