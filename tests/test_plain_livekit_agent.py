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

from facetalk.config import load_persona
from facetalk.eval.mouth import MouthRegion
from facetalk.livekit_server import LocalLiveKitServer
from facetalk.testing.local_stack import running_process
from facetalk.testing.scripted_llm import ScriptedLLMServer

from .conftest import CONFIGS, REPO
from .conversation import join_greeted
from .speech import speak, transcribe, word_error_rate

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
    start, end = user.audio.loud_span(after=asked.end)
    answer = transcribe(user.audio.between(start - 0.2, end + 0.2))
    assert word_error_rate(NAME_ANSWER, answer) <= 0.25, answer  # tiny.en may hear "Aster"
    mouth = MouthRegion.for_persona(load_persona(CONFIGS / "persona.yaml"), user.video)
    while_agent_speaks = mouth.motion(user.video, start + 0.3, end - 0.3)
    while_user_speaks = mouth.motion(user.video, asked.start + 0.3, asked.end - 0.1)
    assert while_agent_speaks > 3 * max(while_user_speaks, 0.2), (while_agent_speaks, while_user_speaks)
