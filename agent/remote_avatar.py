"""The avatar worker: remote avatars as a livekit-agents worker that LiveKit dispatches.

``facetalk avatar-worker start`` (typically on a GPU machine) registers with
LiveKit under an agent name (``avatar.agent_name``, ``facetalk-avatar``), so
it is never joined to rooms by itself: it gets a job only when an agent asks
for an avatar (:class:`facetalk.AvatarSession` with ``placement="remote"``,
explicit dispatch with an :class:`~.avatar_dispatch.AvatarJob` as metadata).
Several avatar workers share rooms by LiveKit's load balancing; each reports
its rooms in use as its load and passes a room on when full (:mod:`.capacity`).

For each job (:func:`accept_avatar_job`, :func:`avatar_entrypoint`) the avatar
joins as the identity the agent chose, with ``lk.publish_on_behalf`` = the
agent (the LiveKit server mints the token from the accept's attributes), takes
the agent's TTS audio over data streams with its phoneme timing, follows the
agent's label attribute, and publishes audio + video for the agent until the
agent leaves (:func:`run_avatar`). A persona this worker does not know is
reported at join as :data:`~.avatar_dispatch.AVATAR_ERROR_ATTRIBUTE`, so the
agent fails with a clear error rather than waiting.

Configs reach job processes through the environment, as in :mod:`.worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from livekit import rtc
from livekit.agents import AgentServer, AutoSubscribe, JobContext, JobProcess, JobRequest, cli
from livekit.agents.types import ATTRIBUTE_PUBLISH_ON_BEHALF
from livekit.agents.voice.avatar import DataStreamAudioReceiver

from ..avatar import AvatarVideoGenerator, create_video_generator
from ..avatar.labels import Label
from ..config import AvatarConfig, WorkerConfig, load_pipeline
from ..dialogue.personas import PersonaCatalog, UnknownPersonaError
from ..dialogue.protocol import AVATAR_STATE_ATTRIBUTE
from ..errors import FaceTalkError
from .avatar_dispatch import AVATAR_ERROR_ATTRIBUTE, AVATAR_PERSONA_ATTRIBUTE, AVATAR_WORKER_ATTRIBUTE, AvatarJob
from .avatar_publisher import AvatarPublisher
from .capacity import RoomsLoad, admit_room, capacity_server
from .phoneme_stream import PhonemeTimingReceiver

__all__ = [
    "AvatarWorkerSettings",
    "accept_avatar_job",
    "avatar_entrypoint",
    "create_avatar_server",
    "run_avatar",
    "run_avatar_worker_cli",
]

logger = logging.getLogger("facetalk.avatar_worker")

PERSONAS_ENV = "FACETALK_AVATAR_PERSONAS"
PIPELINE_ENV = "FACETALK_AVATAR_PIPELINE"

_REFUSED_STAY_S = 10.0
"""How long an avatar that cannot serve its job stays in the room: long enough for the
agent to read its error attribute, not so long that a room keeps a useless participant."""


@dataclass(frozen=True)
class AvatarWorkerSettings:
    """What every avatar job of a worker shares: the personas it knows and the engine settings."""

    personas: PersonaCatalog
    avatar: AvatarConfig

    @classmethod
    def from_env(cls) -> AvatarWorkerSettings:
        pipeline = load_pipeline(os.environ[PIPELINE_ENV])
        return cls(PersonaCatalog(Path(os.environ[PERSONAS_ENV])), pipeline.avatar)


def _prewarm(proc: JobProcess) -> None:
    proc.userdata["facetalk-avatar"] = AvatarWorkerSettings.from_env()


def create_avatar_server(config: WorkerConfig, settings: AvatarWorkerSettings, agent_name: str) -> AgentServer:
    """An ``AgentServer`` for avatar jobs dispatched to ``agent_name``, keys from ``LIVEKIT_*``."""
    server, rooms = capacity_server(
        config, setup_fnc=_prewarm, when_full="LiveKit offers new avatars to other avatar workers"
    )

    async def on_request(request: JobRequest) -> None:
        await accept_avatar_job(server, rooms, settings.personas, request)

    server.rtc_session(avatar_entrypoint, agent_name=agent_name, on_request=on_request)
    return server


async def accept_avatar_job(
    server: AgentServer, rooms: RoomsLoad | None, personas: PersonaCatalog, request: JobRequest
) -> None:
    """Join as the identity the agent chose, publishing for it, with the persona it animates;
    report an unknown persona at join instead."""
    try:
        job = AvatarJob.from_metadata(request.job.metadata)
    except FaceTalkError as e:
        logger.error("refusing an avatar job for room %s: %s", request.room.name, e)
        await request.reject(terminate=True)  # no other avatar worker can read it either
        return
    attributes = {ATTRIBUTE_PUBLISH_ON_BEHALF: job.agent_identity, AVATAR_WORKER_ATTRIBUTE: server.id}
    try:
        personas.get(job.persona)
        attributes[AVATAR_PERSONA_ATTRIBUTE] = job.persona
    except UnknownPersonaError as e:
        logger.error("avatar job for room %s: %s", request.room.name, e.message)
        attributes[AVATAR_ERROR_ATTRIBUTE] = e.message
    await admit_room(
        rooms, server, request, identity=job.avatar_identity, name="FaceTalk avatar", attributes=attributes
    )


async def avatar_entrypoint(ctx: JobContext) -> None:
    """Animate the dispatching agent's audio in ``ctx.room`` until the agent leaves."""
    settings: AvatarWorkerSettings = ctx.proc.userdata.get("facetalk-avatar") or AvatarWorkerSettings.from_env()
    job = AvatarJob.from_metadata(ctx.job.metadata)
    try:
        persona = settings.personas.get(job.persona).config
    except UnknownPersonaError:
        # The error is in our join attributes; stay until the agent has read them.
        await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_agent_left(ctx.room, job.agent_identity), _REFUSED_STAY_S)
        ctx.shutdown("unknown persona")
        return
    video_gen = create_video_generator(persona, settings.avatar)  # before joining: joined means ready
    await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)
    logger.info("avatar of %s in %s for %s", job.persona, ctx.room.name, job.agent_identity)
    await run_avatar(ctx.room, job.agent_identity, video_gen)
    ctx.shutdown("the agent left")


