"""What the simulated user says: a list of turns, from a YAML file or the built-in one.

A script file is a YAML list; each turn has ``text`` (spoken by piper) or
``wav`` (a file, relative to the script), and ``interrupt: true`` for a turn
spoken *over* the agent's previous answer, to measure barge-in::

    - text: What is your name?
    - text: Tell me a long story about the stars.
    - text: Wait, stop, please.
      interrupt: true
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from ..errors import FaceTalkError

__all__ = ["DEFAULT_SCRIPT", "ScriptTurn", "load_script", "turn_audio"]


class ScriptTurn(BaseModel):
    """One utterance of the simulated user."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str | None = None
    wav: Path | None = None
    interrupt: bool = Field(default=False, description="Speak over the agent's answer.")

    @model_validator(mode="after")
    def _one_source(self) -> ScriptTurn:
        if (self.text is None) == (self.wav is None):
            raise ValueError("give exactly one of 'text' or 'wav'")
        return self


DEFAULT_SCRIPT: tuple[ScriptTurn, ...] = (
    ScriptTurn(text="Hello, how are you today?"),
    ScriptTurn(text="What is your name?"),
    ScriptTurn(text="Tell me a long story about the stars."),
    ScriptTurn(text="Wait, stop, please.", interrupt=True),
    ScriptTurn(text="What do you like about space?"),
    ScriptTurn(text="Can you see the earth from up there?"),
)


def load_script(path: Path) -> list[ScriptTurn]:
    """Read and validate a script file; relative WAV paths resolve against it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        turns = TypeAdapter(list[ScriptTurn]).validate_python(data)
    except (OSError, yaml.YAMLError, ValidationError) as e:
        raise FaceTalkError(
            f"{path}: not a valid latency script: {e}",
            hint="a YAML list of turns, each with 'text' or 'wav' (and optional 'interrupt: true')",
        ) from e
    if not turns:
        raise FaceTalkError(f"{path}: the script has no turns", hint="add at least one turn")
    return [
        t.model_copy(update={"wav": path.parent / t.wav}) if t.wav and not t.wav.is_absolute() else t
        for t in turns
    ]


def turn_audio(turn: ScriptTurn, rate: int) -> np.ndarray:
    """The turn's speech as int16 mono at ``rate``."""
    from ..agent.pcm import resample_int16
    from ..avatar.audio import SAMPLE_RATE
    from ..avatar.offline import read_audio
    from ..avatar.speech import speak

    if turn.wav is not None:
        return resample_int16(read_audio(turn.wav), SAMPLE_RATE, rate)
    speech = speak(turn.text)  # type: ignore[arg-type]
    return resample_int16(speech.samples, speech.sample_rate, rate)
