"""``facetalk eval soak``: one simulated user in a real room for N minutes, measured over time.

Failures users of comparable systems report come from the whole path over
hours (audio drifting seconds behind video, a stream freezing after two
minutes), not from the renderer alone. So the soak runs the real LiveKit
server and ``facetalk agent start``, and a :class:`SimulatedUser` that talks
every 20-40 s, sometimes over the agent's answer. At the receiver it records:

- per turn: response latency and A/V offset (lip-sync lag), as
  :func:`.measures.measure_turn` defines them;
- per window (``window_s``): delivered fps, the longest gap between frames,
  the background PSNR of the latest frame against the persona, and the
  worker's RSS (its process and job processes);
- errors: turns that got no answer, a worker that exited, a failed step.

Received frames and audio are dropped once measured, so an hour's run holds
only the current turn in memory. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import psutil
from livekit import rtc

from ..avatar.measures import psnr
from ..config import load_persona
from ..livekit_server import LocalLiveKitServer, make_token
from ..testing.local_stack import local_stack
from ..testing.simulated_user import MIC_RATE, SimulatedUser
from .latency import work_folder
from .measures import measure_turn, voiced_bounds
from .mouth import MouthRegion
from .script import DEFAULT_SCRIPT, ScriptTurn, turn_audio

__all__ = ["SoakRun", "SoakTurn", "SoakWindow", "run_soak"]

_ANSWER_TIMEOUT_S = 30.0
_INTERRUPT_AFTER_S = 1.2


@dataclass
class SoakTurn:
    """One user turn: when (s since the start), what the user received, and where the response time went
    (:data:`.measures.STAGES`, the stages seen), so a response that grows over an hour shows which stage grew."""

    t_s: float
    text: str
    interrupt: bool
    response_ms: float | None
    lipsync_lag_ms: float | None
    stages_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class SoakWindow:
    """What arrived in one window ending at ``t_s`` (s since the start)."""

    t_s: float
    fps: float
    max_gap_ms: float
    background_psnr_db: float | None
    worker_rss_mb: float


@dataclass
class SoakRun:
    minutes: float
    turns: list[SoakTurn] = field(default_factory=list)
    windows: list[SoakWindow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _tree_rss_mb(process: psutil.Process) -> float:
    """RSS of ``process`` and its descendants (the worker and its job processes), in MB."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 2**20


