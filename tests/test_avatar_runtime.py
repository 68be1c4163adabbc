"""The streaming runtime: interleaving, resampling, growing clips, idle pacing, interruption."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT
from livekit.agents.voice.avatar import AudioSegmentEnd

from facetalk.avatar import SAMPLE_RATE, AvatarVideoGenerator, Clip, FrameInfo, Label, create_video_generator
from facetalk.avatar.audio import AudioFeatures
from facetalk.avatar.phonemes import PhonemeSpan, PhonemeTimedString
from facetalk.config import AvatarConfig, Expression, load_persona

FPS = 25
PER_FRAME = SAMPLE_RATE // FPS
PERSONA = Path(__file__).resolve().parent.parent / "configs" / "persona.yaml"


class FakeEngine:
    """A FrameEngine that renders 8x8 frames and records what it was asked."""

    width = height = 8

    def __init__(self) -> None:
        self.calls: list[tuple[int, Label]] = []
        self.features: list[AudioFeatures | None] = []
        self.expression: Expression | None = None
        self.resets: list[int] = []  # len(calls) at each reset

    def render_clip(self, features: Sequence[AudioFeatures | None], label: Label) -> Clip:
        self.calls.append((len(features), label))
        self.features.extend(features)
        return Clip(frames=[np.zeros((8, 8, 3), np.uint8) for _ in features])

    def set_expression(self, expression: Expression) -> None:
        self.expression = expression

    def reset(self) -> None:
        self.resets.append(len(self.calls))


def _tone(seconds: float, rate: int, channels: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = (8000 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))).astype(np.int16)
    return np.repeat(mono[:, None], channels, axis=1)


async def _push(gen: AvatarVideoGenerator, audio: np.ndarray, rate: int, *, chunk_s: float = 0.01,
                end: bool = True, timing: list[PhonemeSpan] | None = None) -> None:
    """Push ``audio`` in chunks; ``timing`` rides on the first chunk, as our piper TTS sends it."""
    n = int(rate * chunk_s)
    for i in range(0, len(audio), n):
        part = np.ascontiguousarray(audio[i:i + n])
        frame = rtc.AudioFrame(part.tobytes(), rate, part.shape[1], part.shape[0])
        if timing is not None and i == 0:
            frame.userdata[USERDATA_TIMED_TRANSCRIPT] = [
                PhonemeTimedString("Ama.", timing, start_time=0.0, end_time=max(s.end for s in timing))]
        await gen.push_audio(frame)
        await asyncio.sleep(0)
    if end:
        await gen.push_audio(AudioSegmentEnd())


async def _read_segment(stream: AsyncIterator[object]) -> list[object]:
    """Items up to and including the next AudioSegmentEnd."""
    items = []
    async for item in stream:
        items.append(item)
        if isinstance(item, AudioSegmentEnd):
            return items
    return items


@pytest.fixture
def recorded() -> tuple[FakeEngine, list[FrameInfo], AvatarVideoGenerator]:
    engine, infos = FakeEngine(), []
    return engine, infos, AvatarVideoGenerator(engine, fps=FPS, on_frame=infos.append)


async def test_resamples_any_input_to_24k_mono(recorded) -> None:
    """16 kHz stereo in: 24 kHz mono frames out, one per video frame, all audio kept."""
    _, infos, gen = recorded
    reader = asyncio.create_task(_read_segment(gen))
    await _push(gen, _tone(1.0, 16000, 2), 16000)
    items = await asyncio.wait_for(reader, 10)
    audio = [i for i in items if isinstance(i, rtc.AudioFrame)]
    assert {(a.sample_rate, a.num_channels) for a in audio} == {(SAMPLE_RATE, 1)}
    assert sum(a.samples_per_channel for a in audio) == pytest.approx(SAMPLE_RATE, abs=PER_FRAME)
    await gen.aclose()


async def test_video_and_audio_interleave_and_segment_ends(recorded) -> None:
    """Each speaking VideoFrame is followed by its AudioFrame; AudioSegmentEnd comes last."""
    _, infos, gen = recorded
    reader = asyncio.create_task(_read_segment(gen))
    await _push(gen, _tone(0.8, SAMPLE_RATE, 1), SAMPLE_RATE)
    items = await asyncio.wait_for(reader, 10)
    assert isinstance(items[-1], AudioSegmentEnd)
    speaking = [i for i in infos if i.label == Label.SPEAKING]
    assert len(speaking) == 20
    kinds = [type(i).__name__ for i in items[-41:-1]]
    assert kinds == ["VideoFrame", "AudioFrame"] * 20
    await gen.aclose()


async def test_mouth_frame_carries_the_audio_it_was_rendered_from(recorded) -> None:
    """Frame k of a segment is rendered from, and yielded with, audio samples [k*960, (k+1)*960)."""
    _, infos, gen = recorded
    audio = _tone(0.6, SAMPLE_RATE, 1)
    reader = asyncio.create_task(_read_segment(gen))
    await _push(gen, audio, SAMPLE_RATE)
    items = await asyncio.wait_for(reader, 10)
    speaking = [i for i in infos if i.label == Label.SPEAKING]
    yielded = [np.frombuffer(a.data, np.int16) for a in items if isinstance(a, rtc.AudioFrame)]
    for k, info in enumerate(speaking):
        np.testing.assert_array_equal(info.audio, audio[k * PER_FRAME:(k + 1) * PER_FRAME, 0])
        np.testing.assert_array_equal(yielded[k], info.audio)
    await gen.aclose()


async def test_clips_start_short_and_grow(recorded) -> None:
    """With a sentence of audio queued, a segment's clips are 1, 2, 4, then 8 frames;
    the next segment starts at 1 again."""
    engine, _, gen = recorded
    stream = aiter(gen)
    reader = asyncio.create_task(_read_segment(stream))
    await _push(gen, _tone(2.0, SAMPLE_RATE, 1), SAMPLE_RATE, chunk_s=2.0)
    await asyncio.wait_for(reader, 10)
    sizes = [n for n, label in engine.calls if label == Label.SPEAKING]
    assert sizes[:4] == [1, 2, 4, 8] and max(sizes) == 8 and sum(sizes) == 50
    reader = asyncio.create_task(_read_segment(stream))
    await _push(gen, _tone(0.5, SAMPLE_RATE, 1), SAMPLE_RATE)
    await asyncio.wait_for(reader, 10)
    assert [n for n, label in engine.calls if label == Label.SPEAKING][len(sizes)] == 1
    await gen.aclose()


async def test_idle_frames_keep_coming_at_fps(recorded) -> None:
    """With no audio, frames of the set label arrive at about fps, and set_state switches them.

    The count is checked against the time that really passed, so a busy
    machine's late wake-ups do not matter: never more than fps allows (no
    burst), and at least 80% of it (a slow consumer loses frames, not pace).
    """
    _, infos, gen = recorded
    frames = 0

    async def count() -> None:
        nonlocal frames
        async for item in gen:
            frames += isinstance(item, rtc.VideoFrame)

    started = time.perf_counter()
    reader = asyncio.create_task(count())
    await asyncio.sleep(0.6)
    gen.set_state(Label.IDLE)
    await asyncio.sleep(0.4)
    await gen.aclose()
    elapsed = time.perf_counter() - started
    await asyncio.wait_for(reader, 2)
    assert 0.8 * elapsed * FPS <= frames <= elapsed * FPS + 1  # the first frame is immediate
    assert infos[0].label == Label.LISTENING and infos[-1].label == Label.IDLE


async def test_frames_missed_in_a_short_stall_still_come(recorded) -> None:
    """A 0.4 s stall of the whole process (as when Whisper and piper hold both cores) costs no frames.

    The frames it held back come right after it, so the user still gets ``fps`` frames a second; the
    publisher spaces them out for WebRTC. Skipping them, as the runtime once did for any stall over
    0.25 s, is what made the hour-long soak's slow windows.
    """
    _, _, gen = recorded
    frames = 0

    async def count() -> None:
        nonlocal frames
        async for item in gen:
            frames += isinstance(item, rtc.VideoFrame)

    started = time.perf_counter()
    reader = asyncio.create_task(count())
    await asyncio.sleep(0.2)
    time.sleep(0.4)  # blocks the event loop: nothing renders or yields
    await asyncio.sleep(0.6)
    await gen.aclose()
    elapsed = time.perf_counter() - started
    await asyncio.wait_for(reader, 2)
    assert elapsed * FPS - 3 <= frames <= elapsed * FPS + 1


async def test_clear_buffer_drops_audio_and_next_frame_listens(recorded) -> None:
    """After clear_buffer mid-segment: no more of its audio, no AudioSegmentEnd, next frame listening."""
    _, infos, gen = recorded
    seen: list[object] = []
    cleared_at: list[int] = []

    async def read() -> None:
        async for item in gen:
            seen.append(item)
            if sum(isinstance(i, rtc.AudioFrame) for i in seen) == 5 and not cleared_at:
                gen.clear_buffer()
                cleared_at.append(len(infos))

    reader = asyncio.create_task(read())
    audio = _tone(3.0, SAMPLE_RATE, 1)
    for i in range(0, len(audio), 240):  # a TTS stream, stopped by the interruption
        if cleared_at:
            break
        await _push(gen, audio[i:i + 240], SAMPLE_RATE, end=False)
    await asyncio.sleep(0.15)
    await gen.aclose()
    await asyncio.wait_for(reader, 2)
    after = infos[cleared_at[0]:]
    assert after and after[0].label == Label.LISTENING
    assert all(i.label == Label.LISTENING and i.audio.size == 0 for i in after)
    assert not any(isinstance(i, AudioSegmentEnd) for i in seen)
    assert sum(isinstance(i, rtc.AudioFrame) for i in seen) == 5


async def test_a_frames_audio_is_not_yielded_once_cleared_after_its_video(recorded) -> None:
    """clear_buffer right after a speaking video frame went out: the audio rendered with it is dropped too."""
    _, infos, gen = recorded
    stream = gen.__aiter__()
    await _push(gen, _tone(1.0, SAMPLE_RATE, 1), SAMPLE_RATE)
    while not (isinstance(await asyncio.wait_for(stream.__anext__(), 5), rtc.VideoFrame)
               and infos[-1].label == Label.SPEAKING):
        pass
    gen.clear_buffer()
    after = await asyncio.wait_for(stream.__anext__(), 5)
    await gen.aclose()
    assert isinstance(after, rtc.VideoFrame) and infos[-1].label == Label.LISTENING


async def test_clear_buffer_resets_the_engine_once_before_its_next_clip(recorded) -> None:
    """An interruption makes the engine forget the cut-off speech: one reset, after the speaking clips and
    before the first listening clip that follows; a segment that ends normally resets nothing."""
    engine, _, gen = recorded
    stream = gen.__aiter__()
    await _push(gen, _tone(0.3, SAMPLE_RATE, 1), SAMPLE_RATE)
    while not isinstance(await asyncio.wait_for(stream.__anext__(), 5), AudioSegmentEnd):
        pass
    assert engine.resets == []
    await _push(gen, _tone(2.0, SAMPLE_RATE, 1), SAMPLE_RATE, end=False)
    audio_frames = 0
    while audio_frames < 5:
        audio_frames += isinstance(await asyncio.wait_for(stream.__anext__(), 5), rtc.AudioFrame)
    gen.clear_buffer()
    spoken = len(engine.calls)
    while len(engine.calls) == spoken:
        await asyncio.wait_for(stream.__anext__(), 5)
    await gen.aclose()
    assert engine.resets == [spoken]
    assert engine.calls[spoken - 1][1] == Label.SPEAKING and engine.calls[spoken][1] == Label.LISTENING


async def test_set_expression_reaches_the_engine(recorded) -> None:
    """set_expression(smile=...) updates the engine's controls; unknown names are refused."""
    engine, _, gen = recorded
    gen.set_expression(smile=0.7)
    assert engine.expression is not None and engine.expression.smile == 0.7
    with pytest.raises(ValueError):
        gen.set_expression(grin=1.0)


