"""The persona file: who the avatar is (its face, voice and how it talks)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from .base import _resolve_path, _Strict

__all__ = ["Expression", "PersonaConfig"]

Intensity = Annotated[float, Field(ge=0.0, le=1.0)]


class Expression(_Strict):
    """Fine-grained expression controls, each an intensity from 0 to 1.

    ``eye_openness`` and ``head_tilt`` are centred: 0.5 is neutral, 0 is
    closed eyes / full tilt left, 1 is wide eyes / full tilt right.
    """

    smile: Intensity = 0.0
    brow_raise: Intensity = 0.0
    eye_openness: Intensity = 0.5
    head_tilt: Intensity = 0.5


class PersonaConfig(_Strict):
    """Who the avatar is: its face, voice and how it talks."""

    kind: Literal["persona"] = "persona"
    name: str = Field(min_length=1)
    portrait: Path = Field(description="Portrait image, relative to this file.")
    voice: str = Field(
        default="joe-us-medium",
        description="A bundled piper voice name, a path to a piper .onnx voice, "
        "or an OpenAI voice name when the pipeline uses OpenAI TTS.",
    )
    system_prompt: str = Field(min_length=1)
    greeting: str = ""
    thinking_filler: str = Field(
        default="Hmm, let me think.",
        description="Said when the LLM is slow to answer (turn.filler_after_s); empty: never.",
    )
    expression: Expression = Expression()

    @field_validator("portrait")
    @classmethod
    def _portrait_exists(cls, value: Path, info: ValidationInfo) -> Path:
        path = _resolve_path(value, info)
        if not path.is_file():
            raise ValueError(
                f"file not found: {path} (expected an image path, relative to the YAML file)"
            )
        return path

    @field_validator("voice")
    @classmethod
    def _voice_file_exists(cls, value: str, info: ValidationInfo) -> str:
        if value.endswith(".onnx"):
            path = _resolve_path(Path(value), info)
            if not path.is_file():
                raise ValueError(f"voice model not found: {path} (expected a piper .onnx file)")
            return str(path)
        return value
