"""Turn-taking as the user feels it: no cut-in at a thinking pause, no silence while the LLM is slow.

Real server, real worker, real models; the LLM is the scripted endpoint on
loopback, talked to by the real ``openai`` client.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
import pytest_asyncio

from facetalk.agent.scripted_llm_server import ScriptedLLMServer
from facetalk.config import TurnConfig
from facetalk.livekit_server import LocalLiveKitServer
from facetalk.simulated_user import MIC_RATE, SimulatedUser

from .conftest import running_worker
from .speech import speak, transcribe

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

LLM_DELAY_S = TurnConfig().filler_after_s + 1.0  # the shipped pipeline keeps the default
THINKING_PAUSE_S = 0.7


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scripted_llm() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer(
        rules={"name": "My name is Astra.", "rain": "It never rains up here."},
        slow_delay_s=LLM_DELAY_S,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def worker(
    livekit_server: LocalLiveKitServer,
    scripted_llm: ScriptedLLMServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker with the shipped turn settings; its LLM times out after 10 s."""
    llm = {"provider": "openai", "base_url": scripted_llm.base_url, "model": "scripted", "timeout_s": 10}
    with running_worker(livekit_server, {"llm": llm}, tmp_path_factory.mktemp("worker")) as process:
        yield process


async def _join(livekit_server: LocalLiveKitServer) -> SimulatedUser:
    """A user in a new room, once the agent has greeted them."""
    user = SimulatedUser()
    await user.join(livekit_server.url, livekit_server.token("person", f"turns-{uuid.uuid4().hex[:8]}"))
    await user.wait_for_greeting()
    return user


def _trimmed(text: str) -> np.ndarray:
    """``text`` spoken, without its trailing quiet, so that a pause after it is exactly that long."""
    audio = speak(text)
    return audio[: np.flatnonzero(np.abs(audio.astype(np.int32)) > 64)[-1] + 1]


async def test_a_thinking_pause_in_an_unfinished_sentence_does_not_cut_in(
    livekit_server: LocalLiveKitServer, worker: subprocess.Popen[bytes], scripted_llm: ScriptedLLMServer
) -> None:
    """0.7 s of silence after "I was wondering if" would end a finished sentence (0.45 s does),
    not this one: the agent waits, then answers the whole sentence."""
    pause = np.zeros(int(THINKING_PAUSE_S * MIC_RATE), np.int16)
    seen = len(scripted_llm.requests)
    user = await _join(livekit_server)
    try:
        asked = await user.say(
            np.concatenate([_trimmed("I was wondering if"), pause, speak("it ever rains up there.")])
        )
        await user.wait_for_answer()
    finally:
        await user.leave()

    first_reply = user.audio.first_loud(after=asked.start)
    assert first_reply is not None, "the agent never answered"
    heard_user = [text for t, who, text, final in user.transcripts if who == "person" and final]
    assert first_reply > asked.end, (
        f"the agent cut in {asked.end - first_reply:.2f} s before the user finished, having heard {heard_user}"
    )
    asked_llm = [_last_user_text(body) for body in scripted_llm.requests[seen:]]
    assert "rain" in asked_llm[-1], asked_llm
    heard = transcribe(user.audio.between(first_reply - 0.2, first_reply + 3.0)).lower()
    assert "never" in heard, (heard, _agent_said(user, after=asked.start), first_reply - asked.end)


async def test_slow_llm_gets_a_filler_then_its_answer(
    livekit_server: LocalLiveKitServer, worker: subprocess.Popen[bytes], scripted_llm: ScriptedLLMServer
) -> None:
    """The turn ends and the avatar shows it is thinking; no token after filler_after_s: the
    persona's filler plays, then the late answer, in that order."""
    user = await _join(livekit_server)
    scripted_llm.mode = "slow"
    try:
        asked = await user.say(speak("What is your name?"))
        # The reply's transcript is final once its audio has played.
        await user.wait_until(lambda: "astra" in _agent_said(user, after=asked.end), timeout=30)
        await user.wait_until(lambda: user.agent_label() != "speaking", timeout=10)
    finally:
        scripted_llm.mode = "ok"
        await user.leave()

    said = _agent_said(user, after=asked.end)
    assert "think" in said and said.index("think") < said.index("astra"), said
    start, end = user.audio.loud_span(after=asked.end)
    thinking = [t for t, label in user.label_changes() if label == "thinking" and t > asked.end]
    assert thinking and thinking[0] < start, f"no thinking state before the filler: {user.label_changes()}"
    heard = transcribe(user.audio.between(start - 0.2, end + 0.2)).lower()
    assert "think" in heard, f"the filler was not heard: {heard!r}"
    assert "name" in heard, f"the late answer was not heard: {heard!r}"
    assert heard.index("think") < heard.rindex("name"), heard


def _agent_said(user: SimulatedUser, after: float) -> str:
    """The agent's final transcripts received after ``after``, lower-cased (not the greeting)."""
    return " ".join(
        text for t, who, text, final in user.transcripts if t > after and who != "person" and final
    ).lower()


def _last_user_text(body: dict) -> str:
    """The last user message of a chat-completions request, lower-cased."""
    content = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
    return (content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)).lower()
