"""``facetalk eval latency``: simulated users talk to the agent; their side is measured.

Each simulated user joins its own room, waits for the greeting, then plays the
script turn by turn: it waits for the agent's answer to end (or, before an
``interrupt`` turn, only until the answer has been playing for a moment) and
speaks the next utterance. Afterwards :mod:`.measures` turns the recordings
into figures. With ``rooms > 1`` the users talk at the same time, to the same
worker, to see how latency and delivered frame rate degrade under load.

Every wait is bounded, and everything stays on loopback unless a remote
LiveKit URL is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import load_persona
from ..livekit_server import LocalLiveKitServer, make_token
from ..testing.local_stack import local_stack
from ..testing.simulated_user import MIC_RATE, SimulatedUser
from .measures import JoinResult, TurnResult, measure_join, measure_turn, voiced_bounds
from .mouth import MouthRegion
from .script import ScriptTurn, turn_audio

__all__ = ["LatencyRun", "run_latency_eval", "work_folder"]

_ANSWER_TIMEOUT_S = 30.0
_INTERRUPT_AFTER_S = 1.2  # how long the answer plays before the user talks over it
_PAUSE_S = 0.6  # between the agent's answer and the user's next turn


@dataclass
class LatencyRun:
    """Everything one evaluation measured."""

    turns: list[TurnResult]
    joins: list[JoinResult]
    rooms: int
    llm: str


async def _converse(
    server: LocalLiveKitServer,
    script: Sequence[tuple[ScriptTurn, object]],
    mouth_for: Callable[[SimulatedUser], MouthRegion],
    on_turn: Callable[[], None],
) -> tuple[list[TurnResult], JoinResult]:
    """One user in one fresh room plays ``script``; returns its measured turns."""
    user = SimulatedUser()
    room = f"latency-{uuid.uuid4().hex[:8]}"
    spoken: list[tuple[ScriptTurn, tuple[float, float]]] = []
    try:
        await user.join(server.url, make_token("evaluator", room, api_key=server.api_key, api_secret=server.api_secret))
        await user.wait_for_greeting()
        for i, (turn, samples) in enumerate(script):
            utterance = await user.say(samples)  # type: ignore[arg-type]
            spoken.append((turn, voiced_bounds(utterance, samples, MIC_RATE)))  # type: ignore[arg-type]
            interrupt_next = i + 1 < len(script) and script[i + 1][0].interrupt
            # A missing answer leaves this turn's figures empty; the run goes on.
            with contextlib.suppress(TimeoutError):
                await user.wait_until(lambda: user.agent_label() == "speaking", timeout=_ANSWER_TIMEOUT_S)
                if interrupt_next:
                    await asyncio.sleep(_INTERRUPT_AFTER_S)
                else:
                    await user.wait_until(lambda: user.agent_label() != "speaking", timeout=_ANSWER_TIMEOUT_S)
                    await asyncio.sleep(_PAUSE_S)
            on_turn()
    finally:
        await user.leave()
    mouth = mouth_for(user)
    received = user.recording()
    results = []
    for i, (turn, voiced) in enumerate(spoken):
        until = spoken[i + 1][1][0] if i + 1 < len(spoken) else float("inf")
        text = turn.text or str(turn.wav)
        results.append(
            measure_turn(
                received, mouth, index=i, text=text, interrupt=turn.interrupt, voiced=voiced, until=until,
                speech=turn.speech,
            )  # fmt: skip
        )
    return results, measure_join(user)


async def run_latency_eval(
    *,
    turns: int,
    script: Sequence[ScriptTurn],
    llm: str,
    rooms: int,
    persona: Path,
    pipeline: Path,
    server: LocalLiveKitServer | None = None,
    on_turn: Callable[[], None] = lambda: None,
    work_dir: Path | None = None,
) -> LatencyRun:
    """Run ``rooms`` simulated users for ``turns`` turns each.

    Without ``server`` a local LiveKit server and worker are started (and
    stopped); with one, the worker already serving it is measured.
    """
    audio = {turn: turn_audio(turn, MIC_RATE) for turn in dict.fromkeys(script)}
    plan = [(t, audio[t]) for t in _cycle(script, turns)]
    persona_config = load_persona(persona)

    def mouth_for(user: SimulatedUser) -> MouthRegion:
        return MouthRegion.for_persona(persona_config, user.video)

    async def measure(live: LocalLiveKitServer) -> LatencyRun:
        outcomes = await asyncio.gather(*(_converse(live, plan, mouth_for, on_turn) for _ in range(rooms)))
        return LatencyRun(
            turns=[t for results, _ in outcomes for t in results],
            joins=[join for _, join in outcomes],
            rooms=rooms,
            llm=llm,
        )

    if server is not None:
        return await measure(server)
    with work_folder(work_dir) as folder:
        async with local_stack(llm, persona, pipeline, folder) as (live, _):
            return await measure(live)


def _cycle(script: Sequence[ScriptTurn], n: int) -> list[ScriptTurn]:
    """``n`` turns from ``script``, repeated; never opening with an interruption."""
    turns = [script[i % len(script)] for i in range(n)]
    if turns and turns[0].interrupt:
        turns[0] = turns[0].model_copy(update={"interrupt": False})
    return turns


@contextlib.contextmanager
def work_folder(folder: Path | None) -> Iterator[Path]:
    """``folder`` (created), or a temporary one removed afterwards."""
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="facetalk-eval-") as tmp:
        yield Path(tmp)
