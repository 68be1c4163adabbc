"""Streaming recognition for any non-streaming STT, cut by the session's own VAD.

livekit-agents' ``stt.StreamAdapter`` turns an STT that only recognises whole
clips into a stream, but it runs a second VAD on the microphone, and it gives
only final transcripts, after the VAD is sure speech ended. This adapter reads
the session's VAD decisions (:mod:`.shared_vad`), so one detector serves both,
and gives what turn-taking needs early:

- ``INTERIM_TRANSCRIPT`` while the user speaks, every ``interim_interval``
  seconds of new speech. Each interim recognises only the speech since the
  previous one and appends its text, so their cost grows with the utterance's
  length, not with its square; the text may split a word at the seams, which an
  interim can afford.
- ``PREFLIGHT_TRANSCRIPT`` once the user has paused for ``PREFLIGHT_SILENCE_S``:
  the whole utterance so far, on which livekit-agents' preemptive generation
  starts the LLM and TTS while the VAD is still waiting out the silence. One
  whose recognition ends after the user has spoken again is not sent: it would
  start a reply that the final transcript discards.
- ``FINAL_TRANSCRIPT`` at the VAD's end of speech: the preflight itself when
  nothing was said since (so the reply already prepared is the one played),
  else the whole utterance recognised again.

Recognitions go through the wrapped STT's public ``recognize()``, one at a time.
The audio is what the VAD's events carry; the frames pushed into the stream are
not needed and are dropped. So the STT hears what the VAD hears, also where
livekit-agents would feed the STT silence instead (during AEC warm-up, and
while the agent says something uninterruptible with
``discard_audio_if_uninterruptible``); FaceTalk's worker runs without AEC
warm-up, and with ``turn.allow_interruptions: false`` the user's words spoken
over the agent are transcribed rather than dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from livekit import rtc
from livekit.agents import stt, utils, vad
from livekit.agents.stt import STTCapabilities
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr
from livekit.agents.utils import AudioBuffer, is_given

from facetalk.audio import MonoBuffer

from .concurrency import run_together
from .shared_vad import SharedVAD, VADDecision

__all__ = ["PREFLIGHT_SILENCE_S", "VADStreamAdapter", "VADStreamAdapterStream"]

PREFLIGHT_SILENCE_S = 0.09
"""Silence after which the utterance so far is recognised as a preflight transcript.

