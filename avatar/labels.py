"""The conversation state an avatar frame is conditioned on."""

from __future__ import annotations

import enum

__all__ = ["Label"]


class Label(enum.StrEnum):
    """What the avatar is doing; each label has its own motion behaviour.

    - ``SPEAKING``: the mouth follows the audio, head and brows follow prosody.
    - ``LISTENING``: mouth closed, attentive gaze, occasional nods, slight smile.
    - ``IDLE``: relaxed sway, breathing, blinks every few seconds, gaze drift.
    """

    SPEAKING = "speaking"
    LISTENING = "listening"
    IDLE = "idle"
