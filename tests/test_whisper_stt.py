"""faster-whisper as a livekit STT with the bundled tiny.en, on real piper speech."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.stt import SpeechEvent, SpeechEventType

from facetalk.agent.piper_tts import PiperTTS
from facetalk.agent.webrtc_vad import WebRTCVAD
from facetalk.agent import whisper_stt, whisper_window
from facetalk.agent.whisper_stt import FasterWhisperSTT
from facetalk.config import STTConfig
from facetalk.errors import FaceTalkError

from .speech_audio import no_leaked_tasks  # noqa: F401  (autouse fixture)
from .speech import word_error_rate
from .speech_audio import padded, push_realtime, speak, to_frame

QUESTION = "What is your name?"
LONGER = "What is your name? I would like to know who I am talking to."


@pytest.fixture(scope="module")
def tts() -> PiperTTS:
    return PiperTTS.from_persona_voice("joe-us-medium")


@pytest.fixture
async def stt():
    stt = FasterWhisperSTT.load(vad=WebRTCVAD())
    yield stt
    await stt.aclose()


async def collect(stream) -> list[SpeechEvent]:
    events = [event async for event in stream]
    await stream.aclose()
    return events


def texts(events: list[SpeechEvent], kind: SpeechEventType) -> list[str]:
    return [ev.alternatives[0].text for ev in events if ev.type == kind]


async def test_recognize_transcribes_a_question(tts: PiperTTS, stt: FasterWhisperSTT) -> None:
    """recognize() on piper's "What is your name?" returns a final transcript with WER ≤ 0.2."""
    event = await stt.recognize(await speak(tts, QUESTION))
    assert event.type == SpeechEventType.FINAL_TRANSCRIPT
    assert word_error_rate(QUESTION, event.alternatives[0].text) <= 0.2
    assert event.alternatives[0].language == "en"
    assert 0.0 < event.alternatives[0].confidence <= 1.0


async def test_recognize_accepts_48khz_stereo(tts: PiperTTS, stt: FasterWhisperSTT) -> None:
    """A 48 kHz stereo buffer is downmixed and resampled before decoding."""
    speech = await speak(tts, QUESTION)
    mono = np.frombuffer(speech.data, dtype=np.int16)
    t = np.arange(int(mono.size * 48_000 / speech.sample_rate)) * speech.sample_rate / 48_000
    mono48 = np.interp(t, np.arange(mono.size), mono)
    stereo = np.stack([mono48, mono48], axis=1).reshape(-1)
    event = await stt.recognize(to_frame(stereo, 48_000, num_channels=2))
    assert word_error_rate(QUESTION, event.alternatives[0].text) <= 0.2


