"""Turn-taking as the user feels it: no cut-in at a thinking pause, no silence while the LLM is slow.

Real server, real worker, real models; the LLM is the scripted endpoint on
loopback, talked to by the real ``openai`` client.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
import pytest_asyncio

from facetalk.config import TurnConfig
from facetalk.livekit_server import LocalLiveKitServer
from facetalk.testing.scripted_llm import ScriptedLLMServer
from facetalk.testing.simulated_user import MIC_RATE

from .conversation import agent_said, join_greeted, scripted_worker
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
    with scripted_worker(livekit_server, scripted_llm, tmp_path_factory.mktemp("worker"), llm_timeout_s=10) as process:
        yield process


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
    user = await join_greeted(livekit_server)
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
    asked_llm = scripted_llm.questions[seen:]
    assert "rain" in asked_llm[-1], asked_llm
    heard = transcribe(user.audio.between(first_reply - 0.2, first_reply + 3.0)).lower()
    assert "never" in heard, (heard, agent_said(user, after=asked.start), first_reply - asked.end)


async def test_slow_llm_gets_a_filler_then_its_answer(
    livekit_server: LocalLiveKitServer, worker: subprocess.Popen[bytes], scripted_llm: ScriptedLLMServer
) -> None:
    """The turn ends and the avatar shows it is thinking; no token after filler_after_s: the
    persona's filler plays, then the late answer, in that order."""
    user = await join_greeted(livekit_server)
    scripted_llm.mode = "slow"
    try:
        asked = await user.say(speak("What is your name?"))
        # The reply's transcript is final once its audio has played.
        await user.wait_until(lambda: "astra" in agent_said(user, after=asked.end), timeout=30)
        await user.wait_until(lambda: user.agent_label() != "speaking", timeout=10)
    finally:
        scripted_llm.mode = "ok"
        await user.leave()

    said = agent_said(user, after=asked.end)
    assert "think" in said and said.index("think") < said.index("astra"), said
    start, end = user.audio.loud_span(after=asked.end)
    thinking = [t for t, label in user.label_changes() if label == "thinking" and t > asked.end]
    assert thinking and thinking[0] < start, f"no thinking state before the filler: {user.label_changes()}"
    heard = transcribe(user.audio.between(start - 0.2, end + 0.2)).lower()
    assert "think" in heard, f"the filler was not heard: {heard!r}"
    assert "name" in heard, f"the late answer was not heard: {heard!r}"
    assert heard.index("think") < heard.rindex("name"), heard

