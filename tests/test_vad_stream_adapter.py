"""Streaming recognition over a non-streaming STT, cut by the session's VAD.

faster-whisper with the bundled tiny.en and webrtcvad, with the pipeline's
default settings, on real piper speech. Each test feeds the microphone as
AgentSession does: every frame to the session's VAD stream and to the STT stream.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.stt import SpeechEvent, SpeechEventType

from facetalk.agent.plugins.piper import PiperTTS
from facetalk.agent.plugins.webrtcvad import WebRTCVAD
from facetalk.agent.providers import build_session_stt, build_stt, build_vad
from facetalk.agent.vad_stream_adapter import VADStreamAdapter
from facetalk.config import STTConfig, VADConfig

from .speech import word_error_rate
from .speech_audio import no_leaked_tasks  # noqa: F401  (autouse fixture)
from .speech_audio import padded, push_realtime, speak, to_frame, voiced_span
from .speech_audio import samples as pcm_of

QUESTION = "What is your name?"
LONGER = "What is your name? I would like to know who I am talking to."


@pytest.fixture(scope="module")
def tts() -> PiperTTS:
    return PiperTTS.load()


@pytest.fixture
async def adapter():
    adapter = build_session_stt(STTConfig(), stt=build_stt(STTConfig()), vad=build_vad(VADConfig()))
    yield adapter
    await adapter.aclose()


class SessionAudio:
    """The microphone as AgentSession feeds it: each frame to its VAD stream and its STT stream.

    The VAD stream's events are read, as the session reads them.
    """

    def __init__(self, adapter: VADStreamAdapter) -> None:
        self.vad_stream = adapter.vad.stream()
        self.stt_stream = adapter.stream()
        self.vad_events: list = []
        self._reader = asyncio.create_task(self._read_vad())

    async def _read_vad(self) -> None:
        async for event in self.vad_stream:
            self.vad_events.append(event)

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        self.stt_stream.push_frame(frame)
        self.vad_stream.push_frame(frame)

    def end_input(self) -> None:
        self.stt_stream.end_input()
        self.vad_stream.end_input()

    def __aiter__(self):  # type: ignore[no-untyped-def]
        return self.stt_stream.__aiter__()

    async def aclose(self) -> None:
        await self.stt_stream.aclose()
        await self.vad_stream.aclose()
        await self._reader


async def collect(stream: SessionAudio) -> list[SpeechEvent]:
    events = [event async for event in stream]
    await stream.aclose()
    return events


def texts(events: list[SpeechEvent], kind: SpeechEventType) -> list[str]:
    return [ev.alternatives[0].text for ev in events if ev.type == kind]


async def test_stream_gives_interims_a_preflight_then_a_final_at_end_of_speech(
    tts: PiperTTS, adapter: VADStreamAdapter
) -> None:
    """Speech pushed in real time gives START, interims, a preflight in the closing
    silence, END, then a final with the preflight's text and WER ≤ 0.2.

    The preflight is decoded while the VAD waits out the silence; how long that
    decode takes depends on the machine's load, so the test holds the audio
    after 0.15 s of silence (past the preflight point, before the VAD's 0.25 s
    end of speech) until the preflight has arrived, as a slow decode would see
    a long pause, and then sends the rest of the silence.
    """
    speech = await speak(tts, LONGER)
    rate = speech.sample_rate
    pcm = padded(speech, 0.5, 1.0)
    held_at = int((0.5 + speech.duration + 0.15) * rate)
    stream = SessionAudio(adapter)
    events: list[SpeechEvent] = []
    preflight = asyncio.Event()

    async def read() -> None:
        async for event in stream.stt_stream:
            events.append(event)
            if event.type == SpeechEventType.PREFLIGHT_TRANSCRIPT:
                preflight.set()
        await stream.aclose()

    reader = asyncio.create_task(read())
    await push_realtime(stream, pcm[:held_at], rate, end=False)
    await asyncio.wait_for(preflight.wait(), timeout=30)
    await push_realtime(stream, pcm[held_at:], rate)
    await asyncio.wait_for(reader, timeout=30)

    kinds = [ev.type for ev in events]
    assert kinds[0] == SpeechEventType.START_OF_SPEECH
    assert SpeechEventType.INTERIM_TRANSCRIPT in kinds
    end = kinds.index(SpeechEventType.END_OF_SPEECH)
    assert kinds[end - 1] == SpeechEventType.PREFLIGHT_TRANSCRIPT
    assert kinds[end + 1 :] == [SpeechEventType.FINAL_TRANSCRIPT, SpeechEventType.RECOGNITION_USAGE]
    assert all(kind == SpeechEventType.INTERIM_TRANSCRIPT for kind in kinds[1 : end - 1])
    (final,) = texts(events, SpeechEventType.FINAL_TRANSCRIPT)
    assert texts(events, SpeechEventType.PREFLIGHT_TRANSCRIPT) == [final]
    assert word_error_rate(LONGER, final) <= 0.2
    spoken = events[end + 1].alternatives[0]
    assert spoken.start_time == pytest.approx(0.5, abs=0.25)
    assert spoken.end_time == pytest.approx(0.5 + speech.duration, abs=0.35)
    assert events[-1].recognition_usage.audio_duration > speech.duration - 0.3


async def test_final_reuses_the_decode_made_during_the_closing_silence(
    tts: PiperTTS, adapter: VADStreamAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The utterance is decoded while the VAD waits out the silence, before END arrives.

    On a quiet machine that decode is the final one; under load the VAD's
    events can bunch up and one more decode may follow END, so only the early
    start is asserted.
    """
    decodes_started: list[float] = []
    whisper = adapter.wrapped_stt
    real_recognize = whisper.recognize

    async def counting_recognize(buffer, **kwargs):  # type: ignore[no-untyped-def]
        decodes_started.append(time.perf_counter())
        return await real_recognize(buffer, **kwargs)

    monkeypatch.setattr(whisper, "recognize", counting_recognize)
    speech = await speak(tts, QUESTION)
    stream = SessionAudio(adapter)
    pcm = padded(speech, 0.3, 1.0)
    pusher = asyncio.create_task(push_realtime(stream, pcm, speech.sample_rate))
    end_seen = 0.0
    finals = []
    async for event in stream.stt_stream:
        if event.type == SpeechEventType.END_OF_SPEECH:
            end_seen = time.perf_counter()
        elif event.type == SpeechEventType.FINAL_TRANSCRIPT:
            finals.append(event.alternatives[0].text)
    await stream.aclose()
    await pusher

    assert len(finals) == 1 and word_error_rate(QUESTION, finals[0]) <= 0.2
    assert decodes_started and decodes_started[0] < end_seen
    assert len(decodes_started) <= 3


