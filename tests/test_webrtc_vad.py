"""webrtcvad as a livekit VAD, on real speech from the bundled piper voice."""

from __future__ import annotations

import numpy as np
import pytest
from livekit.agents.vad import VADEvent, VADEventType

from facetalk.agent.plugins.piper import PiperTTS
from facetalk.agent.plugins.webrtcvad import WebRTCVAD
from facetalk.agent.plugins.webrtcvad.vad import QUIET_TAIL_DB
from facetalk.agent.providers import build_vad
from facetalk.config import VADConfig

from .speech_audio import no_leaked_tasks  # noqa: F401  (autouse fixture)
from .speech_audio import chunks, padded, samples, speak, voiced_span

SENTENCE = "What is your name?"


@pytest.fixture(scope="module")
def tts() -> PiperTTS:
    return PiperTTS.load()


async def run_vad(vad: WebRTCVAD, pcm: np.ndarray, rate: int, channels: int = 1) -> list[VADEvent]:
    stream = vad.stream()
    for frame in chunks(pcm, rate, num_channels=channels):
        stream.push_frame(frame)
    stream.end_input()
    events = [event async for event in stream]
    await stream.aclose()
    return events


def boundaries(events: list[VADEvent]) -> list[tuple[VADEventType, float]]:
    """START/END events with the moment speech really started or ended, in seconds."""
    marks = []
    for ev in events:
        if ev.type == VADEventType.START_OF_SPEECH:
            marks.append((ev.type, ev.timestamp - ev.speech_duration))
        elif ev.type == VADEventType.END_OF_SPEECH:
            marks.append((ev.type, ev.timestamp - ev.silence_duration))
    return marks


async def test_one_utterance_gives_one_start_end_pair_near_the_true_boundaries(
    tts: PiperTTS,
) -> None:
    """Speech with 1 s of silence around it gives one START and one END near the voiced span."""
    speech = await speak(tts, SENTENCE)
    pcm = padded(speech, 1.0, 1.0)
    true_start, true_end = voiced_span(pcm, speech.sample_rate)

    marks = boundaries(await run_vad(WebRTCVAD(), pcm, speech.sample_rate))

    assert [kind for kind, _ in marks] == [VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH]
    assert marks[0][1] == pytest.approx(true_start, abs=0.1)
    assert marks[1][1] == pytest.approx(true_end, abs=0.2)


async def test_48khz_stereo_input_is_downmixed_and_resampled(tts: PiperTTS) -> None:
    """The same speech at 48 kHz stereo gives the same single START/END pair."""
    speech = await speak(tts, SENTENCE)
    mono = padded(speech, 1.0, 1.0)
    t = np.arange(int(mono.size * 48_000 / speech.sample_rate)) * speech.sample_rate / 48_000
    mono48 = np.interp(t, np.arange(mono.size), mono).astype(np.int16)
    stereo = np.stack([mono48, mono48], axis=1).reshape(-1)
    true_start, true_end = voiced_span(mono48, 48_000)

    events = await run_vad(WebRTCVAD(), stereo, 48_000, channels=2)
    marks = boundaries(events)

    assert [kind for kind, _ in marks] == [VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH]
    assert marks[0][1] == pytest.approx(true_start, abs=0.1)
    assert marks[1][1] == pytest.approx(true_end, abs=0.2)
    end = next(ev for ev in events if ev.type == VADEventType.END_OF_SPEECH)
    assert end.frames[0].sample_rate == 48_000 and end.frames[0].num_channels == 1


async def test_end_of_speech_carries_the_utterance_with_its_prefix_padding(tts: PiperTTS) -> None:
    """END_OF_SPEECH frames hold the speech plus the padding before it, at the input rate."""
    speech = await speak(tts, SENTENCE)
    rate = speech.sample_rate
    pcm = padded(speech, 1.0, 1.0)
    true_start, true_end = voiced_span(pcm, rate)

    events = await run_vad(WebRTCVAD(prefix_padding_duration=0.3), pcm, rate)
    end = next(ev for ev in events if ev.type == VADEventType.END_OF_SPEECH)

    frame = end.frames[0]
    assert frame.sample_rate == rate
    # padding + speech + the silence it took to be sure speech ended
    assert frame.duration == pytest.approx(0.3 + (true_end - true_start) + 0.3, abs=0.25)
    assert np.abs(samples(frame)).max() == np.abs(samples(speech)).max()