async def test_factory_builds_a_cpu_generator_and_refuses_diffusion(tmp_path, monkeypatch) -> None:
    """create_video_generator gives a ready CPU generator with runner options."""
    monkeypatch.setenv("FACETALK_CACHE", str(tmp_path))
    monkeypatch.setattr("facetalk.avatar.models.face_landmark_model_path",
                        lambda: Path.home() / ".cache" / "facetalk" / "models" / "face_landmark-mediapipe-0.10.21.tflite")
    persona = load_persona(PERSONA)
    gen = create_video_generator(persona, AvatarConfig(resolution=384, fps=25))
    options = gen.avatar_options()
    assert (options.video_width, options.video_height, options.video_fps) == (384, 384, 25)
    assert (options.audio_sample_rate, options.audio_channels) == (24000, 1)
    first = await asyncio.wait_for(gen.__aiter__().__anext__(), 2)
    assert isinstance(first, rtc.VideoFrame) and (first.width, first.height) == (384, 384)
    await gen.aclose()


async def test_no_tasks_leak(recorded) -> None:
    """After a segment and aclose, only the test's own task is left on the loop."""
    _, _, gen = recorded
    reader = asyncio.create_task(_read_segment(gen))
    await _push(gen, _tone(0.5, SAMPLE_RATE, 1), SAMPLE_RATE)
    await asyncio.wait_for(reader, 10)
    await gen.aclose()
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_phoneme_timing_reaches_the_frame_it_times(recorded) -> None:
    """An 'm' timed at 0.40-0.48 s closes the lips in frame 10 (0.40-0.44 s) and not in frame 3."""
    engine, _, gen = recorded
    reader = asyncio.create_task(_read_segment(gen))
    timing = [PhonemeSpan("a", 0.0, 0.4), PhonemeSpan("m", 0.4, 0.48), PhonemeSpan("a", 0.48, 1.0)]
    await _push(gen, _tone(1.0, 16000, 1), 16000, timing=timing)
    await asyncio.wait_for(reader, 10)
    visemes = [f.viseme for f in engine.features if f is not None]
    assert len(visemes) == 25 and visemes[10].closure == 1.0 and visemes[3].closure == 0.0
    await gen.aclose()


