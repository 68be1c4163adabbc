"""What the end-to-end tests of a conversation share: a worker on the scripted LLM, a greeted user,
and what the agent said."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

from facetalk.livekit_server import LocalLiveKitServer
from facetalk.testing.local_stack import running_worker
from facetalk.testing.scripted_llm import ScriptedLLMServer
from facetalk.testing.simulated_user import SimulatedUser

__all__ = ["agent_said", "join_greeted", "scripted_worker"]


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