async def test_inference_done_reports_every_30ms_window_with_speaking_state(tts: PiperTTS) -> None:
    """One INFERENCE_DONE per 30 ms window; `speaking` and speech_duration follow START/END."""
    speech = await speak(tts, SENTENCE)
    pcm = padded(speech, 1.0, 1.0)
    events = await run_vad(WebRTCVAD(), pcm, speech.sample_rate)

    windows = [ev for ev in events if ev.type == VADEventType.INFERENCE_DONE]
    assert len(windows) == int(pcm.size / speech.sample_rate / 0.03)
    assert [round(ev.timestamp, 3) for ev in windows[:3]] == [0.03, 0.06, 0.09]
    assert all(0.0 <= ev.probability <= 1.0 for ev in windows)
    start = next(ev for ev in events if ev.type == VADEventType.START_OF_SPEECH)
    end = next(ev for ev in events if ev.type == VADEventType.END_OF_SPEECH)
    during = [ev for ev in windows if start.timestamp < ev.timestamp <= end.timestamp]
    assert all(ev.speaking for ev in during)
    assert not any(ev.speaking for ev in windows if ev.timestamp > end.timestamp)
    assert during[-1].speech_duration > 0.9


async def test_silence_and_steady_noise_give_no_speech() -> None:
    """Silence then steady noise never start speech (min_speech > webrtcvad's 90 ms onset)."""
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 30, 3 * 16_000).astype(np.int16)
    pcm = np.concatenate([np.zeros(16_000, np.int16), noise])
    events = await run_vad(WebRTCVAD(min_speech_duration=0.15), pcm, 16_000)
    assert boundaries(events) == []


async def test_min_silence_decides_whether_a_pause_splits_the_turn(tts: PiperTTS) -> None:
    """A 0.6 s pause ends speech with min_silence 0.3 s, and is bridged with min_silence 1 s."""
    speech = await speak(tts, SENTENCE)
    rate = speech.sample_rate
    pcm = np.concatenate([padded(speech, 0.5, 0.3), padded(speech, 0.3, 1.2)])

    split = boundaries(await run_vad(WebRTCVAD(min_silence_duration=0.3), pcm, rate))
    bridged = boundaries(await run_vad(WebRTCVAD(min_silence_duration=1.0), pcm, rate))

    assert len(split) == 4
    assert len(bridged) == 2


def _human_clip(name: str) -> tuple[np.ndarray, int]:
    """A recording of a real person from the human speech set (fetched by ``make setup``)."""
    import wave

    from facetalk.avatar.models import cache_dir
    from facetalk.eval.human_speech import fetch_human_speech

    with wave.open(str(fetch_human_speech(cache_dir() / "human-speech")[name])) as f:
        return np.frombuffer(f.readframes(f.getnframes()), np.int16), f.getframerate()