async def test_a_short_question_is_decoded_in_a_short_window(
    tts: PiperTTS, stt: FasterWhisperSTT, monkeypatch: pytest.MonkeyPatch
) -> None:
    """recognize() of a 1 s question takes the short-window path, not faster-whisper's 30 s one."""
    results = []

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        results.append(whisper_window.decode_in_short_window(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(whisper_stt, "decode_in_short_window", spy)
    event = await stt.recognize(await speak(tts, QUESTION))
    assert len(results) == 1 and results[0] is not None
    assert event.alternatives[0].text == results[0].text


async def test_stream_gives_interims_a_preflight_then_a_final_at_end_of_speech(
    tts: PiperTTS, stt: FasterWhisperSTT
) -> None:
    """Speech pushed in real time gives START, interims, a preflight in the closing
    silence, END, then a final with the preflight's text and WER ≤ 0.2.

    The preflight is decoded while the VAD waits out the silence; how long that
    decode takes depends on the machine's load, so the test holds the audio
    after 0.15 s of silence (past the preflight point, before the VAD's 0.3 s
    end of speech) until the preflight has arrived, as a slow decode would see
    a long pause, and then sends the rest of the silence.
    """
    speech = await speak(tts, LONGER)
    rate = speech.sample_rate
    pcm = padded(speech, 0.5, 1.0)
    held_at = int((0.5 + speech.duration + 0.15) * rate)
    stream = stt.stream()
    events: list[SpeechEvent] = []
    preflight = asyncio.Event()

    async def read() -> None:
        async for event in stream:
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
    tts: PiperTTS, stt: FasterWhisperSTT, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The utterance is decoded while the VAD waits out the silence, before END arrives.

    On a quiet machine that decode is the final one; under load the VAD's
    events can bunch up and one more decode may follow END, so only the early
    start is asserted.
    """
    decodes_started: list[float] = []
    real_transcribe = stt._transcribe

    async def counting_transcribe(audio, opts):  # type: ignore[no-untyped-def]
        decodes_started.append(time.perf_counter())
        return await real_transcribe(audio, opts)

    monkeypatch.setattr(stt, "_transcribe", counting_transcribe)
    speech = await speak(tts, QUESTION)
    stream = stt.stream()
    pcm = padded(speech, 0.3, 1.0)
    pusher = asyncio.create_task(push_realtime(stream, pcm, speech.sample_rate))
    end_seen = 0.0
    finals = []
    async for event in stream:
        if event.type == SpeechEventType.END_OF_SPEECH:
            end_seen = time.perf_counter()
        elif event.type == SpeechEventType.FINAL_TRANSCRIPT:
            finals.append(event.alternatives[0].text)
    await stream.aclose()
    await pusher

    assert len(finals) == 1 and word_error_rate(QUESTION, finals[0]) <= 0.2
    assert decodes_started and decodes_started[0] < end_seen
    assert len(decodes_started) <= 3


async def test_stream_separates_two_utterances(tts: PiperTTS, stt: FasterWhisperSTT) -> None:
    """Two questions with a second of silence between them give two finals."""
    speech = await speak(tts, QUESTION)
    pcm = np.concatenate([padded(speech, 0.3, 1.0), padded(speech, 0.0, 1.0)])
    stream = stt.stream()
    pusher = asyncio.create_task(push_realtime(stream, pcm, speech.sample_rate, speedup=4))
    events = await collect(stream)
    await pusher

    finals = texts(events, SpeechEventType.FINAL_TRANSCRIPT)
    assert len(finals) == 2
    assert all(word_error_rate(QUESTION, text) <= 0.2 for text in finals)
    assert [ev.type for ev in events].count(SpeechEventType.START_OF_SPEECH) == 2


async def test_end_input_finalises_speech_without_trailing_silence(
    tts: PiperTTS, stt: FasterWhisperSTT
) -> None:
    """Audio that ends mid-utterance still gets END_OF_SPEECH and a final transcript."""
    speech = await speak(tts, QUESTION)
    stream = stt.stream()
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


async def test_silence_gives_no_transcript(stt: FasterWhisperSTT) -> None:
    """Two seconds of silence produce no speech events at all."""
    stream = stt.stream()
    stream.push_frame(to_frame(np.zeros(32_000, np.int16), 16_000))
    stream.end_input()
    assert await collect(stream) == []


def test_model_loads_once_per_process() -> None:
    """Two STTs with the same model options share one loaded WhisperModel."""
    first = FasterWhisperSTT.from_config(STTConfig(), vad=WebRTCVAD())
    second = FasterWhisperSTT.load(vad=WebRTCVAD(), language="en", beam_size=5)
    assert first._model is second._model
    assert (first.model, first.provider) == ("tiny.en", "faster-whisper")


def test_missing_model_path_raises_facetalk_error_with_hint(tmp_path: Path) -> None:
    """A model folder that does not exist is a FaceTalkError naming the path, with a fix."""
    missing = tmp_path / "no-such-model"
    with pytest.raises(FaceTalkError) as info:
        FasterWhisperSTT.load(vad=WebRTCVAD(), model=str(missing))
    assert str(missing) in info.value.message
    assert info.value.hint and "bundled" in info.value.hint


def test_broken_model_folder_raises_facetalk_error(tmp_path: Path) -> None:
    """A folder whose model.bin is garbage fails at load time, not at the first utterance."""
    (tmp_path / "model.bin").write_bytes(b"not a model")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FaceTalkError) as info:
        FasterWhisperSTT.load(vad=WebRTCVAD(), model=str(tmp_path))
    assert str(tmp_path) in info.value.message
    assert info.value.hint


def test_options_are_validated() -> None:
    """A beam size below 1 is refused at construction and in update_options."""
    stt = FasterWhisperSTT.load(vad=WebRTCVAD())
    with pytest.raises(ValueError, match="beam_size"):
        stt.update_options(beam_size=0)
    stt.update_options(language="en", interim_interval=0.5)
