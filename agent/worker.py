"""The FaceTalk worker: one ``AgentSession`` per room, with the avatar as its voice.

livekit-agents does the heavy lifting: dispatch of rooms to workers, turn
detection, interruption and metrics. This module only assembles the pieces a
pipeline config names:

    user audio ─▶ VAD + STT ─▶ PersonaAgent (LLM) ─▶ TTS ─▶ QueueAudioOutput
                                                               │
                 session state events ─▶ AvatarStateDriver ─▶ avatar generator
                                                               │
                                             AvatarPublisher ─▶ room (audio + video)

The avatar half is :class:`facetalk.AvatarSession`, the same class any
livekit-agents agent uses; with ``avatar.placement: remote`` it is an avatar
worker that LiveKit dispatches (:mod:`.avatar_dispatch`).

The README's "Architecture" section follows one audio frame through all modules.

The conversation's rules live in ``dialogue/``: the turn settings
(:mod:`.turn_policy`), who the user talks to (:mod:`.personas`), the avatar's
label (:mod:`.avatar_state`) and the persona's manners (:mod:`.persona_agent`).

Configs reach job processes through the environment (``FACETALK_PERSONA``,
``FACETALK_PIPELINE``), because livekit-agents starts jobs in fresh processes.
Models load once per process, in :func:`prewarm`, not once per room.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from livekit.agents import (
    AgentServer,
    AgentSession,
    APIConnectOptions,
    JobContext,
    JobProcess,
    JobRequest,
    stt,
    tts,
    vad,
)
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.agents.voice.room_io import AudioInputOptions, RoomOptions

from ..config import PersonaConfig, PipelineConfig, TTSConfig, WorkerConfig, load_pipeline
from ..dialogue.persona_agent import PersonaAgent
from ..dialogue.personas import PersonaChoice
from ..dialogue.protocol import PERSONA_ATTRIBUTE
from ..dialogue.turn_policy import AEC_WARMUP_S, MIC_FRAME_MS, turn_handling
from ..audio import SPEECH_RATE
from ..avatar_session import AvatarSession
from .capacity import admit_room, capacity_server
from .providers import build_llm, build_session_stt, build_stt, build_tts, build_vad, describe
from .room_claim import RoomClaim
from .turn_metrics import publish_turn_metrics

__all__ = [
    "EMBEDDED_LLM_URL_ENV",
    "PERSONA_ENV",
    "PIPELINE_ENV",
    "SpeechModels",
    "WorkerResources",
    "avatar_for",
    "create_server",
    "entrypoint",
    "prewarm",
]

logger = logging.getLogger("facetalk.agent")

PERSONA_ENV = "FACETALK_PERSONA"
PIPELINE_ENV = "FACETALK_PIPELINE"
EMBEDDED_LLM_URL_ENV = "FACETALK_EMBEDDED_LLM_URL"

# A failing LLM endpoint must not keep the user waiting: one try, a short
# timeout, then PersonaAgent apologises.
_LLM_CONN_OPTIONS = APIConnectOptions(max_retry=0, timeout=8.0)


@dataclass(frozen=True)
class SpeechModels:
    """The VAD, STT and TTS one worker process loads once and shares between its rooms."""

    vad: vad.VAD
    stt: stt.STT
    tts: tts.TTS
    tts_config: TTSConfig
    voice: str

    @classmethod
    def load(cls, pipeline: PipelineConfig, voice: str) -> SpeechModels:
        """Build the pipeline's models, the TTS speaking ``voice`` (blocking: meant for prewarm)."""
        return cls(
            vad=build_vad(pipeline.vad),
            stt=build_stt(pipeline.stt),
            tts=build_tts(pipeline.tts, voice),
            tts_config=pipeline.tts,
            voice=voice,
        )

    def tts_for(self, voice: str) -> tts.TTS:
        """The shared TTS, or one for a persona with another voice (voices are cached)."""
        if voice == self.voice:
            return self.tts
        return build_tts(self.tts_config, voice)


@dataclass(frozen=True)
class WorkerResources:
    """What one worker process loads once: its pipeline, speech models and persona choice."""

    pipeline: PipelineConfig
    models: SpeechModels
    personas: PersonaChoice

    @classmethod
    def load(cls, persona_path: str | Path, pipeline_path: str | Path) -> WorkerResources:
        personas = PersonaChoice.load(persona_path)
        pipeline = load_pipeline(pipeline_path)
        return cls(pipeline, SpeechModels.load(pipeline, personas.default.voice), personas)

    @classmethod
    def from_env(cls) -> WorkerResources:
        return cls.load(os.environ[PERSONA_ENV], os.environ[PIPELINE_ENV])


