"""What the simulated user says: a list of turns, from a YAML file or a built-in set.

The built-in sets are ``synthetic`` (piper speaks :data:`DEFAULT_SCRIPT`),
``human`` (real people's recordings, :mod:`.human_speech`) and ``mixed``
(the two taken in turn, so that one run reports both side by side).

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

__all__ = ["BUILTIN_SCRIPTS", "DEFAULT_SCRIPT", "ScriptTurn", "builtin_script", "load_script", "turn_audio"]


class ScriptTurn(BaseModel):
    """One utterance of the simulated user."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str | None = None
    wav: Path | None = None
    interrupt: bool = Field(default=False, description="Speak over the agent's answer.")

    @property
    def speech(self) -> str:
        """'human' for a recording, 'synthetic' for text spoken by piper."""
        return "human" if self.wav is not None else "synthetic"

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


BUILTIN_SCRIPTS = ("synthetic", "human", "mixed")

_HUMAN_INTERRUPT = "ve9qrp_goes"
"""The human clip spoken over the agent's answer ("And we'll see how it goes.")."""


def builtin_script(name: str, cache: Path) -> list[ScriptTurn]:
    """One of :data:`BUILTIN_SCRIPTS`; recordings are fetched into ``cache`` on first use."""
    if name not in BUILTIN_SCRIPTS:
        raise FaceTalkError(
            f"unknown script {name!r}", hint=f"give a YAML file, or one of: {', '.join(BUILTIN_SCRIPTS)}"
        )
    if name == "synthetic":
        return list(DEFAULT_SCRIPT)
    from .human_speech import fetch_human_speech

    wavs = fetch_human_speech(cache)
    human = [ScriptTurn(wav=path, interrupt=clip == _HUMAN_INTERRUPT) for clip, path in wavs.items()]
    if name == "human":
        return human
    mixed = []
    for i in range(max(len(human), len(DEFAULT_SCRIPT))):
        mixed += [DEFAULT_SCRIPT[i % len(DEFAULT_SCRIPT)], human[i % len(human)]]
    return mixed


def load_script(path: Path) -> list[ScriptTurn]:
    """Read and validate a script file; relative WAV paths resolve against it."""
    if not path.is_file():
        raise FaceTalkError(
            f"{path}: no such script file", hint=f"give a YAML file, or one of: {', '.join(BUILTIN_SCRIPTS)}"
        )
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
    from ..audio import resample_int16
    from ..avatar.audio import SAMPLE_RATE
    from ..avatar.offline import read_audio
    from ..avatar.speech import speak

    if turn.wav is not None:
        return resample_int16(read_audio(turn.wav), SAMPLE_RATE, rate)
    speech = speak(turn.text)  # type: ignore[arg-type]
    return resample_int16(speech.samples, speech.sample_rate, rate)
