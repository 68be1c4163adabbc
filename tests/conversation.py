"""What the end-to-end tests of a conversation share: a worker on the scripted LLM, a greeted user,
and what the agent said."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path


from facetalk.config import load_persona
from facetalk.eval.mouth import MouthRegion
from facetalk.livekit_server import LocalLiveKitServer
from facetalk.resources import PACKAGED_CONFIGS
from facetalk.testing.local_stack import running_worker
from facetalk.testing.scripted_llm import ScriptedLLMServer
from facetalk.testing.simulated_user import SimulatedUser, Utterance

from .speech import transcribe, word_error_rate

__all__ = ["agent_said", "assert_lip_synced_answer", "join_greeted", "scripted_worker"]


@contextlib.contextmanager
def scripted_worker(
    livekit_server: LocalLiveKitServer, scripted_llm: ScriptedLLMServer, folder: Path, *, llm_timeout_s: float
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker with the shipped settings whose LLM is ``scripted_llm``, timing out after ``llm_timeout_s``."""
    pipeline = {"llm": scripted_llm.llm_section(timeout_s=llm_timeout_s)}
    with running_worker(livekit_server, pipeline, folder) as process:
        yield process


async def join_greeted(livekit_server: LocalLiveKitServer, room: str | None = None) -> SimulatedUser:
    """A user, ``person``, in a new (or the given) room, once the agent has greeted them."""
    user = SimulatedUser()
    room = room or f"e2e-{uuid.uuid4().hex[:8]}"
    await user.join(livekit_server.url, livekit_server.token("person", room))
    await user.wait_for_greeting()
    return user


def agent_said(user: SimulatedUser, after: float) -> str:
    """The agent's final transcripts received after ``after``, lower-cased (not the greeting)."""
    return " ".join(
        text for t, who, text, final in user.transcripts if t > after and who != "person" and final
    ).lower()


def assert_lip_synced_answer(user: SimulatedUser, asked: Utterance, expected: str) -> None:
    """The user heard ``expected`` after asking (one word in four may be off: tiny.en hears "Astra"
    as "Aster"), and the avatar's mouth moved while it answered far more than while the user asked."""
    start, end = user.audio.loud_span(after=asked.end)
    answer = transcribe(user.audio.between(start - 0.2, end + 0.2))
    assert word_error_rate(expected, answer) <= 0.25, answer
    mouth = MouthRegion.for_persona(load_persona(PACKAGED_CONFIGS / "persona.yaml"), user.video)
    while_agent_speaks = mouth.motion(user.video, start + 0.3, end - 0.3)
    while_user_speaks = mouth.motion(user.video, asked.start + 0.3, asked.end - 0.1)
    assert while_agent_speaks > 3 * max(while_user_speaks, 0.2), (while_agent_speaks, while_user_speaks)