_USER_WAIT_S = 60.0
"""How long an agent waits in a room for its user. ``facetalk web`` opens the room
before the user joins (to know an agent is free); a user who never comes must
not hold the room's place on the worker."""


def avatar_for(resources: WorkerResources, user_attributes: Mapping[str, str], persona: PersonaConfig) -> AvatarSession:
    """The avatar of the pipeline's placement for ``persona``, the one the user was given.

    A remote avatar takes an id: the user's chosen one, unless they got the default.
    """
    pipeline = resources.pipeline
    if pipeline.avatar.placement == "remote":
        choice = resources.personas
        chosen = user_attributes.get(PERSONA_ATTRIBUTE, "")
        return AvatarSession(
            persona=choice.catalog.default_id if persona is choice.default or not chosen else chosen,
            placement="remote",
            agent_name=pipeline.avatar.agent_name,
            join_timeout=pipeline.avatar.join_timeout_s,
            idle_after_s=pipeline.turn.idle_after_s,
        )
    return AvatarSession(persona=persona, avatar=pipeline.avatar, idle_after_s=pipeline.turn.idle_after_s)


def prewarm(proc: JobProcess) -> None:
    """Load configs and models once per job process, before any room arrives."""
    proc.userdata["facetalk"] = WorkerResources.from_env()


async def entrypoint(ctx: JobContext) -> None:
    """Run one conversation in ``ctx.room`` until the user leaves."""
    resources: WorkerResources = ctx.proc.userdata.get("facetalk") or WorkerResources.from_env()
    pipeline, models = resources.pipeline, resources.models
    since = time.time()
    await ctx.connect()
    claim = RoomClaim(ctx.room, since, on_older_agent=lambda _: ctx.shutdown("an older FaceTalk agent holds the room"))
    await claim.start()
    try:
        user = await asyncio.wait_for(ctx.wait_for_participant(), timeout=_USER_WAIT_S)
    except TimeoutError:
        logger.info("no user joined %s within %.0f s; leaving it", ctx.room.name, _USER_WAIT_S)
        ctx.shutdown("no user joined")
        return
    if claim.yielded:
        return
    persona = resources.personas.persona_for(user.attributes)
    logger.info("talking in %s as %s (%s)", ctx.room.name, persona.name, describe(pipeline))

    # One VAD decision serves the session (interruptions, the user's state) and the STT.
    listening = build_session_stt(pipeline.stt, stt=models.stt, vad=models.vad)
    session: AgentSession = AgentSession(
        vad=listening.vad,
        stt=listening,
        llm=build_llm(pipeline.llm, embedded_base_url=os.environ.get(EMBEDDED_LLM_URL_ENV)),
        tts=models.tts_for(persona.voice),
        turn_handling=turn_handling(pipeline.turn),
        aec_warmup_duration=AEC_WARMUP_S,
        conn_options=SessionConnectOptions(llm_conn_options=_LLM_CONN_OPTIONS),
    )

    await avatar_for(resources, user.attributes, persona).start(session, room=ctx.room)
    publish_turn_metrics(ctx, session)
    # One conversation per room: when the user leaves, the room is deleted, the
    # job ends and its memory is freed; a user who comes back gets a new room,
    # hence a fresh job and session. An agent that yields the room to an older
    # one leaves the room as it is (RoomOptions.delete_room_on_close can't tell).
    session.on("close", lambda _: None if claim.yielded else ctx.delete_room())
    await session.start(
        PersonaAgent(persona, filler_after_s=pipeline.turn.filler_after_s),
        room=ctx.room,
        room_options=RoomOptions(
            participant_identity=user.identity,
            audio_input=AudioInputOptions(sample_rate=SPEECH_RATE, frame_size_ms=MIC_FRAME_MS),
            close_on_disconnect=True,
        ),
    )


def create_server(config: WorkerConfig) -> AgentServer:
    """An ``AgentServer`` running :func:`entrypoint`, keys from ``LIVEKIT_*``.

    With ``max_rooms``, load is the share of rooms in use and each room is
    admitted only below ``max_rooms`` (:mod:`.capacity`); None leaves
    livekit-agents' own CPU-based load.
    """
    server, rooms = capacity_server(
        config,
        setup_fnc=prewarm,
        when_full="LiveKit sends new rooms to other workers, and if none is free "
        "'facetalk web' tells users that all avatars are busy",
    )

    async def admit(request: JobRequest) -> None:
        await admit_room(rooms, server, request)

    server.rtc_session(entrypoint, on_request=admit)
    return server