Longer than most gaps inside a sentence, and short enough that the transcript,
the LLM's first sentence and its audio are ready when the VAD ends speech
(its ``min_silence_duration``: the pipeline's ``vad.min_silence_ms``). VADs
report silence a window late, so the user has been quiet about 0.12 s by then.
A VAD with a shorter ``min_silence_duration`` gets a preflight at half of it."""


@dataclass
class _AdapterOptions:
    interim_interval: float
    preflight_silence: float


class VADStreamAdapter(stt.STT):
    """A non-streaming STT made streaming, with interims and preflights, by a shared VAD.

    Give :attr:`vad` to ``AgentSession`` as its VAD and the adapter as its STT:
    the session's VAD streams then cut the STT's utterances too. One adapter
    per session.
    """

    def __init__(self, *, stt: stt.STT, vad: vad.VAD, interim_interval: float) -> None:
        """
        Args:
            stt: any STT that implements ``recognize()``; its options (language…)
                apply to every recognition.
            vad: the VAD to share; wrapped in a :class:`SharedVAD` unless it is one.
            interim_interval: seconds of new speech between two interim transcripts.
        """
        super().__init__(
            capabilities=STTCapabilities(
                streaming=True, interim_results=True, keyterms=stt.capabilities.keyterms
            )
        )
        self._wrapped = stt
        self._shared_vad = vad if isinstance(vad, SharedVAD) else SharedVAD(vad)
        vad_silence = self._shared_vad.min_silence_duration
        self._opts = _AdapterOptions(
            interim_interval=_checked_interval(interim_interval),
            preflight_silence=(
                min(PREFLIGHT_SILENCE_S, vad_silence / 2) if vad_silence else PREFLIGHT_SILENCE_S
            ),
        )

    def update_options(self, *, interim_interval: NotGivenOr[float] = NOT_GIVEN) -> None:
        """Change the interim interval of streams started from now on."""
        if is_given(interim_interval):
            self._opts.interim_interval = _checked_interval(interim_interval)

    @property
    def vad(self) -> SharedVAD:
        """The VAD to give the session: its decisions drive this STT's streams."""
        return self._shared_vad

    @property
    def wrapped_stt(self) -> stt.STT:
        return self._wrapped

    @property
    def model(self) -> str:
        return self._wrapped.model

    @property
    def provider(self) -> str:
        return self._wrapped.provider

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        return await self._wrapped.recognize(buffer, language=language, conn_options=conn_options)

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> VADStreamAdapterStream:
        return VADStreamAdapterStream(
            adapter=self, opts=replace(self._opts), language=language, conn_options=conn_options
        )

    def prewarm(self) -> None:
        self._wrapped.prewarm()


def _checked_interval(interim_interval: float) -> float:
    if interim_interval <= 0:
        raise ValueError(f"interim_interval must be > 0 seconds, got {interim_interval}")
    return interim_interval


class VADStreamAdapterStream(stt.RecognizeStream):
    """START_OF_SPEECH, interims, a preflight, END_OF_SPEECH, then the final, per utterance.

    Follows every segment of the shared VAD. Speech still open when a segment
    ends (a ``flush()`` or ``end_input()`` of the session's VAD stream) is
    recognised and reported as final, so no utterance is lost. After this
    stream's input ends, it finishes once the segments open at that moment end.
    """

    def __init__(
        self,
        *,
        adapter: VADStreamAdapter,
        opts: _AdapterOptions,
        language: NotGivenOr[str],
        conn_options: APIConnectOptions,
    ) -> None:
        # a failed recognition is not retried by restarting the stream: recognize() retries
        super().__init__(
            stt=adapter, conn_options=APIConnectOptions(max_retry=0, timeout=conn_options.timeout)
        )
        self._adapter = adapter
        self._opts = opts
        self._language = language
        self._recognize_options = conn_options
        self._decisions = adapter.vad.listen()

    async def _run(self) -> None:
        shared = self._adapter.vad
        utterances: dict[int, _Utterances] = {}
        offset = 0.0  # seconds of audio in the segments already finished

        async def drop_input() -> None:
            async for _ in self._input_ch:
                pass  # the audio arrives with the VAD's events
            self._decisions.send_nowait(_INPUT_ENDED)

        async def follow() -> None:
            nonlocal offset
            waiting_for: set[int] | None = None  # segments to finish before the stream ends
            async for decision in self._decisions:
                if decision is _INPUT_ENDED:
                    waiting_for = set(shared.open_segments())
                elif decision.event is not None:
                    if decision.segment not in utterances:
                        utterances[decision.segment] = _Utterances(self, offset)
                    await utterances[decision.segment].on_vad_event(decision.event)
                elif decision.segment in utterances:
                    segment = utterances.pop(decision.segment)
                    await segment.finish()
                    offset += segment.duration
                if waiting_for is not None:
                    if decision.event is None:
                        waiting_for.discard(decision.segment)
                    if not waiting_for:
                        return

        try:
            await run_together(drop_input(), follow())
        finally:
            shared.forget(self._decisions)
            for segment in utterances.values():
                await segment.aclose()

    async def _recognize_speech(self, frame: rtc.AudioFrame) -> stt.SpeechData:
        event = await self._adapter.wrapped_stt.recognize(
            frame, language=self._language, conn_options=self._recognize_options
        )
        if event.alternatives:
            return event.alternatives[0]
        return stt.SpeechData(language="", text="")

    def _emit(self, event: stt.SpeechEvent) -> None:
        self._event_ch.send_nowait(event)


_INPUT_ENDED = VADDecision(segment=-1, event=None)
"""Put in a stream's own decision channel when its input ends."""


@dataclass
class _Recognition:
    """A recognition of the audio up to ``until`` (seconds into the segment)."""

    task: asyncio.Task[stt.SpeechData]
    until: float


class _Utterances:
    """The speech events of one VAD segment: interims while speaking, a final at the end.

    Times are seconds of audio since the segment began; ``offset`` shifts them
    onto the recognize stream's clock.
    """

    def __init__(self, stream: VADStreamAdapterStream, offset: float) -> None:
        self._stream = stream
        self._offset = offset
        self.duration = 0.0
        self._speaking = False
        self._request_id = ""
        self._audio = MonoBuffer()
        self._speech_start = 0.0
        self._since_interim = 0.0
        self._interim_from = 0  # sample where the next interim's audio starts
        self._interim_text = ""
        self._latest: asyncio.Task[stt.SpeechData] | None = None  # recognitions run in turn
        self._preflight: _Recognition | None = None
        self._heard_until = 0.0  # the latest moment heard as speech, seconds into the segment

    async def on_vad_event(self, event: vad.VADEvent) -> None:
        self.duration = event.timestamp
        if event.type == vad.VADEventType.START_OF_SPEECH:
            self._start(event)
        elif event.type == vad.VADEventType.INFERENCE_DONE and self._speaking:
            self._audio.extend(event.frames)
            self._since_interim += sum(f.duration for f in event.frames)
            silence = event.raw_accumulated_silence
            if silence == 0:
                self._heard_until = event.timestamp
            busy = self._latest is not None and not self._latest.done()
            # Interims only while words arrive: a recognition in a pause is the preflight's job.
            if self._since_interim >= self._stream._opts.interim_interval and not busy and silence == 0:
                self._since_interim = 0.0
                self._recognize_interim(end=event.timestamp)
            elif silence >= self._stream._opts.preflight_silence and (
                self._preflight is None or self._preflight.until <= event.timestamp - silence
            ):
                self._since_interim = 0.0
                self._recognize_preflight(end=event.timestamp)
        elif event.type == vad.VADEventType.END_OF_SPEECH and self._speaking:
            speech_end_time = time.time() - event.silence_duration - event.inference_duration
            end = event.timestamp - event.silence_duration
            final = MonoBuffer()
            final.extend(event.frames)
            await self._send_final(final, end=end, speech_end_time=speech_end_time)

    async def finish(self) -> None:
        """The segment ended: finalise speech it left open."""
        if self._speaking:
            await self._send_final(self._audio, end=self.duration, speech_end_time=time.time())

    async def aclose(self) -> None:
        if self._latest is not None:
            await utils.aio.cancel_and_wait(self._latest)

    def _start(self, event: vad.VADEvent) -> None:
        self._speaking = True
        self._request_id = utils.shortuuid()
        self._audio = MonoBuffer()
        self._audio.extend(event.frames)
        self._speech_start = event.timestamp - event.speech_duration
        self._since_interim = event.speech_duration
        self._interim_from, self._interim_text = 0, ""
        self._preflight = None
        self._stream._emit(
            stt.SpeechEvent(stt.SpeechEventType.START_OF_SPEECH, request_id=self._request_id)
        )

    def _recognize_interim(self, *, end: float) -> None:
        """Recognise the speech since the last interim, and send the text so far."""
        frame = self._audio.frame(self._interim_from)
        self._interim_from = self._audio.size

        def text_so_far(heard: stt.SpeechData) -> stt.SpeechData:
            self._interim_text = f"{self._interim_text} {heard.text}".strip()
            return stt.SpeechData(
                language=heard.language, text=self._interim_text, confidence=heard.confidence
            )

        self._recognize(frame, end=end, kind=stt.SpeechEventType.INTERIM_TRANSCRIPT, shown=text_so_far)

    def _recognize_preflight(self, *, end: float) -> None:
        """Recognise the whole utterance so far, in the pause that may end it."""
        task = self._recognize(
            self._audio.frame(), end=end, kind=stt.SpeechEventType.PREFLIGHT_TRANSCRIPT
        )
        self._preflight = _Recognition(task, until=end)

    def _recognize(
        self,
        frame: rtc.AudioFrame,
        *,
        end: float,
        kind: stt.SpeechEventType,
        shown: Callable[[stt.SpeechData], stt.SpeechData] = lambda heard: heard,
    ) -> asyncio.Task[stt.SpeechData]:
        """Recognise ``frame`` after the recognition before it, then send ``shown(heard)`` as ``kind``."""
        previous = self._latest

        async def recognize() -> stt.SpeechData:
            if previous is not None:
                await previous  # one at a time: a local model serialises them anyway
            heard = await self._stream._recognize_speech(frame)
            event = self._transcript_event(kind, shown(heard), end)
            if event.alternatives[0].text and self._speaking and not self._outdated(kind, end):
                self._stream._emit(event)
            return heard

        self._latest = asyncio.create_task(recognize(), name="VADStreamAdapterStream.recognize")
        return self._latest

    def _outdated(self, kind: stt.SpeechEventType, end: float) -> bool:
        """A preflight recognised up to ``end`` is outdated once the user has spoken since.

        Sent anyway, it would start a preemptive reply on words the user has
        since added to, one that the final transcript then discards: CPU taken
        from the recognition that matters, and a second reply generated at the
        end of the turn.
        """
        return kind == stt.SpeechEventType.PREFLIGHT_TRANSCRIPT and self._heard_until > end

    async def _send_final(self, audio: MonoBuffer, *, end: float, speech_end_time: float) -> None:
        self._speaking = False
        self._stream._emit(
            stt.SpeechEvent(
                stt.SpeechEventType.END_OF_SPEECH,
                request_id=self._request_id,
                speech_end_time=speech_end_time,
            )
        )
        if self._latest is not None:
            await self._latest
        if self._preflight is not None and self._preflight.until >= end:
            heard = self._preflight.task.result()  # recognised in the closing silence
        else:
            heard = await self._stream._recognize_speech(audio.frame())
        self._latest, self._preflight = None, None
        if heard.text:
            self._stream._emit(
                self._transcript_event(stt.SpeechEventType.FINAL_TRANSCRIPT, heard, end)
            )
        self._stream._emit(
            stt.SpeechEvent(
                stt.SpeechEventType.RECOGNITION_USAGE,
                request_id=self._request_id,
                recognition_usage=stt.RecognitionUsage(
                    audio_duration=audio.size / audio.sample_rate if audio.sample_rate else 0.0
                ),
            )
        )

    def _transcript_event(
        self, kind: stt.SpeechEventType, heard: stt.SpeechData, end: float
    ) -> stt.SpeechEvent:
        base = self._stream.start_time_offset + self._offset
        return stt.SpeechEvent(
            kind,
            request_id=self._request_id,
            alternatives=[
                stt.SpeechData(
                    language=heard.language,
                    text=heard.text,
                    start_time=base + self._speech_start,
                    end_time=base + end,
                    confidence=heard.confidence,
                )
            ],
        )