async def run_avatar(room: rtc.Room, agent_identity: str, video_gen: AvatarVideoGenerator) -> None:
    """Publish ``video_gen``'s face for the audio ``agent_identity`` sends, until it leaves.

    ``video_gen`` takes the agent's label attribute: its value when the agent is
    already in the room, then each change.
    """

    def follow(attributes: dict[str, str]) -> None:
        if AVATAR_STATE_ATTRIBUTE in attributes:
            video_gen.set_state(Label(attributes[AVATAR_STATE_ATTRIBUTE]))

    def on_attributes(changed: dict[str, str], participant: rtc.Participant) -> None:
        if participant.identity == agent_identity:
            follow(changed)

    room.on("participant_attributes_changed", on_attributes)
    if (agent := room.remote_participants.get(agent_identity)) is not None:
        follow(dict(agent.attributes))
    publisher = AvatarPublisher(
        room,
        audio_recv=PhonemeTimingReceiver(
            DataStreamAudioReceiver(room, sender_identity=agent_identity), room, sender_identity=agent_identity
        ),
        video_gen=video_gen,
    )
    try:
        await publisher.start()
        await _agent_left(room, agent_identity)
    finally:
        room.off("participant_attributes_changed", on_attributes)
        await publisher.aclose()


async def _agent_left(room: rtc.Room, agent_identity: str) -> None:
    """Return when ``agent_identity`` leaves ``room`` or the room disconnects."""
    left = asyncio.Event()

    def on_left(participant: rtc.RemoteParticipant) -> None:
        if participant.identity == agent_identity:
            left.set()

    room.on("participant_disconnected", on_left)
    room.on("disconnected", left.set)
    try:
        await left.wait()
    finally:
        room.off("participant_disconnected", on_left)
        room.off("disconnected", left.set)


def run_avatar_worker_cli(personas: Path, pipeline: Path, argv: Sequence[str]) -> None:
    """Check the configs, then run livekit-agents' CLI with ``argv`` (e.g. ``["start"]``)."""
    personas_path, pipeline_path = personas.resolve(), pipeline.resolve()
    config = load_pipeline(pipeline_path)
    catalog = PersonaCatalog(personas_path)
    if not catalog.entries():
        raise FaceTalkError(
            f"no valid persona YAML in {personas_path}",
            hint="pass --personas with the folder of your persona files ('facetalk init' writes one)",
        )
    os.environ[PERSONAS_ENV] = str(personas_path)
    os.environ[PIPELINE_ENV] = str(pipeline_path)
    os.environ.setdefault("LIVEKIT_URL", config.livekit.url)
    os.environ.setdefault("LIVEKIT_API_KEY", config.livekit.api_key)
    os.environ.setdefault("LIVEKIT_API_SECRET", config.livekit.api_secret.get_secret_value())
    sys.argv = ["facetalk avatar-worker", *argv]
    settings = AvatarWorkerSettings(catalog, config.avatar)
    cli.run_app(create_avatar_server(config.worker, settings, config.avatar.agent_name))
