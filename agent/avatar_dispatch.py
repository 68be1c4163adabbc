"""Remote avatars on LiveKit's explicit agent dispatch: the contract between agent and avatar worker.

The agent (:class:`facetalk.AvatarSession` with ``placement="remote"``) asks
LiveKit for an avatar with :func:`request_avatar`; LiveKit offers the job to a
worker registered under :data:`AVATAR_AGENT_NAME` that is not full
(:mod:`.remote_avatar`, ``facetalk avatar-worker``). The dispatch metadata, an
:class:`AvatarJob`, tells that worker which persona to animate, whose audio to
take and which identity to join as.

LiveKit's ``CreateDispatch`` succeeds even when no such worker exists, and a
dispatch is not retried when one registers later; so the agent learns that no
avatar is coming only by waiting for it (:func:`wait_for_avatar`, bounded),
and :func:`describe_dispatch` then says why, from the dispatch's job states.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from livekit import api, rtc
from livekit.agents import utils
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import AvatarConfig
from ..dialogue.personas import PERSONA_ID_PATTERN
from ..errors import FaceTalkError

__all__ = [
    "AVATAR_AGENT_NAME",
    "AVATAR_ERROR_ATTRIBUTE",
    "AVATAR_PERSONA_ATTRIBUTE",
    "AVATAR_WORKER_ATTRIBUTE",
    "AvatarJob",
    "avatar_identity",
    "describe_dispatch",
    "request_avatar",
    "wait_for_avatar",
]

AVATAR_AGENT_NAME = AvatarConfig().agent_name
"""The agent name avatar workers register under, unless a pipeline names another."""

AVATAR_ERROR_ATTRIBUTE = "facetalk.avatar_error"
"""Avatar participant attribute, set at join when it cannot serve the job (an unknown persona).
Join attributes arrive with ``participant_connected``, so the agent reads it without a race."""

AVATAR_PERSONA_ATTRIBUTE = "facetalk.avatar_persona"
"""Avatar participant attribute: the persona id it animates, set at join when its worker knows it,
so clients and the agent can tell which face the room got without reading the dispatch."""

AVATAR_WORKER_ATTRIBUTE = "facetalk.avatar_worker"
"""Avatar participant attribute: the id of the avatar worker serving it (for logs and tests)."""


def avatar_identity(room_name: str) -> str:
    """The avatar participant's identity in ``room_name``."""
    return f"facetalk-avatar-{room_name}"


class AvatarJob(BaseModel):
    """What one remote avatar must do; JSON in the dispatch's metadata."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    persona: str = Field(pattern=f"^{PERSONA_ID_PATTERN}$", description="A persona id the avatar workers know.")
    agent_identity: str = Field(min_length=1, description="The only sender accepted; the avatar publishes for it.")
    avatar_identity: str = Field(min_length=1, description="Chosen by the agent, so it can address the avatar at once.")

    def to_metadata(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_metadata(cls, metadata: str) -> AvatarJob:
        """Parse a dispatch's metadata, or raise :class:`FaceTalkError` saying what is wrong."""
        try:
            return cls.model_validate_json(metadata or "{}")
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'metadata'}: {err['msg']}" for err in e.errors())
            raise FaceTalkError(
                f"not a FaceTalk avatar job ({problems}): {metadata[:200]!r}",
                hint="dispatch avatars with facetalk.AvatarSession(placement='remote') of the same FaceTalk version",
            ) from None


async def request_avatar(lkapi: api.LiveKitAPI, room_name: str, job: AvatarJob, agent_name: str) -> api.AgentDispatch:
    """Ask LiveKit to dispatch an avatar worker named ``agent_name`` to ``room_name``."""
    return await lkapi.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name=agent_name, room=room_name, metadata=job.to_metadata())
    )


async def wait_for_avatar(room: rtc.Room, job: AvatarJob, timeout: float) -> rtc.RemoteParticipant:
    """The avatar participant once it has joined; :class:`TimeoutError` after ``timeout`` s."""
    return await asyncio.wait_for(utils.wait_for_participant(room, identity=job.avatar_identity), timeout)


async def describe_dispatch(lkapi: api.LiveKitAPI, dispatch: api.AgentDispatch) -> str:
    """Why a dispatched avatar did not join, as far as LiveKit knows."""
    current = await lkapi.agent_dispatch.get_dispatch(dispatch.id, dispatch.room)
    jobs = list(current.state.jobs) if current is not None else []
    if not jobs:
        return (
            f"no avatar worker registered as {dispatch.agent_name!r} took the job "
            "(none running, or all full; start one with 'facetalk avatar-worker start')"
        )
    state = jobs[-1].state
    status = api.JobStatus.Name(state.status)
    return f"avatar worker {state.worker_id or '?'} took the job ({status}) but its avatar did not join"
