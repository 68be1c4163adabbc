"""The FaceTalk worker: one ``AgentSession`` per room, with the avatar as its voice.

livekit-agents does the heavy lifting: dispatch of rooms to workers, turn
detection, interruption and metrics. This module only assembles the pieces a
pipeline config names:

    user audio ─▶ VAD + STT ─▶ PersonaAgent (LLM) ─▶ TTS ─▶ QueueAudioOutput
                                                               │
                 session state events ─▶ AvatarStateDriver ─▶ avatar generator
                                                               │
                                             AvatarPublisher ─▶ room (audio + video)

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
import functools
import logging
import math
import os
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

from ..config import PipelineConfig, TTSConfig, WorkerConfig, load_pipeline
from ..dialogue.avatar_state import AvatarStateDriver
from ..dialogue.persona_agent import PersonaAgent
from ..dialogue.personas import PersonaChoice
from ..dialogue.turn_policy import AEC_WARMUP_S, MIC_FRAME_MS, turn_handling
from ..audio import SPEECH_RATE
from .avatar_output import start_avatar
from .providers import build_llm, build_session_stt, build_stt, build_tts, build_vad, describe
from .turn_metrics import publish_turn_metrics

__all__ = [
    "EMBEDDED_LLM_URL_ENV",
    "PERSONA_ENV",
    "PIPELINE_ENV",
    "SpeechModels",
    "WorkerResources",
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


def prewarm(proc: JobProcess) -> None:
    """Load configs and models once per job process, before any room arrives."""
    proc.userdata["facetalk"] = WorkerResources.from_env()


async def entrypoint(ctx: JobContext) -> None:
    """Run one conversation in ``ctx.room`` until the user leaves."""
    resources: WorkerResources = ctx.proc.userdata.get("facetalk") or WorkerResources.from_env()
    pipeline, models = resources.pipeline, resources.models
    await ctx.connect()
    try:
        user = await asyncio.wait_for(ctx.wait_for_participant(), timeout=_USER_WAIT_S)
    except TimeoutError:
        logger.info("no user joined %s within %.0f s; leaving it", ctx.room.name, _USER_WAIT_S)
        ctx.shutdown("no user joined")
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

    set_label = await start_avatar(ctx, session, persona, pipeline)
    states = AvatarStateDriver(idle_after_s=pipeline.turn.idle_after_s, on_label=set_label)
    states.attach(session)

    async def stop_states() -> None:
        states.detach(session)

    ctx.add_shutdown_callback(stop_states)
    publish_turn_metrics(ctx, session)
    # One conversation per room: when the user leaves, the room is deleted, the
    # job ends and its memory is freed; a user who comes back gets a new room,
    # hence a fresh job and session.
    await session.start(
        PersonaAgent(persona, filler_after_s=pipeline.turn.filler_after_s),
        room=ctx.room,
        room_options=RoomOptions(
            participant_identity=user.identity,
            audio_input=AudioInputOptions(sample_rate=SPEECH_RATE, frame_size_ms=MIC_FRAME_MS),
            close_on_disconnect=True,
            delete_room_on_close=True,
        ),
    )


# LiveKit's server dispatches a room only to workers whose reported load is
# below its target load (``agents.target_load``, 0.7 by default).
_SERVER_TARGET_LOAD = 0.7


@dataclass
class _RoomsLoad:
    """The worker's load as rooms in use / ``max_rooms``; logs when it fills up and frees again."""

    max_rooms: int
    full: bool = False

    def __call__(self, server: AgentServer) -> float:
        rooms = len(server.active_jobs)
        if (rooms >= self.max_rooms) != self.full:
            self.full = not self.full
            if self.full:
                logger.warning(
                    "all %d rooms in use: LiveKit sends new rooms to other workers, and if none "
                    "is free 'facetalk web' tells users that all avatars are busy",
                    self.max_rooms,
                )
            else:
                logger.info("a room is free again (%d of %d in use)", rooms, self.max_rooms)
        return _SERVER_TARGET_LOAD * rooms / self.max_rooms


def create_server(config: WorkerConfig) -> AgentServer:
    """An ``AgentServer`` running :func:`entrypoint`, keys from ``LIVEKIT_*``.

    With ``max_rooms``, load is the share of rooms in use, scaled so that the
    worker reads as full to the LiveKit server exactly at ``max_rooms``. The
    worker's own threshold is then infinite: livekit-agents would otherwise
    count each room it is still launching as a whole threshold's worth of
    load and refuse users who join at the same moment.
    """
    capacity = {}
    if config.max_rooms is not None:
        capacity = {"load_fnc": _RoomsLoad(config.max_rooms), "load_threshold": math.inf}
    server = AgentServer(
        setup_fnc=prewarm,
        initialize_process_timeout=60.0,
        num_idle_processes=config.num_idle_processes,
        port=config.http_port,
        drain_timeout=config.drain_timeout_s,
        **capacity,
    )
    admit = None if config.max_rooms is None else functools.partial(_admit_within, server, config.max_rooms)
    server.rtc_session(entrypoint, on_request=admit)
    return server


async def _admit_within(server: AgentServer, max_rooms: int, request: JobRequest) -> None:
    """Accept a room only below ``max_rooms``: the LiveKit server may still offer one to a
    worker that reported itself full (its load report is periodic), and an agent that
    joined anyway would make every room on the worker slow."""
    if len(server.active_jobs) >= max_rooms:
        logger.warning("refusing room %s: all %d rooms in use", request.room.name, max_rooms)
        await request.reject()
        return
    await request.accept()
