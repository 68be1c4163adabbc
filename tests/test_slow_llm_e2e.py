"""A slow LLM is audible: the persona fills the wait, then gives the late answer.

Real server, real worker, real models; the LLM is the scripted endpoint on
loopback, here taking 3 s before its first token.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from facetalk.agent.scripted_llm_server import ScriptedLLMServer
from facetalk.livekit_server import LocalLiveKitServer
from facetalk.simulated_user import SimulatedUser

from .conftest import running_worker
from .speech import speak, transcribe

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

LLM_DELAY_S = 3.0  # the pipeline's filler_after_s is 2.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def slow_llm() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer(
        rules={"name": "My name is Astra."}, mode="slow", slow_delay_s=LLM_DELAY_S
    ) as server:
        yield server


@pytest.fixture(scope="module")
def worker(
    livekit_server: LocalLiveKitServer,
    slow_llm: ScriptedLLMServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker whose LLM answers after 3 s, well inside its 10 s timeout."""
    overrides = {
        "llm": {"provider": "openai", "base_url": slow_llm.base_url, "model": "scripted", "timeout_s": 10}
    }
    with running_worker(livekit_server, overrides, tmp_path_factory.mktemp("worker")) as process:
        yield process


async def test_slow_llm_gets_a_filler_then_its_answer(
    livekit_server: LocalLiveKitServer, worker: subprocess.Popen[bytes]
) -> None:
    """No token after filler_after_s: the persona's filler plays, then the late answer, in that order."""
    user = SimulatedUser()
    await user.join(livekit_server.url, livekit_server.token("person", f"slow-{uuid.uuid4().hex[:8]}"))
    try:
        await user.wait_for_greeting()
        asked = await user.say(speak("What is your name?"))
        # The reply's transcript is final once its audio has played.
        await user.wait_until(lambda: "astra" in _agent_said(user, after=asked.end), timeout=30)
        await user.wait_until(lambda: user.agent_label() != "speaking", timeout=10)
    finally:
        await user.leave()

    said = _agent_said(user, after=asked.end)
    assert "think" in said and said.index("think") < said.index("astra"), said
    start, end = user.audio.loud_span(after=asked.end)
    heard = transcribe(user.audio.between(start - 0.2, end + 0.2)).lower()
    assert "think" in heard, f"the filler was not heard: {heard!r}"
    assert "name" in heard, f"the late answer was not heard: {heard!r}"
    assert heard.index("think") < heard.rindex("name"), heard


def _agent_said(user: SimulatedUser, after: float) -> str:
    """The agent's final transcripts received after ``after``, lower-cased (not the greeting)."""
    return " ".join(
        text for t, who, text, final in user.transcripts if t > after and who != "person" and final
    ).lower()
