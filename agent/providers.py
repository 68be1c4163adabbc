"""Build the STT, VAD, LLM and TTS a pipeline config names.

Each provider is a livekit-agents plugin (ours in :mod:`facetalk.agent.plugins`,
or livekit's own). The plugins know nothing of our config: this module is the
one place that maps config choices to constructors (and milliseconds to
seconds), so adding a provider means one new branch here and one new config
model in ``facetalk.config``. The config's defaults are the project's; a plugin's
constructor defaults only serve who uses the plugin on its own.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from livekit.agents import llm, stt, tts, vad

from ..config import (
    CustomLLMConfig,
    EmbeddedLLMConfig,
    OpenAILLMConfig,
    PipelineConfig,
    STTConfig,
    TTSConfig,
    VADConfig,
)
from ..errors import FaceTalkError
from .embedded_llm import EMBEDDED_MODEL_NAME
from .vad_stream_adapter import VADStreamAdapter

__all__ = [
    "build_llm",
    "build_session_stt",
    "build_stt",
    "build_tts",
    "build_vad",
    "describe",
    "load_class",
]

_OPENAI_HINT = "pip install 'facetalk[openai]'"


def build_vad(config: VADConfig) -> vad.VAD:
    """webrtcvad (default) or Silero, loaded once; safe to share between rooms."""
    if config.provider == "silero":
        try:
            from livekit.plugins import silero
        except ImportError as e:
            raise FaceTalkError("vad.provider is silero, but it is not installed", hint="pip install 'facetalk[silero]'") from e
        return silero.VAD.load(
            min_speech_duration=config.min_speech_ms / 1000,
            min_silence_duration=config.min_silence_ms / 1000,
            prefix_padding_duration=config.padding_ms / 1000,
        )
    from .plugins.webrtcvad import WebRTCVAD

    return WebRTCVAD(
        aggressiveness=config.aggressiveness,
        min_speech_duration=config.min_speech_ms / 1000,
        min_silence_duration=config.min_silence_ms / 1000,
        prefix_padding_duration=config.padding_ms / 1000,
        quiet_tail_db=config.quiet_tail_db,
    )


def build_stt(config: STTConfig) -> stt.STT:
    """faster-whisper, loaded once per process; it recognises whole utterances."""
    from .plugins.faster_whisper import FasterWhisperSTT

    return FasterWhisperSTT.load(
        model=config.model,
        device=config.device,
        compute_type=config.compute_type,
        language=config.language or None,
        beam_size=config.beam_size,
    )


def build_session_stt(config: STTConfig, *, stt: stt.STT, vad: vad.VAD) -> VADStreamAdapter:
    """The STT one session streams with: ``stt`` cut by ``vad``, with interims and preflights.

    Give the session the adapter's ``vad`` too, so that one VAD decision serves
    both; build one per session.
    """
    return VADStreamAdapter(stt=stt, vad=vad, interim_interval=config.interim_interval_s)


def build_tts(config: TTSConfig, voice: str) -> tts.TTS:
    """Piper with the persona's voice (default), or OpenAI TTS."""
    if config.provider == "openai":
        openai = _import_openai_plugin()
        return openai.TTS(model=config.model, voice=voice, speed=config.speed)
    from .plugins.piper import PiperTTS

    return PiperTTS.load(voice=voice, speed=config.speed)


def build_llm(
    config: EmbeddedLLMConfig | OpenAILLMConfig | CustomLLMConfig,
    *,
    embedded_base_url: str | None = None,
) -> llm.LLM:
    """The configured LLM. The embedded one must already be served at ``embedded_base_url``."""
    if isinstance(config, CustomLLMConfig):
        cls = load_class(config.class_path)
        if not (isinstance(cls, type) and issubclass(cls, llm.LLM)):
            raise FaceTalkError(
                f"llm.class_path {config.class_path} is not a livekit.agents.llm.LLM subclass",
                hint="subclass livekit.agents.llm.LLM, as examples/custom_llm.py does",
            )
        return cls(**config.options)

    openai = _import_openai_plugin()
    # livekit-agents retries failed requests itself; the client must not retry too.
    if isinstance(config, EmbeddedLLMConfig):
        if embedded_base_url is None:
            raise FaceTalkError(
                "llm.provider is embedded, but the embedded LLM server is not running",
                hint="start the worker with 'facetalk agent', which serves it for you",
            )
        return openai.LLM(
            model=EMBEDDED_MODEL_NAME,
            base_url=embedded_base_url,
            api_key="not-needed",
            temperature=config.temperature,
            max_completion_tokens=config.max_tokens,
            max_retries=0,
        )
    import httpx2 as httpx  # what openai>=3 and its livekit plugin use

    return openai.LLM(
        model=config.model,
        base_url=config.base_url or "https://api.openai.com/v1",
        api_key=os.environ.get(config.api_key_env, "not-needed"),
        temperature=config.temperature,
        timeout=httpx.Timeout(config.timeout_s, connect=min(config.timeout_s, 5.0)),
        max_retries=0,
    )


def load_class(class_path: str) -> Any:
    """Import ``module:Class``, with an error that says what could not be found."""
    module_name, _, attribute = class_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise FaceTalkError(
            f"cannot import module {module_name!r} for {class_path}: {e}",
            hint="check the module path, and that its folder is on PYTHONPATH",
        ) from e
    try:
        return getattr(module, attribute)
    except AttributeError as e:
        raise FaceTalkError(
            f"module {module_name!r} has no {attribute!r}", hint=f"check the class name in {class_path}"
        ) from e


def _import_openai_plugin() -> Any:
    try:
        from livekit.plugins import openai
    except ImportError as e:
        raise FaceTalkError("the OpenAI plugin is not installed", hint=_OPENAI_HINT) from e
    return openai


def describe(pipeline: PipelineConfig) -> str:
    """One line naming the providers, for logs."""
    return (
        f"stt={pipeline.stt.provider}:{pipeline.stt.model} vad={pipeline.vad.provider} "
        f"llm={pipeline.llm.provider} tts={pipeline.tts.provider} "
        f"avatar={pipeline.avatar.engine}@{pipeline.avatar.resolution}"
    )
