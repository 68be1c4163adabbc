"""One FaceTalk agent per room, even after the LiveKit server restarts.

A restarted server has forgotten its rooms. The user's client and the agent both
come back by themselves, but whichever reaches the new server first creates the
room again, and when that is the user, LiveKit dispatches a second agent to it.
On a busy machine the old agent is the slower one, and the user then hears two
voices answering every question.

Each agent therefore says when its conversation began, in an attribute, and the
later of two agents leaves. Both sides apply the same rule to the same two
numbers, so exactly one leaves, whichever joins or comes back first. The one
that stays is the one that holds the conversation so far.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from livekit import rtc

from ..dialogue.protocol import AGENT_SINCE_ATTRIBUTE

__all__ = ["RoomClaim"]

logger = logging.getLogger("facetalk.agent")


@dataclass
class RoomClaim:
    """Announces this agent's start time in ``room`` and calls ``on_older_agent``
    (once, with the other agent's identity) when an agent that began earlier is there.

    The rank is (start time, identity), so two agents that began in the same
    instant still agree which one stays.
    """

    room: rtc.Room
    since: float
    on_older_agent: Callable[[str], None]
    yielded: bool = False
    _announcing: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        """Publish the attribute and watch the room; call after the room is connected."""
        self.room.on("participant_connected", self._check)
        self.room.on("participant_attributes_changed", lambda _changed, participant: self._check(participant))
        # A restarted server knows only what the join token said: announce it again.
        self.room.on("reconnected", self._announce_soon)
        await self._announce()
        for participant in list(self.room.remote_participants.values()):
            self._check(participant)

    async def _announce(self) -> None:
        await self.room.local_participant.set_attributes({AGENT_SINCE_ATTRIBUTE: repr(self.since)})

    def _announce_soon(self) -> None:
        task = asyncio.create_task(self._announce())  # event callbacks are synchronous
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)

    def _check(self, participant: rtc.Participant) -> None:
        # The attributes event also reports this agent's own attribute.
        mine = self.room.local_participant.identity
        their_since = participant.attributes.get(AGENT_SINCE_ATTRIBUTE)
        if self.yielded or their_since is None or participant.identity == mine:
            return
        if participant.kind != rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            return
        if (float(their_since), participant.identity) < (self.since, mine):
            self.yielded = True
            logger.warning(
                "%s holds room %s since before this agent joined (a LiveKit server restart "
                "dispatched both); this agent leaves and the conversation stays with it",
                participant.identity,
                self.room.name,
            )
            self.on_older_agent(participant.identity)
