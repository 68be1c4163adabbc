"""The conversation state an avatar frame is conditioned on."""

from __future__ import annotations

import enum

__all__ = ["Label"]


class Label(enum.StrEnum):
    """What the avatar is doing; each label has its own motion behaviour.

    - ``SPEAKING``: the mouth follows the audio, head and brows follow prosody.
    - ``LISTENING``: mouth closed, attentive gaze, occasional nods, slight smile.
    - ``IDLE``: relaxed sway, breathing, blinks every few seconds, gaze drift.
    - ``THINKING``: the user is done and the answer is coming: a glance up and
      aside, a slight tilt, brows lifted. The diffusion engine, trained on the
      first three, draws it as ``LISTENING``.
    """

    SPEAKING = "speaking"
    LISTENING = "listening"
    IDLE = "idle"
    THINKING = "thinking"
