"""``facetalk.AvatarSession``: a FaceTalk face for any livekit-agents ``AgentSession``.

The shape of livekit-agents' avatar plugins (``livekit.plugins.bithuman.AvatarSession``)::

    avatar = facetalk.AvatarSession(persona="nova")           # or placement="remote"
    await avatar.start(session, room=ctx.room)                # before session.start()
    await session.start(agent, room=ctx.room)

``in-process`` (bitHuman's local mode): the session's TTS audio goes into a
``QueueAudioOutput``, and an :class:`~facetalk.agent.avatar_publisher.AvatarPublisher`
in this process renders it and publishes audio + video as the agent's own
participant. Interrupting the agent clears that queue, which clears the
generator.

``remote`` (bitHuman's cloud mode, on a GPU machine): LiveKit dispatches an
avatar worker (``facetalk avatar-worker``, :mod:`facetalk.agent.avatar_dispatch`)
that joins as its own participant publishing for the agent
(``lk.publish_on_behalf``); the audio travels to it over data streams, with
the TTS's phoneme timing (:mod:`facetalk.agent.phoneme_stream`), and
interruptions as livekit-agents' ``lk.clear_buffer`` RPC. If no avatar joins
within ``join_timeout`` s, the agent talks without video and says why in the
log: livekit-agents' ``DataStreamAudioOutput`` waits for its avatar without a
timeout, so it is installed only once the avatar is there.

Either way the avatar's label (listening, thinking, speaking, idle) follows the
session's state events (:class:`~facetalk.dialogue.avatar_state.AvatarStateDriver`)
and is published as the agent's participant attribute for remote avatars and
clients. The base class ``livekit.agents.voice.avatar.AvatarSession`` is not
used: its ``aclose`` removes the participant ``avatar_identity`` from the room,
which in process is the agent itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from livekit import api, rtc
from livekit.agents import AgentSession, get_job_context, utils
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.voice.avatar import DataStreamAudioOutput, QueueAudioOutput

from .agent.avatar_dispatch import (
    AVATAR_AGENT_NAME,
    AVATAR_ERROR_ATTRIBUTE,
    AvatarJob,
    avatar_identity,
    describe_dispatch,
    request_avatar,
    wait_for_avatar,
)
from .agent.avatar_publisher import AvatarPublisher
from .agent.phoneme_stream import PhonemeTimingOutput
from .avatar import create_video_generator
from .avatar.labels import Label
from .config import AvatarConfig, PersonaConfig, TurnConfig, load_persona
from .dialogue.avatar_state import AvatarStateDriver
from .dialogue.personas import PERSONA_ID_PATTERN, PersonaCatalog, UnknownPersonaError
from .dialogue.protocol import AVATAR_STATE_ATTRIBUTE
from .errors import FaceTalkError
from .resources import default_config

__all__ = ["AvatarSession", "Placement"]

logger = logging.getLogger("facetalk.avatar_session")

Placement = Literal["in-process", "remote"]


class AvatarSession:
    """A FaceTalk avatar that speaks an ``AgentSession``'s audio in a LiveKit room.

    Args:
        persona: a persona id (the stem of a YAML in ``./configs`` or the bundled
            configs), a persona YAML path, or a :class:`~facetalk.config.PersonaConfig`.
            Remote avatars take an id, which the avatar workers resolve in their own folder.
        placement: ``"in-process"`` renders in this process; ``"remote"`` has LiveKit
            dispatch an avatar worker.
        avatar: in-process engine settings (engine, resolution, fps); defaults to the CPU engine.
        agent_name: remote: the agent name the avatar workers registered under.
        join_timeout: remote: seconds to wait for the avatar before talking without video.
        idle_after_s: seconds of quiet after which the avatar looks idle.

    Raises :class:`~facetalk.config.ConfigError` for a persona file that does not
    validate (a portrait that does not exist), :class:`UnknownPersonaError` for an
    unknown id, and :class:`FaceTalkError` for a remote avatar given a path or config.
    """

    def __init__(
        self,
        *,
        persona: str | Path | PersonaConfig = "persona",
        placement: Placement = "in-process",
        avatar: AvatarConfig | None = None,
        agent_name: str = AVATAR_AGENT_NAME,
        join_timeout: float = 30.0,
        idle_after_s: float = TurnConfig().idle_after_s,
    ) -> None:
        if placement not in ("in-process", "remote"):
            raise FaceTalkError(f"unknown placement {placement!r}", hint="use 'in-process' or 'remote'")
        self._placement: Placement = placement
        self._avatar = avatar or AvatarConfig()
        self._agent_name = agent_name
        self._join_timeout = join_timeout
        self._idle_after_s = idle_after_s
        self._persona_id = _persona_id(persona) if placement == "remote" else None
        self._persona = _load_persona(persona) if placement == "in-process" else None
        self._room: rtc.Room | None = None
        self._session: AgentSession | None = None
        self._states: AvatarStateDriver | None = None
        self._labels: set[asyncio.Task[None]] = set()
        self._publisher: AvatarPublisher | None = None
        self._lkapi: api.LiveKitAPI | None = None
        self._owns_lkapi = False
        self._dispatch: api.AgentDispatch | None = None
        self._joined = False

    @property
    def placement(self) -> Placement:
        return self._placement

    @property
    def avatar_identity(self) -> str:
        """The participant that publishes the avatar: the agent itself in process."""
        if self._room is None:
            raise RuntimeError("AvatarSession.start() has not been called")
        if self._placement == "in-process":
            return self._room.local_participant.identity
        return avatar_identity(self._room.name)

    @property
    def joined(self) -> bool:
        """Whether the avatar is publishing; False for a remote avatar that did not come."""
        return self._joined

    async def start(
        self,
        agent_session: AgentSession,
        room: rtc.Room,
        *,
        livekit_url: NotGivenOr[str] = NOT_GIVEN,
        livekit_api_key: NotGivenOr[str] = NOT_GIVEN,
        livekit_api_secret: NotGivenOr[str] = NOT_GIVEN,
    ) -> None:
        """Route ``agent_session``'s audio through the avatar; call it before ``agent_session.start()``.

        ``room`` must be connected. The LiveKit keys (remote only) default to the
        job's API, or ``LIVEKIT_URL``/``LIVEKIT_API_KEY``/``LIVEKIT_API_SECRET``.
        """
        if self._room is not None:
            raise RuntimeError("AvatarSession.start() was already called")
        self._room, self._session = room, agent_session
        job_ctx = get_job_context(required=False)
        if job_ctx is not None:
            job_ctx.add_shutdown_callback(self.aclose)
        if self._placement == "in-process":
            on_label = await self._start_in_process(agent_session, room)
        else:
            await self._start_remote(agent_session, room, livekit_url, livekit_api_key, livekit_api_secret)
            on_label = self._publish_label
        self._states = AvatarStateDriver(idle_after_s=self._idle_after_s, on_label=on_label)
        self._states.attach(agent_session)

    async def aclose(self) -> None:
        """Stop following the session, stop the in-process avatar, or release the dispatch."""
        if self._states is not None and self._session is not None:
            self._states.detach(self._session)
            self._states = None
        await utils.aio.cancel_and_wait(*self._labels)
        if self._publisher is not None:
            await self._publisher.aclose()
            self._publisher = None
        if self._dispatch is not None and self._lkapi is not None:
            await self._delete_dispatch(self._dispatch)
        if self._lkapi is not None and self._owns_lkapi:
            await self._lkapi.aclose()
        self._lkapi = None

    async def _start_in_process(self, agent_session: AgentSession, room: rtc.Room) -> Callable[[Label], None]:
        assert self._persona is not None
        video_gen = create_video_generator(self._persona, self._avatar)
        audio_out = QueueAudioOutput()  # any rate: the frames keep their phoneme timing
        agent_session.output.audio = audio_out
        self._publisher = AvatarPublisher(room, audio_recv=audio_out, video_gen=video_gen)
        await self._publisher.start()
        self._joined = True

        def set_label(label: Label) -> None:
            video_gen.set_state(label)
            self._publish_label(label)

        return set_label

    async def _start_remote(
        self,
        agent_session: AgentSession,
        room: rtc.Room,
        url: NotGivenOr[str],
        key: NotGivenOr[str],
        secret: NotGivenOr[str],
    ) -> None:
        assert self._persona_id is not None
        self._lkapi = self._api(url, key, secret)
        job = AvatarJob(
            persona=self._persona_id,
            agent_identity=room.local_participant.identity,
            avatar_identity=avatar_identity(room.name),
        )
        self._dispatch = await request_avatar(self._lkapi, room.name, job, self._agent_name)
        try:
            avatar = await wait_for_avatar(room, job, timeout=self._join_timeout)
        except TimeoutError:
            why = await describe_dispatch(self._lkapi, self._dispatch)
            logger.warning(
                "no avatar joined %s within %.0f s: %s; the agent speaks without video",
                room.name, self._join_timeout, why,
            )  # fmt: skip
            await self._delete_dispatch(self._dispatch)
            return
        if error := avatar.attributes.get(AVATAR_ERROR_ATTRIBUTE):
            await self._delete_dispatch(self._dispatch)
            raise UnknownPersonaError(
                f"the avatar worker cannot animate this persona: {error}",
                hint=f"add {self._persona_id}.yaml to the avatar workers' --personas folder, "
                "or pass a persona id they list",
            )
        agent_session.output.replace_audio_tail(
            PhonemeTimingOutput(
                room,
                destination_identity=job.avatar_identity,
                next_in_chain=DataStreamAudioOutput(
                    room,
                    destination_identity=job.avatar_identity,
                    wait_remote_track=rtc.TrackKind.KIND_VIDEO,
                    wait_playback_start=True,
                ),
            )
        )
        self._joined = True

    def _api(self, url: NotGivenOr[str], key: NotGivenOr[str], secret: NotGivenOr[str]) -> api.LiveKitAPI:
        """The job's API client, or one of our own for explicit keys or outside a job."""
        job_ctx = get_job_context(required=False)
        given = any(utils.is_given(value) for value in (url, key, secret))
        if job_ctx is not None and not given:
            return job_ctx.api
        self._owns_lkapi = True
        return api.LiveKitAPI(
            url=url if utils.is_given(url) else None,
            api_key=key if utils.is_given(key) else None,
            api_secret=secret if utils.is_given(secret) else None,
        )

    async def _delete_dispatch(self, dispatch: api.AgentDispatch) -> None:
        """Best effort: the room may already be gone."""
        assert self._lkapi is not None
        self._dispatch = None
        with contextlib.suppress(api.TwirpError, OSError):
            await self._lkapi.agent_dispatch.delete_dispatch(dispatch.id, dispatch.room)

    def _publish_label(self, label: Label) -> None:
        """Publish ``label`` as the agent's attribute, without blocking the state events."""
        assert self._room is not None
        if not self._room.isconnected():
            return
        task = asyncio.create_task(
            self._room.local_participant.set_attributes({AVATAR_STATE_ATTRIBUTE: label.value})
        )
        self._labels.add(task)
        task.add_done_callback(self._labels.discard)


def _persona_id(persona: str | Path | PersonaConfig) -> str:
    """A remote avatar's persona: an id, resolved by the avatar workers."""
    if isinstance(persona, str) and re.fullmatch(PERSONA_ID_PATTERN, persona):
        return persona
    raise FaceTalkError(
        f"remote avatars take a persona id the avatar workers know, got {persona!r}",
        hint="put the persona's YAML and portrait in the avatar workers' --personas folder and pass its "
        "file stem, e.g. persona='nova'",
    )


def _load_persona(persona: str | Path | PersonaConfig) -> PersonaConfig:
    """An in-process persona: a config, a YAML path, or an id in ``./configs`` or the bundled configs."""
    if isinstance(persona, PersonaConfig):
        return persona
    if isinstance(persona, str) and re.fullmatch(PERSONA_ID_PATTERN, persona):
        return PersonaCatalog(default_config(f"{persona}.yaml").parent).get(persona).config
    return load_persona(persona)