async def test_a_preflight_the_user_has_spoken_past_is_not_sent(
    tts: PiperTTS, adapter: VADStreamAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 0.18 s pause inside an utterance gets a preflight; decoded slowly (0.4 s, as on a
    busy machine), it comes back while the user is speaking again and is not sent, so no
    preemptive reply starts on half the utterance. The final hears both halves."""
    whisper = adapter.wrapped_stt
    real_recognize = whisper.recognize
    decodes = 0

    async def slow_recognize(buffer, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal decodes
        decodes += 1
        await asyncio.sleep(0.4)
        return await real_recognize(buffer, **kwargs)

    monkeypatch.setattr(whisper, "recognize", slow_recognize)
    speech = await speak(tts, QUESTION)
    rate = speech.sample_rate
    start, end = voiced_span(pcm_of(speech), rate)
    words = pcm_of(speech)[int(start * rate) : int(end * rate)]  # without piper's own silence
    first = np.concatenate([np.zeros(int(0.3 * rate), np.int16), words, np.zeros(int(0.18 * rate), np.int16)])
    pcm = np.concatenate([first, words, np.zeros(int(1.2 * rate), np.int16)])
    stream = SessionAudio(adapter)
    pusher = asyncio.create_task(push_realtime(stream, pcm, rate))
    events = await collect(stream)
    await pusher

    second_starts = first.size / rate
    preflights = [ev.alternatives[0] for ev in events if ev.type == SpeechEventType.PREFLIGHT_TRANSCRIPT]
    assert decodes >= 2  # the pause's preflight was decoded, then the whole utterance
    assert all(p.end_time > second_starts for p in preflights)
    (final,) = texts(events, SpeechEventType.FINAL_TRANSCRIPT)
    assert word_error_rate(f"{QUESTION} {QUESTION}", final) <= 0.3


async def test_stream_separates_two_utterances(tts: PiperTTS, adapter: VADStreamAdapter) -> None:
    """Two questions with a second of silence between them give two finals."""
    speech = await speak(tts, QUESTION)
    pcm = np.concatenate([padded(speech, 0.3, 1.0), padded(speech, 0.0, 1.0)])
    stream = SessionAudio(adapter)
    pusher = asyncio.create_task(push_realtime(stream, pcm, speech.sample_rate, speedup=4))
    events = await collect(stream)
    await pusher

    finals = texts(events, SpeechEventType.FINAL_TRANSCRIPT)
    assert len(finals) == 2
    assert all(word_error_rate(QUESTION, text) <= 0.2 for text in finals)
    assert [ev.type for ev in events].count(SpeechEventType.START_OF_SPEECH) == 2


async def test_end_input_finalises_speech_without_trailing_silence(
    tts: PiperTTS, adapter: VADStreamAdapter
) -> None:
    """Audio that ends mid-utterance still gets END_OF_SPEECH and a final transcript."""
    speech = await speak(tts, QUESTION)
    stream = SessionAudio(adapter)
    stream.push_frame(to_frame(padded(speech, 0.5, 0.0), speech.sample_rate))
    stream.end_input()
    events = await collect(stream)

    kinds = [ev.type for ev in events]
    assert kinds[-3:] == [
        SpeechEventType.END_OF_SPEECH,
        SpeechEventType.FINAL_TRANSCRIPT,
        SpeechEventType.RECOGNITION_USAGE,
    ]
    assert word_error_rate(QUESTION, texts(events, SpeechEventType.FINAL_TRANSCRIPT)[0]) <= 0.2


async def test_silence_gives_no_transcript(adapter: VADStreamAdapter) -> None:
    """Two seconds of silence produce no speech events at all."""
    stream = SessionAudio(adapter)
    stream.push_frame(to_frame(np.zeros(32_000, np.int16), 16_000))
    stream.end_input()
    assert await collect(stream) == []


async def test_one_vad_stream_serves_the_session_and_the_stt(tts: PiperTTS) -> None:
    """The STT runs no VAD of its own: the session's single VAD stream cuts its utterances."""

    class CountingVAD(WebRTCVAD):
        opened = 0

        def stream(self):  # type: ignore[no-untyped-def]
            CountingVAD.opened += 1
            return super().stream()

    whisper = build_stt(STTConfig())
    adapter = VADStreamAdapter(stt=whisper, vad=CountingVAD(), interim_interval=1.5)
    speech = await speak(tts, QUESTION)
    stream = SessionAudio(adapter)
    stream.push_frame(to_frame(padded(speech, 0.3, 1.0), speech.sample_rate))
    stream.end_input()
    events = await collect(stream)

    assert CountingVAD.opened == 1
    (final,) = texts(events, SpeechEventType.FINAL_TRANSCRIPT)
    assert word_error_rate(QUESTION, final) <= 0.2
    vad_kinds = [e.type for e in stream.vad_events if e.type != "inference_done"]
    assert vad_kinds == ["start_of_speech", "end_of_speech"]  # the session saw the same utterance


async def test_interims_recognise_only_the_new_speech(
    tts: PiperTTS, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each interim recognises the speech since the previous one (not the whole utterance
    again), and its text is the text so far: each interim extends the one before."""
    whisper = build_stt(STTConfig())
    adapter = VADStreamAdapter(stt=whisper, vad=WebRTCVAD(), interim_interval=0.75)
    heard: list[float] = []
    real_recognize = whisper.recognize

    async def measuring_recognize(buffer, **kwargs):  # type: ignore[no-untyped-def]
        heard.append(buffer.duration)
        return await real_recognize(buffer, **kwargs)

    monkeypatch.setattr(whisper, "recognize", measuring_recognize)
    speech = await speak(tts, LONGER + " " + LONGER)
    stream = SessionAudio(adapter)
    pusher = asyncio.create_task(push_realtime(stream, padded(speech, 0.3, 1.0), speech.sample_rate))
    events = await collect(stream)
    await pusher

    interims = texts(events, SpeechEventType.INTERIM_TRANSCRIPT)
    assert len(interims) >= 3
    assert all(later.startswith(earlier) for earlier, later in zip(interims, interims[1:]))
    # Interims hear new speech only: together, at most the utterance once. (Re-hearing the
    # whole utterance each time, they would add up to several times its length.)
    # The preflights and the final hear the whole utterance so far.
    short = [d for d in heard if d < speech.duration / 2]
    assert len(short) >= len(interims)
    assert sum(short) < speech.duration + 0.5


def test_interim_interval_is_validated() -> None:
    """An interim interval that is not positive is refused, at construction and in update_options."""
    with pytest.raises(ValueError, match="interim_interval"):
        VADStreamAdapter(stt=build_stt(STTConfig()), vad=WebRTCVAD(), interim_interval=0)
    adapter = VADStreamAdapter(stt=build_stt(STTConfig()), vad=WebRTCVAD(), interim_interval=1.5)
    adapter.update_options(interim_interval=0.5)
    with pytest.raises(ValueError, match="interim_interval"):
        adapter.update_options(interim_interval=-1.0)


@pytest.mark.parametrize("name", ["librivox_0890", "harvard_2"])
async def test_human_speech_gives_interims_and_a_final(name: str) -> None:
    """Real people's recordings (a LibriVox reader, a Harvard sentence): interims while they
    speak, and final transcripts that hear the sentence (WER ≤ 0.3 over the finals)."""
    import wave

    from facetalk.avatar.models import cache_dir
    from facetalk.eval.human_speech import HUMAN_CLIPS, fetch_human_speech

    from .speech_audio import samples as pcm_of

    clip = next(c for c in HUMAN_CLIPS if c.name == name)
    with wave.open(str(fetch_human_speech(cache_dir() / "human-speech")[name])) as f:
        rate = f.getframerate()
        speech = to_frame(np.frombuffer(f.readframes(f.getnframes()), np.int16), rate)
    whisper = build_stt(STTConfig())
    adapter = VADStreamAdapter(stt=whisper, vad=WebRTCVAD(), interim_interval=0.75)
    stream = SessionAudio(adapter)
    pcm = np.concatenate([np.zeros(rate // 2, np.int16), pcm_of(speech), np.zeros(rate, np.int16)])
    pusher = asyncio.create_task(push_realtime(stream, pcm, rate, speedup=2))
    events = await collect(stream)
    await pusher

    assert texts(events, SpeechEventType.INTERIM_TRANSCRIPT)
    finals = texts(events, SpeechEventType.FINAL_TRANSCRIPT)
    assert word_error_rate(clip.text, " ".join(finals)) <= 0.3
    kinds = [ev.type for ev in events]
    assert kinds.count(SpeechEventType.START_OF_SPEECH) == kinds.count(SpeechEventType.END_OF_SPEECH)
