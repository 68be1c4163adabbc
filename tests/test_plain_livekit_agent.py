"""examples/plain_livekit_agent.py: a plain livekit-agents agent with a FaceTalk face gives the
user lip-synced video and audio.

The example runs as its users run it (``python examples/plain_livekit_agent.py start``),
against the real LiveKit server, with FaceTalk's speech plugins and livekit's own
``openai.LLM`` pointed at the scripted OpenAI-compatible endpoint on loopback.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from facetalk.livekit_server import LocalLiveKitServer
from facetalk.testing.local_stack import running_process
from facetalk.testing.scripted_llm import ScriptedLLMServer

from .conftest import REPO
from .conversation import assert_lip_synced_answer, join_greeted
from .speech import speak

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

NAME_ANSWER = "My name is Astra."


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scripted_llm() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer(rules={"name": NAME_ANSWER}, default="I see.") as server:
        yield server


@pytest.fixture(scope="module")
def plain_agent(
    livekit_server: LocalLiveKitServer, scripted_llm: ScriptedLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    env = {"OPENAI_BASE_URL": scripted_llm.base_url, "OPENAI_API_KEY": "unused", "OPENAI_MODEL": "scripted"}
    log = tmp_path_factory.mktemp("plain-agent") / "plain-agent.log"
    with running_process(
        livekit_server, [str(REPO / "examples" / "plain_livekit_agent.py"), "start"], log, env=env
    ) as process:
        yield process


async def test_plain_agent_with_a_facetalk_face_talks_with_moving_lips(
    livekit_server: LocalLiveKitServer, plain_agent: subprocess.Popen[bytes], scripted_llm: ScriptedLLMServer
) -> None:
    """The user sees the avatar and hears its greeting; asked a question, the answer comes through
    the avatar's audio, and its mouth moves while it speaks far more than while the user speaks."""
    user = await join_greeted(livekit_server)
    try:
        asked = await user.say(speak("What is your name?"))
        await user.wait_for_answer()
    finally:
        await user.leave()

    assert any("name" in question for question in scripted_llm.questions), scripted_llm.questions
    assert_lip_synced_answer(user, asked, NAME_ANSWER)
