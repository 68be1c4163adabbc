"""The avatar as a separate participant: the server that runs it.

The avatar server (:class:`AvatarServer`, ``facetalk avatar-server``),
typically on a GPU machine, takes ``POST /launch`` from the agent's worker
(:mod:`.remote_avatar_client`) and runs :func:`run_avatar_participant`: it
joins the room with the token it was given, receives the agent's TTS audio over
data streams (with its phoneme timing), follows the agent's label attribute,
and publishes audio + video on the agent's behalf (the token's
``lk.publish_on_behalf``) until the agent leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from aiohttp import web
from livekit import rtc
from livekit.agents.types import ATTRIBUTE_PUBLISH_ON_BEHALF
from livekit.agents.voice.avatar import DataStreamAudioReceiver

from ..avatar import create_video_generator
from ..avatar.labels import Label
from ..config import AvatarConfig, PersonaConfig
from ..dialogue.protocol import AVATAR_STATE_ATTRIBUTE
from ..http_service import HTTPService
from .avatar_publisher import AvatarPublisher
from .phoneme_stream import PhonemeTimingReceiver

__all__ = ["AvatarServer", "run_avatar_participant"]

logger = logging.getLogger("facetalk.avatar_server")


async def run_avatar_participant(
    url: str, token: str, persona: PersonaConfig, avatar: AvatarConfig
) -> None:
    """Join with ``token``, animate the agent's audio, leave when the agent does."""
    room = rtc.Room()
    agent_left = asyncio.Event()
    await room.connect(url, token)
    agent_identity = room.local_participant.attributes.get(ATTRIBUTE_PUBLISH_ON_BEHALF, "")
    video_gen = create_video_generator(persona, avatar)

    def follow_label(changed: dict[str, str], participant: rtc.Participant) -> None:
        if participant.identity == agent_identity and AVATAR_STATE_ATTRIBUTE in changed:
            video_gen.set_state(Label(changed[AVATAR_STATE_ATTRIBUTE]))

    def on_left(participant: rtc.RemoteParticipant) -> None:
        if participant.identity == agent_identity:
            agent_left.set()

    room.on("participant_attributes_changed", follow_label)
    room.on("participant_disconnected", on_left)
    room.on("disconnected", lambda *_: agent_left.set())
    publisher = AvatarPublisher(
        room,
        audio_recv=PhonemeTimingReceiver(
            DataStreamAudioReceiver(room, sender_identity=agent_identity), room, sender_identity=agent_identity
        ),
        video_gen=video_gen,
    )
    try:
        await publisher.start()
        await agent_left.wait()
    finally:
        await publisher.aclose()
        await room.disconnect()


@dataclass
class AvatarServer(HTTPService):
    """Serves ``POST /launch`` ({url, token}) and ``GET /health`` on ``host:port``."""

    persona: PersonaConfig
    avatar: AvatarConfig
    host: str = "127.0.0.1"
    port: int = 8089
    _sessions: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/launch", self._launch)
        app.router.add_get("/health", self._health)
        return app

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def aclose(self) -> None:
        for task in self._sessions:
            task.cancel()
        for task in list(self._sessions):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().aclose()

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"sessions": len(self._sessions)})

    async def _launch(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or not {"url", "token"} <= body.keys():
            return web.json_response({"error": "expected JSON {url, token}"}, status=400)
        task = asyncio.create_task(
            run_avatar_participant(body["url"], body["token"], self.persona, self.avatar)
        )
        self._sessions.add(task)
        task.add_done_callback(self._finished)
        return web.json_response({"ok": True})

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._sessions.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("avatar session failed", exc_info=error)
