"""Where the avatar runs: in the worker's process, or as its own participant elsewhere.

``in-process`` (default): the session's TTS audio goes into a
``QueueAudioOutput``; an :class:`~.avatar_publisher.AvatarPublisher` in this
process has it rendered and publishes audio + video from the agent's own
participant.

``remote`` (a GPU machine): the worker asks an avatar server
(``facetalk avatar-server``, :mod:`.remote_avatar`) to join the room as a separate participant that
publishes on the agent's behalf (``lk.publish_on_behalf``). The session's audio
travels to it over LiveKit data streams (``DataStreamAudioOutput``), and the
labels as the agent's participant attribute.

Either way the TTS's phoneme timing reaches the avatar with the audio: in
process inside the frames (so the queue takes frames at the TTS's own rate;
resampling them would drop what they carry, and the generator resamples
anyway), remotely on the text stream of :mod:`.phoneme_stream`.

Either way the caller gets back a function that sets the avatar's label.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from livekit import rtc
from livekit.agents import AgentSession, JobContext, utils
from livekit.agents.voice.avatar import (
    DataStreamAudioOutput,
    QueueAudioOutput,
)

from ..avatar import create_video_generator
from ..avatar.labels import Label
from ..config import PersonaConfig, PipelineConfig
from ..dialogue.protocol import AVATAR_STATE_ATTRIBUTE
from .avatar_publisher import AvatarPublisher
from .phoneme_stream import PhonemeTimingOutput
from .remote_avatar_client import avatar_identity, avatar_token, request_remote_avatar

__all__ = ["LabelSink", "start_avatar"]

LabelSink = Callable[[Label], None]



async def start_avatar(
    ctx: JobContext, session: AgentSession, persona: PersonaConfig, pipeline: PipelineConfig
) -> LabelSink:
    """Route ``session``'s audio to the avatar; return the label setter."""
    publish_label = _attribute_publisher(ctx)
    if pipeline.avatar.placement == "remote":
        return await _start_remote(ctx, session, pipeline, publish_label)
    return await _start_in_process(ctx, session, persona, pipeline, publish_label)


async def _start_in_process(
    ctx: JobContext,
    session: AgentSession,
    persona: PersonaConfig,
    pipeline: PipelineConfig,
    publish_label: LabelSink,
) -> LabelSink:
    video_gen = create_video_generator(persona, pipeline.avatar)
    audio_out = QueueAudioOutput()  # any rate: the frames keep their phoneme timing
    session.output.audio = audio_out
    publisher = AvatarPublisher(ctx.room, audio_recv=audio_out, video_gen=video_gen)
    await publisher.start()
    ctx.add_shutdown_callback(publisher.aclose)

    def set_label(label: Label) -> None:
        video_gen.set_state(label)
        publish_label(label)

    return set_label


async def _start_remote(
    ctx: JobContext, session: AgentSession, pipeline: PipelineConfig, publish_label: LabelSink
) -> LabelSink:
    assert pipeline.avatar.remote_url is not None  # checked by the config
    identity = avatar_identity(ctx.room.name)
    lk = pipeline.livekit
    await request_remote_avatar(
        pipeline.avatar.remote_url,
        livekit_url=lk.url,
        token=avatar_token(
            ctx.room.name,
            agent_identity=ctx.room.local_participant.identity,
            api_key=lk.api_key,
            api_secret=lk.api_secret.get_secret_value(),
        ),
    )
    session.output.audio = PhonemeTimingOutput(
        ctx.room,
        destination_identity=identity,
        next_in_chain=DataStreamAudioOutput(
            ctx.room, destination_identity=identity, wait_remote_track=rtc.TrackKind.KIND_VIDEO
        ),
    )
    return publish_label


def _attribute_publisher(ctx: JobContext) -> LabelSink:
    """Publish labels as the agent's participant attribute, without blocking the caller."""
    pending: set[asyncio.Task[None]] = set()

    def publish(label: Label) -> None:
        task = asyncio.create_task(
            ctx.room.local_participant.set_attributes({AVATAR_STATE_ATTRIBUTE: label.value})
        )
        pending.add(task)
        task.add_done_callback(pending.discard)

    async def cancel_pending() -> None:
        await utils.aio.cancel_and_wait(*pending)

    ctx.add_shutdown_callback(cancel_pending)
    return publish
