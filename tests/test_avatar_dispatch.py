"""Remote avatars on LiveKit's explicit agent dispatch, with two real avatar workers.

Two ``facetalk avatar-worker start`` processes serve one room each, under an
agent name of this module's own. The agent side of each room is this test
process: a participant, a bare ``AgentSession`` (never started: no models) and
``facetalk.AvatarSession(placement="remote")``, which is all an agent does to
get a remote avatar.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from livekit import api, rtc
from livekit.agents import AgentSession
from livekit.agents.types import ATTRIBUTE_PUBLISH_ON_BEHALF
from livekit.agents.worker import UPDATE_STATUS_INTERVAL

import facetalk
from facetalk.agent.avatar_dispatch import AVATAR_PERSONA_ATTRIBUTE, AVATAR_WORKER_ATTRIBUTE
from facetalk.dialogue.personas import UnknownPersonaError
from facetalk.livekit_server import LocalLiveKitServer
from facetalk.testing.local_stack import running_avatar_worker

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

_JOIN_TIMEOUT_S = 90.0
"""Generous: a job process builds the CPU engine before it joins, on a shared 2-core machine."""


@dataclass(frozen=True)
class AvatarWorkers:
    agent_name: str
    logs: list[Path]

    def rooms_freed(self) -> int:
        """How often a worker logged that a room is free again (it reports that load at once)."""
        return sum(log.read_text(errors="replace").count("a room is free again") for log in self.logs)


@pytest.fixture(scope="module")
def avatar_workers(
    livekit_server: LocalLiveKitServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AvatarWorkers]:
    """Two avatar workers of one room each, registered before any test dispatches."""
    agent_name = f"facetalk-avatar-{uuid.uuid4().hex[:8]}"
    folders = [tmp_path_factory.mktemp(f"avatar-worker-{i}") for i in range(2)]
    with contextlib.ExitStack() as stack:
        for folder in folders:
            stack.enter_context(running_avatar_worker(livekit_server, agent_name, folder, max_rooms=1))
        yield AvatarWorkers(agent_name, [folder / "avatar-worker.log" for folder in folders])


@contextlib.asynccontextmanager
async def agent_with_avatar(
    server: LocalLiveKitServer, agent_name: str, *, persona: str = "persona", join_timeout: float = _JOIN_TIMEOUT_S
) -> AsyncIterator[tuple[rtc.Room, AgentSession, facetalk.AvatarSession]]:
    """An agent in a new room that has started a remote avatar (leaving, it releases it)."""
    room_name = f"dispatch-{uuid.uuid4().hex[:8]}"
    token = (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity(f"agent-{room_name}")
        .with_kind("agent")
        .with_grants(api.VideoGrants(room_join=True, room=room_name))
        .to_jwt()
    )
    room = rtc.Room()
    await room.connect(server.url, token)
    session = AgentSession()
    avatar = facetalk.AvatarSession(persona=persona, placement="remote", agent_name=agent_name, join_timeout=join_timeout)
    try:
        await avatar.start(
            session, room, livekit_url=server.url, livekit_api_key=server.api_key, livekit_api_secret=server.api_secret
        )
        yield room, session, avatar
    finally:
        await avatar.aclose()
        await room.disconnect()


async def _until(predicate, timeout: float) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_two_rooms_get_one_avatar_each_from_different_workers(
    livekit_server: LocalLiveKitServer, avatar_workers: AvatarWorkers
) -> None:
    """Asked at the same moment, each room gets exactly one avatar, publishing for its agent with
    the persona it asked for, and the two run in different workers (each has one room: the full one passes the other room on)."""
    async with contextlib.AsyncExitStack() as stack:
        agents = await asyncio.gather(
            *(stack.enter_async_context(agent_with_avatar(livekit_server, avatar_workers.agent_name)) for _ in range(2))
        )
        workers = []
        for room, session, avatar in agents:
            assert avatar.joined and session.output.audio is not None
            avatars = [p for p in room.remote_participants.values() if ATTRIBUTE_PUBLISH_ON_BEHALF in p.attributes]
            assert [p.identity for p in avatars] == [avatar.avatar_identity]
            assert avatars[0].attributes[ATTRIBUTE_PUBLISH_ON_BEHALF] == room.local_participant.identity
            assert avatars[0].attributes[AVATAR_PERSONA_ATTRIBUTE] == "persona"
            workers.append(avatars[0].attributes[AVATAR_WORKER_ATTRIBUTE])
        assert len(set(workers)) == 2, workers
        freed_before = avatar_workers.rooms_freed()
    # Both agents left: their avatars leave, and both workers say their room is free again; LiveKit
    # learns it with the worker's next status report (every UPDATE_STATUS_INTERVAL s), before a
    # later test dispatches (a dispatch that finds every worker full is not retried).
    await _until(lambda: avatar_workers.rooms_freed() >= freed_before + 2, timeout=60)
    await asyncio.sleep(3 * UPDATE_STATUS_INTERVAL)


async def test_an_unknown_persona_is_a_clear_error_from_the_avatar_worker(
    livekit_server: LocalLiveKitServer, avatar_workers: AvatarWorkers
) -> None:
    """The worker does not know the persona: the agent's start() fails at once, naming the
    persona, the ones the workers know, and where to add it."""
    started = time.monotonic()
    with pytest.raises(UnknownPersonaError, match=r"unknown persona 'nobody' \(known: persona, nova") as error:
        async with agent_with_avatar(livekit_server, avatar_workers.agent_name, persona="nobody"):
            pass
    assert "--personas folder" in (error.value.hint or "")
    assert time.monotonic() - started < _JOIN_TIMEOUT_S


async def test_without_an_avatar_worker_the_agent_speaks_without_video_and_says_why(
    livekit_server: LocalLiveKitServer, caplog: pytest.LogCaptureFixture
) -> None:
    """No worker under that name: start() returns after its bounded wait, leaves the session's
    audio to LiveKit's own output, and logs the agent name and that there will be no video."""
    nobody = f"no-such-avatar-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="facetalk.avatar_session"):
        async with agent_with_avatar(livekit_server, nobody, join_timeout=2) as (_, session, avatar):
            took = time.monotonic() - started
            assert not avatar.joined and session.output.audio is None
    assert 2 <= took < 15, took
    warning = caplog.text
    assert nobody in warning and "without video" in warning and "facetalk avatar-worker start" in warning
