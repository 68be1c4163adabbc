"""Is an avatar free? Open the user's room first and see whether an agent comes.

LiveKit dispatches a room to a worker only while the worker reports spare
load (FaceTalk's workers report rooms in use / ``max_rooms``). When every
worker is full, the room simply gets no agent, and a user who joined it would
sit in silence. No public API tells a token server the workers' load, but the
outcome is observable: :class:`AgentAvailability` creates the room through
the server API before the user has a token (which dispatches it, as a join
would), and waits a bounded time for an agent participant. If none comes,
every worker is busy and the caller tells the user, who may wait and ask
again. The room is kept for that retry: an agent that was only slow (a worker
starting a fresh job process) joins it meanwhile and is used; a room still
without an agent is deleted and a fresh one opened, which LiveKit dispatches
anew (it dispatches a room once, when it is created).

The agent, for its part, waits only a bounded time for the user to join the
room it was sent to (see ``facetalk.agent.worker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
from livekit import api

from .config import LiveKitConfig
from .errors import FaceTalkError

__all__ = ["AgentAvailability", "LiveKitUnavailableError"]

logger = logging.getLogger("facetalk.availability")

_POLL_S = 0.1


class LiveKitUnavailableError(FaceTalkError):
    """The LiveKit server could not be asked: unreachable, or it refused our keys."""


def _http_url(url: str) -> str:
    """The server API's URL for a signalling URL (ws → http, wss → https)."""
    return "http" + url.removeprefix("ws") if url.startswith("ws") else url


@dataclass
class AgentAvailability:
    """Opens rooms for users and reports whether an agent took them within ``agent_wait_s``."""

    livekit: LiveKitConfig
    agent_wait_s: float = 1.5
    """How long an agent may take to join a fresh room before the workers count as
    full. A free worker's pre-warmed process joins in well under a second."""
    room_empty_timeout_s: int = 60
    """How long an unused room lives (LiveKit's ``empty_timeout``)."""

    async def open_room(self, room: str) -> bool:
        """Create ``room``; True once an agent is in it, False if none came within ``agent_wait_s``.

        A room left waiting stays open, so that an agent that was merely slow
        (a worker starting a fresh process) is not wasted: :meth:`retry_room`.
        """
        with self._translated_errors():
            async with self._api() as lk:
                await lk.room.create_room(
                    api.CreateRoomRequest(name=room, empty_timeout=self.room_empty_timeout_s, departure_timeout=5)
                )
                started = time.monotonic()
                while time.monotonic() - started < self.agent_wait_s:
                    if await self._only_agents_in(lk, room) is True:
                        return True
                    await asyncio.sleep(_POLL_S)
        logger.warning(
            "no agent joined %s within %.1f s: every worker is at max_rooms; telling the user",
            room,
            self.agent_wait_s,
        )
        return False

    async def retry_room(self, room: str) -> bool:
        """True if an agent has joined ``room`` since and no user has; an empty room is deleted."""
        with self._translated_errors():
            async with self._api() as lk:
                present = await self._only_agents_in(lk, room)
                if present is None:  # still empty: LiveKit will not dispatch it again
                    with contextlib.suppress(api.TwirpError):  # already gone
                        await lk.room.delete_room(api.DeleteRoomRequest(room=room))
        return present is True

    @staticmethod
    async def _only_agents_in(lk: api.LiveKitAPI, room: str) -> bool | None:
        """True: agents only; False: a user is in it (not ours to hand out); None: nobody."""
        try:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
        except api.TwirpError as e:
            if e.status == 404:
                return None
            raise
        if not listed.participants:
            return None
        return all(p.kind == api.ParticipantInfo.Kind.AGENT for p in listed.participants)

    def _api(self) -> api.LiveKitAPI:
        return api.LiveKitAPI(
            _http_url(self.livekit.url), self.livekit.api_key, self.livekit.api_secret.get_secret_value()
        )

    @contextlib.contextmanager
    def _translated_errors(self) -> Iterator[None]:
        """The server API's failures as :class:`LiveKitUnavailableError`, saying what to check."""
        try:
            yield
        except api.TwirpError as e:
            if e.status in (401, 403):
                raise LiveKitUnavailableError(
                    f"The LiveKit server refused the token of 'facetalk web' ({e.message})",
                    hint="check that 'facetalk web' and the server use the same API key and secret",
                ) from e
            raise LiveKitUnavailableError(f"The LiveKit server failed: {e.message}") from e
        except (aiohttp.ClientError, OSError) as e:
            raise LiveKitUnavailableError(
                f"Cannot reach the LiveKit server at {self.livekit.url}. Is it running? ({e})",
                hint="start it ('facetalk server run' or 'make demo') or set LIVEKIT_URL",
            ) from e