async def test_audio_without_timing_falls_back_with_one_log_line(recorded, caplog) -> None:
    """Two segments with no timing: every frame is audio-driven, and it is said once."""
    engine, _, gen = recorded
    stream = aiter(gen)
    with caplog.at_level("INFO", logger="facetalk.avatar.runtime"):
        for _ in range(2):
            reader = asyncio.create_task(_read_segment(stream))
            await _push(gen, _tone(0.4, SAMPLE_RATE, 1), SAMPLE_RATE)
            await asyncio.wait_for(reader, 10)
    assert all(f.viseme is None for f in engine.features if f is not None)
    assert len([r for r in caplog.records if "no phoneme" in r.getMessage()]) == 1
    await gen.aclose()


async def test_timing_past_the_audio_is_clipped_not_crashed_on(recorded) -> None:
    """Timing for 5 s on 0.6 s of audio: the segment plays its 15 frames and ends; the next one works."""
    engine, infos, gen = recorded
    stream = aiter(gen)
    reader = asyncio.create_task(_read_segment(stream))
    timing = [PhonemeSpan("a", 0.0, 0.5), PhonemeSpan("m", 0.5, 2.0), PhonemeSpan("a", 2.0, 5.0)]
    await _push(gen, _tone(0.6, SAMPLE_RATE, 1), SAMPLE_RATE, timing=timing)
    items = await asyncio.wait_for(reader, 10)
    assert isinstance(items[-1], AudioSegmentEnd)
    assert len([i for i in infos if i.label == Label.SPEAKING]) == 15
    reader = asyncio.create_task(_read_segment(stream))
    await _push(gen, _tone(0.2, SAMPLE_RATE, 1), SAMPLE_RATE)
    await asyncio.wait_for(reader, 10)
    assert engine.features[-1] is not None and engine.features[-1].viseme is None  # a new segment, untimed
    await gen.aclose()