def _last_loud_s(pcm: np.ndarray, rate: int, level: float = 300.0) -> float:
    """End of the last 10 ms whose RMS is over ``level``: where a listener hears the words end."""
    step = rate // 100
    rms = np.sqrt((pcm[: pcm.size // step * step].astype(np.float64).reshape(-1, step) ** 2).mean(axis=1))
    return (np.flatnonzero(rms > level)[-1] + 1) / 100


@pytest.mark.parametrize("name", ["big_dog", "morig"])
async def test_a_quiet_tail_after_the_last_word_does_not_hold_speech_open(name: str) -> None:
    """Real speakers whose last word fades into breath and hiss (RMS 20-150 against words at
    about 5000, which webrtcvad still calls speech): speech ends within 0.1 s of the words,
    where webrtcvad alone held it open 0.3 s longer."""
    pcm, rate = _human_clip(name)
    pcm = np.concatenate([pcm, np.zeros(rate, np.int16)])
    words_end = _last_loud_s(pcm, rate)

    gated = boundaries(await run_vad(WebRTCVAD(quiet_tail_db=QUIET_TAIL_DB), pcm, rate))
    ungated = boundaries(await run_vad(WebRTCVAD(), pcm, rate))

    assert [kind for kind, _ in gated] == [kind for kind, _ in ungated]  # no utterance split
    assert gated[-1][1] - words_end < 0.1
    assert ungated[-1][1] - words_end > 0.3


async def test_the_quiet_tail_gate_follows_the_utterance_level_not_an_absolute_one(
    tts: PiperTTS,
) -> None:
    """The same sentence 30 dB quieter is still one whole utterance: the gate is relative."""
    speech = await speak(tts, SENTENCE)
    pcm = padded(speech, 1.0, 1.0)
    quiet = (pcm.astype(np.float64) * 10 ** (-30 / 20)).astype(np.int16)

    gated = WebRTCVAD(quiet_tail_db=QUIET_TAIL_DB)
    loud_marks = boundaries(await run_vad(gated, pcm, speech.sample_rate))
    quiet_marks = boundaries(await run_vad(gated, quiet, speech.sample_rate))

    assert [kind for kind, _ in quiet_marks] == [kind for kind, _ in loud_marks]
    assert quiet_marks[-1][1] == pytest.approx(loud_marks[-1][1], abs=0.1)


async def test_flush_drops_the_open_segment(tts: PiperTTS) -> None:
    """flush() starts over: speech cut by it gets no END, the next utterance a fresh START."""
    speech = await speak(tts, SENTENCE)
    rate = speech.sample_rate
    pcm = padded(speech, 0.5, 1.0)
    half = pcm.size // 2
    stream = WebRTCVAD().stream()
    for frame in chunks(pcm[:half], rate):
        stream.push_frame(frame)
    stream.flush()
    for frame in chunks(pcm, rate):
        stream.push_frame(frame)
    stream.end_input()
    events = [ev async for ev in stream]
    await stream.aclose()

    kinds = [kind for kind, _ in boundaries(events)]
    assert kinds == [VADEventType.START_OF_SPEECH] * 2 + [VADEventType.END_OF_SPEECH]


def test_build_vad_converts_milliseconds_and_rejects_bad_values() -> None:
    """The pipeline's ms settings become seconds; an aggressiveness outside 0-3 is refused."""
    vad = build_vad(VADConfig(aggressiveness=3, min_silence_ms=450))
    assert isinstance(vad, WebRTCVAD)
    assert vad.min_silence_duration == pytest.approx(0.45)
    assert vad.model == "webrtcvad-3"
    vad.update_options(min_silence_duration=0.6)
    assert vad.min_silence_duration == pytest.approx(0.6)
    with pytest.raises(ValueError, match="aggressiveness"):
        WebRTCVAD(aggressiveness=4)
    with pytest.raises(ValueError, match="quiet_tail_db"):
        WebRTCVAD(quiet_tail_db=0)


async def test_closed_stream_refuses_frames() -> None:
    """Pushing into a closed stream raises a clear RuntimeError."""
    stream = WebRTCVAD().stream()
    await stream.aclose()
    with pytest.raises(RuntimeError, match="closed|ended"):
        stream.push_frame(next(chunks(np.zeros(320, np.int16), 16_000)))


def test_the_plugin_defaults_are_the_pipeline_defaults() -> None:
    """Built with no arguments, the plugin detects speech as the default pipeline does."""
    plugin, pipeline = WebRTCVAD(), build_vad(VADConfig())
    assert isinstance(pipeline, WebRTCVAD)
    assert plugin.min_silence_duration == pytest.approx(pipeline.min_silence_duration) == 0.25
    assert plugin.model == pipeline.model
