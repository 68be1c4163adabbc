"""A worker's capacity in rooms: the load it reports to LiveKit and the jobs it admits.

Both of FaceTalk's livekit-agents workers (the agent, :mod:`.worker`, and the
avatar, :mod:`.remote_avatar`) share their machine between at most
``max_rooms`` rooms. How LiveKit's server (v1.13) uses a worker's load:

- a node gets a job only while some worker on it reads below
  ``agents.target_load`` (0.7), so :class:`RoomsLoad` reads exactly 0.7 when
  every room is in use;
- among a node's available workers one is picked at random, weighted by
  ``1 - load``, so a full worker may still be offered a job; and its status
  report is periodic (every 2.5 s in livekit-agents 1.8), so several rooms can
  arrive between reports.

Hence :meth:`RoomsLoad.admit`: it counts the rooms it is still accepting, and
refuses with ``terminate=False``, which tells LiveKit to offer the job to
another worker (``terminate=True``, livekit-agents' default, ends the dispatch).
The worker's own ``load_threshold`` stays infinite: livekit-agents would
otherwise count each room still launching as a whole threshold's worth of load
and refuse rooms that arrive together.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import AgentServer, JobProcess, JobRequest

from ..config import WorkerConfig

__all__ = ["SERVER_TARGET_LOAD", "RoomsLoad", "admit_room", "capacity_server"]

logger = logging.getLogger("facetalk.capacity")

SERVER_TARGET_LOAD = 0.7
"""LiveKit server's default ``agents.target_load``: workers at or above it get no new jobs."""


@dataclass
class RoomsLoad:
    """Load as rooms in use / ``max_rooms`` (pass it as ``load_fnc``), and the admission guard.

    ``when_full`` finishes the warning logged when the last room fills up: what
    happens to the next one.
    """

    max_rooms: int
    when_full: str = "LiveKit sends new rooms to other workers"
    full: bool = field(default=False, init=False)
    accepting: int = field(default=0, init=False)
    """Rooms accepted but not yet running (``accept()`` returns once the job is launched)."""

    def __call__(self, server: AgentServer) -> float:
        rooms = len(server.active_jobs)
        if (rooms >= self.max_rooms) != self.full:
            self.full = not self.full
            if self.full:
                logger.warning("all %d rooms in use: %s", self.max_rooms, self.when_full)
            else:
                logger.info("a room is free again (%d of %d in use)", rooms, self.max_rooms)
        if self.full:
            return SERVER_TARGET_LOAD  # exactly: 0.7 * 3 / 3 is 0.6999..., which LiveKit reads as free
        return SERVER_TARGET_LOAD * rooms / self.max_rooms

    def server_options(self) -> dict[str, Any]:
        """``AgentServer`` keyword arguments: this load, and no threshold of livekit-agents' own."""
        return {"load_fnc": self, "load_threshold": math.inf}

    def has_room(self, server: AgentServer) -> bool:
        """Whether one more room fits, counting the ones being accepted."""
        return len(server.active_jobs) + self.accepting < self.max_rooms

    async def admit(self, server: AgentServer, request: JobRequest, **accept: Any) -> bool:
        """Accept ``request`` (with ``accept``'s arguments) if a room is free, else pass it on.

        Nothing is awaited between the check and the count, so simultaneous
        requests cannot overfill the worker.
        """
        if not self.has_room(server):
            logger.warning("passing room %s on: all %d rooms in use", request.room.name, self.max_rooms)
            await request.reject(terminate=False)
            return False
        self.accepting += 1
        try:
            await request.accept(**accept)
        finally:
            self.accepting -= 1
        return True


def capacity_server(
    config: WorkerConfig, *, setup_fnc: Callable[[JobProcess], Any], when_full: str
) -> tuple[AgentServer, RoomsLoad | None]:
    """An ``AgentServer`` with ``config``'s capacity, and its :class:`RoomsLoad` (None: livekit's CPU load).

    Register its session with ``on_request`` calling :func:`admit_room`.
    """
    rooms = None if config.max_rooms is None else RoomsLoad(config.max_rooms, when_full=when_full)
    server = AgentServer(
        setup_fnc=setup_fnc,
        initialize_process_timeout=60.0,  # loading models on a busy CPU takes longer than livekit's 10 s
        num_idle_processes=config.num_idle_processes,
        port=config.http_port,
        drain_timeout=config.drain_timeout_s,
        **(rooms.server_options() if rooms is not None else {}),
    )
    return server, rooms


async def admit_room(rooms: RoomsLoad | None, server: AgentServer, request: JobRequest, **accept: Any) -> bool:
    """:meth:`RoomsLoad.admit`, or a plain accept for a worker on livekit-agents' own load."""
    if rooms is None:
        await request.accept(**accept)
        return True
    return await rooms.admit(server, request, **accept)
