"""faster-whisper as a livekit STT (recognition of whole utterances), with the bundled tiny.en, on real piper speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from livekit.agents.stt import SpeechEventType

from facetalk.agent.plugins.piper import PiperTTS
from facetalk.agent.plugins.faster_whisper import FasterWhisperSTT, short_window
from facetalk.agent.plugins.faster_whisper import stt as whisper_stt
from facetalk.agent.providers import build_stt
from facetalk.config import STTConfig
from facetalk.errors import FaceTalkError

from .speech_audio import no_leaked_tasks  # noqa: F401  (autouse fixture)
from .speech import word_error_rate
from .speech_audio import speak, to_frame

QUESTION = "What is your name?"


@pytest.fixture(scope="module")
def tts() -> PiperTTS:
    return PiperTTS.load()


@pytest.fixture
async def stt():
    stt = FasterWhisperSTT.load()
    yield stt
    await stt.aclose()


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
        results.append(short_window.decode_in_short_window(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(whisper_stt, "decode_in_short_window", spy)
    event = await stt.recognize(await speak(tts, QUESTION))
    assert len(results) == 1 and results[0] is not None
    assert event.alternatives[0].text == results[0].text


def test_model_loads_once_per_process() -> None:
    """Two STTs with the same model options share one loaded WhisperModel."""
    first = build_stt(STTConfig())
    second = FasterWhisperSTT.load(language="en", beam_size=5)
    assert isinstance(first, FasterWhisperSTT)
    assert first.whisper is second.whisper
    assert (first.model, first.provider) == ("tiny.en", "faster-whisper")


def test_missing_model_path_raises_facetalk_error_with_hint(tmp_path: Path) -> None:
    """A model folder that does not exist is a FaceTalkError naming the path, with a fix."""
    missing = tmp_path / "no-such-model"
    with pytest.raises(FaceTalkError) as info:
        FasterWhisperSTT.load(model=str(missing))
    assert str(missing) in info.value.message
    assert info.value.hint and "bundled" in info.value.hint


def test_broken_model_folder_raises_facetalk_error(tmp_path: Path) -> None:
    """A folder whose model.bin is garbage fails at load time, not at the first utterance."""
    (tmp_path / "model.bin").write_bytes(b"not a model")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FaceTalkError) as info:
        FasterWhisperSTT.load(model=str(tmp_path))
    assert str(tmp_path) in info.value.message
    assert info.value.hint


def test_options_are_validated() -> None:
    """A beam size below 1 is refused at construction and in update_options."""
    stt = FasterWhisperSTT.load()
    with pytest.raises(ValueError, match="beam_size"):
        stt.update_options(beam_size=0)
    stt.update_options(language="en", beam_size=2)