class _Background:
    """The persona's background as the user receives it, to compare frames against.

    The reference goes through the same RGB→I420 conversion as the agent's
    frames, and the same downscale as :class:`SimulatedUser`'s kept frames.
    """

    def __init__(self, persona_portrait: Path, video_size: tuple[int, int], kept: np.ndarray) -> None:
        from ..avatar.persona import prepare_persona

        pack = prepare_persona(persona_portrait, resolution=video_size[0])
        image = np.ascontiguousarray(pack.image)
        frame = rtc.VideoFrame(image.shape[1], image.shape[0], rtc.VideoBufferType.RGB24, image.tobytes())
        i420 = frame.convert(rtc.VideoBufferType.I420)
        luma = np.frombuffer(i420.data, np.uint8)[: image.shape[0] * image.shape[1]].reshape(image.shape[:2])
        size = (kept.shape[1], kept.shape[0])
        self.reference = cv2.resize(luma, size, interpolation=cv2.INTER_AREA).astype(np.float64)
        head = cv2.resize(pack.masks.head.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        self.outside = cv2.dilate(head, np.ones((5, 5), np.uint8)) == 0

    def psnr_db(self, frame: np.ndarray) -> float:
        return min(psnr(frame, self.reference, where=self.outside), 99.0)


class _Recorder:
    """Turns the simulated user's recordings into windows and turns, and drops what it measured."""

    def __init__(self, user: SimulatedUser, worker: psutil.Process, started: float, window_s: float) -> None:
        self.user, self.worker, self.started, self.window_s = user, worker, started, window_s
        self.run_windows: list[SoakWindow] = []
        self._last_t = started
        self._last_frame_t: float | None = None
        self.background: _Background | None = None
        self.mouth: MouthRegion | None = None

    def prepare(self, portrait: Path, mouth: MouthRegion) -> None:
        video = self.user.video
        self.background = _Background(portrait, video.size, video.frames[-1])
        self.mouth = mouth

    def window(self) -> SoakWindow:
        now = time.monotonic()
        times = [t for t in self.user.video.times if self._last_t < t <= now]
        edges = ([self._last_frame_t] if self._last_frame_t is not None else []) + times
        gaps = np.diff(edges) if len(edges) > 1 else np.array([now - (edges[0] if edges else self._last_t)])
        frames = self.user.video.frames
        psnr = self.background.psnr_db(frames[-1]) if self.background is not None and frames else None
        window = SoakWindow(
            t_s=round(now - self.started, 2),
            fps=round(len(times) / (now - self._last_t), 2),
            max_gap_ms=round(float(gaps.max()) * 1000, 1),
            background_psnr_db=None if psnr is None else round(psnr, 2),
            worker_rss_mb=round(_tree_rss_mb(self.worker), 1),
        )
        self._last_t = now
        if times:
            self._last_frame_t = times[-1]
        self.run_windows.append(window)
        return window

    def forget_before(self, t: float) -> None:
        """Drop received frames and audio older than ``t`` (monotonic s); the windows have them."""
        t = min(t, self._last_t - 1.0)
        video, audio = self.user.video, self.user.audio
        keep = next((i for i, at in enumerate(video.times) if at >= t), len(video.times))
        keep = min(keep, len(video.times) - 1)  # always one frame, for its size and PSNR
        del video.times[:keep], video.frames[:keep]
        keep = next((i for i, at in enumerate(audio.times) if at >= t), len(audio.times))
        del audio.times[:keep], audio.chunks[:keep]


async def run_soak(
    *,
    minutes: float,
    persona: Path,
    pipeline: Path,
    llm: str = "scripted",
    script: Sequence[ScriptTurn] = DEFAULT_SCRIPT,
    gap_s: tuple[float, float] = (20.0, 40.0),
    window_s: float = 5.0,
    seed: int = 0,
    work_dir: Path | None = None,
    on_window: Callable[[SoakWindow], None] = lambda _: None,
) -> SoakRun:
    """Talk to a fresh local server and worker for ``minutes``, every ``gap_s`` seconds."""
    rng = random.Random(seed)
    audio = {turn: turn_audio(turn, MIC_RATE) for turn in dict.fromkeys(script)}
    persona_config = load_persona(persona)
    run = SoakRun(minutes=minutes)
    with work_folder(work_dir) as folder:
        async with local_stack(llm, persona, pipeline, folder) as (server, worker):
            await _soak(server, worker, run, persona_config.portrait, persona, audio, script, rng,
                        gap_s=gap_s, window_s=window_s, on_window=on_window)  # fmt: skip
    return run


async def _soak(
    server: LocalLiveKitServer,
    worker: subprocess.Popen[bytes],
    run: SoakRun,
    portrait: Path,
    persona: Path,
    audio: dict[ScriptTurn, np.ndarray],
    script: Sequence[ScriptTurn],
    rng: random.Random,
    *,
    gap_s: tuple[float, float],
    window_s: float,
    on_window: Callable[[SoakWindow], None],
) -> None:
    user = SimulatedUser()
    room = f"soak-{uuid.uuid4().hex[:8]}"
    await user.join(server.url, make_token("soaker", room, api_key=server.api_key, api_secret=server.api_secret))
    await user.wait_for_greeting()
    started = time.monotonic()  # the clock of the report: from the end of the greeting
    end = started + run.minutes * 60
    recorder = _Recorder(user, psutil.Process(worker.pid), started, window_s)
    recorder.prepare(portrait, MouthRegion.for_persona(load_persona(persona), user.video))

    async def sample() -> None:
        while True:
            await asyncio.sleep(window_s)
            on_window(recorder.window())
            if worker.poll() is not None:
                run.errors.append(f"the worker exited with {worker.returncode} at {time.monotonic() - started:.0f} s")
                return

    sampler = asyncio.create_task(sample())
    try:
        pending: tuple[ScriptTurn, tuple[float, float]] | None = None
        index, n = 0, len(script)
        next_at = time.monotonic() + 3.0
        while next_at < end and not sampler.done():
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            turn, index = script[index % n], index + 1
            if turn.interrupt:  # nothing to talk over at the start of a turn: the next line instead
                turn, index = script[index % n], index + 1
            follow = script[index % n]
            if follow.interrupt and rng.random() < 0.5:
                # Ask, then talk over the answer once it has been playing for a moment.
                voiced = voiced_bounds(await user.say(audio[turn]), audio[turn], MIC_RATE)
                over = await _talk_over(user, follow, audio[follow], run, started)
                for done in (pending, (turn, voiced)):
                    if done is not None:
                        await _record_turn(run, recorder, *done, until=(voiced if done is pending else over)[0],
                                     started=started)  # fmt: skip
                pending, index = (follow, over), index + 1
            else:
                voiced = await _say_and_wait(user, turn, audio[turn], run, started)
                if pending is not None:
                    await _record_turn(run, recorder, *pending, until=voiced[0], started=started)
                pending = (turn, voiced)
            next_at = time.monotonic() + rng.uniform(*gap_s)
        if pending is not None:
            await asyncio.sleep(1.0)
            await _record_turn(run, recorder, *pending, until=time.monotonic(), started=started)
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await user.leave()
    run.windows = recorder.run_windows


async def _say_and_wait(
    user: SimulatedUser, turn: ScriptTurn, samples: np.ndarray, run: SoakRun, started: float
) -> tuple[float, float]:
    """Say ``turn`` and wait (bounded) for the whole answer; a missing answer is an error."""
    voiced = voiced_bounds(await user.say(samples), samples, MIC_RATE)
    try:
        await user.wait_for_answer(timeout=_ANSWER_TIMEOUT_S)
    except TimeoutError:
        run.errors.append(f"no answer to {turn.text or turn.wav!s:.40} at {voiced[0] - started:.0f} s")
    return voiced


async def _talk_over(
    user: SimulatedUser, turn: ScriptTurn, samples: np.ndarray, run: SoakRun, started: float
) -> tuple[float, float]:
    """Speak ``turn`` once the agent has been speaking for a moment (the answer just asked for)."""
    with contextlib.suppress(TimeoutError):
        await user.wait_until(lambda: user.agent_label() == "speaking", timeout=_ANSWER_TIMEOUT_S)
    await asyncio.sleep(_INTERRUPT_AFTER_S)
    voiced = voiced_bounds(await user.say(samples), samples, MIC_RATE)
    try:
        await user.wait_until(lambda: user.agent_label() != "speaking", timeout=_ANSWER_TIMEOUT_S)
    except TimeoutError:
        run.errors.append(f"the agent did not stop when talked over at {voiced[0] - started:.0f} s")
    return voiced


async def _record_turn(
    run: SoakRun,
    recorder: _Recorder,
    turn: ScriptTurn,
    voiced: tuple[float, float],
    *,
    until: float,
    started: float,
) -> None:
    """Measure a turn on a thread, from a copy of what arrived: the user's loop goes on stamping frames."""
    assert recorder.mouth is not None
    try:
        measured = await asyncio.to_thread(
            measure_turn, recorder.user.recording(), recorder.mouth, index=len(run.turns),
            text=turn.text or str(turn.wav), interrupt=turn.interrupt, voiced=voiced, until=until,
        )  # fmt: skip
    except ValueError as e:  # e.g. the answer's audio never went quiet
        run.errors.append(f"turn at {voiced[0] - started:.0f} s could not be measured: {e}")
        return
    run.turns.append(
        SoakTurn(
            t_s=round(voiced[0] - started, 2),
            text=turn.text or str(turn.wav),
            interrupt=turn.interrupt,
            response_ms=measured.response_ms,
            lipsync_lag_ms=measured.lipsync_lag_ms,
            stages_ms={k: round(v, 1) for k, v in measured.stages_ms.items()},
        )
    )
    recorder.forget_before(voiced[0] - 1.0)
