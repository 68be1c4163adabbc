"""AvatarPublisher on a real LiveKit server: what the room sees, and the playback reports AgentSession waits for.

The engine is a stand-in that paints frames (its rendering is not under test); the
receivers are livekit-agents' own: ``QueueAudioOutput`` in-process, and
``DataStreamAudioOutput`` → ``DataStreamAudioReceiver`` across the room, whose
``lk.clear_buffer`` / ``lk.playback_finished`` RPCs carry the interruption.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.voice.avatar import DataStreamAudioOutput, DataStreamAudioReceiver, QueueAudioOutput
from livekit.agents.voice.io import AudioOutput, PlaybackFinishedEvent

from facetalk.agent.avatar_publisher import AvatarPublisher
from facetalk.avatar import SAMPLE_RATE, AvatarVideoGenerator, Clip, Label
from facetalk.avatar.audio import AudioFeatures
from facetalk.config import Expression
from facetalk.livekit_server import LocalLiveKitServer

pytestmark = pytest.mark.e2e

SIDE = 512  # the product's size, and big enough that WebRTC's defaults would simulcast it
WAIT_S = 20.0  # bounded waits on the server and the loop: a margin, never the thing measured


class PaintingEngine:
    """A FrameEngine that paints listening frames black and speaking frames white."""

    width = height = SIDE

    def render_clip(self, features: Sequence[AudioFeatures | None], label: Label) -> Clip:
        value = 255 if label == Label.SPEAKING else 0
        return Clip(frames=[np.full((SIDE, SIDE, 3), value, np.uint8) for _ in features])

    def set_expression(self, expression: Expression) -> None:
        pass

    def reset(self) -> None:
        pass


@dataclass
class Finished:
    """A playback-finished report, and the audio the publisher still had queued for the room when it came."""

    event: PlaybackFinishedEvent
    queued_s: float


LOUD = 12000  # the answer that gets interrupted: its peak tells it apart from the tail of a quieter one
QUIET = 3000


def _speech(seconds: float, peak: int = QUIET) -> rtc.AudioFrame:
    n = int(SAMPLE_RATE * seconds)
    samples = (peak * np.sin(2 * np.pi * 200 * np.arange(n) / SAMPLE_RATE)).astype(np.int16)
    return rtc.AudioFrame(samples.tobytes(), SAMPLE_RATE, 1, n)


async def _room(server: LocalLiveKitServer, identity: str, name: str) -> rtc.Room:
    room = rtc.Room()
    await room.connect(server.url, server.token(identity, name))
    return room


def _reports(output: AudioOutput, publisher: AvatarPublisher) -> asyncio.Queue[Finished]:
    reports: asyncio.Queue[Finished] = asyncio.Queue()
    output.on("playback_finished", lambda ev: reports.put_nowait(Finished(ev, publisher.queued_audio_s)))
    return reports


async def _until_heard(listener: rtc.Room, speaker: str) -> None:
    """Until ``listener`` hears ``speaker``'s loud answer (so some of it has played out)."""
    while not (track := next((p.track for p in listener.remote_participants[speaker].track_publications.values()
                              if p.kind == rtc.TrackKind.KIND_AUDIO and p.track is not None), None)):
        await asyncio.sleep(0.02)
    stream = rtc.AudioStream(track)
    try:
        async for event in stream:
            if np.abs(np.frombuffer(event.frame.data, np.int16)).max() > (LOUD + QUIET) / 2:
                return
    finally:
        await stream.aclose()


@pytest.fixture
async def user(livekit_server: LocalLiveKitServer) -> AsyncIterator[tuple[rtc.Room, str]]:
    """A user in a fresh room, subscribed to everything (the avatar publishes once its audio is heard)."""
    name = f"publisher-{uuid.uuid4().hex[:8]}"
    room = await _room(livekit_server, "user", name)
    yield room, name
    await room.disconnect()


async def test_video_is_one_layer_at_the_generators_size(livekit_server: LocalLiveKitServer, user) -> None:
    """The user sees the avatar's microphone and camera tracks; the camera is one layer (not simulcast), at 512²."""
    user_room, name = user
    avatar = await _room(livekit_server, "avatar", name)
    publisher = AvatarPublisher(avatar, audio_recv=QueueAudioOutput(),
                                video_gen=AvatarVideoGenerator(PaintingEngine(), fps=25))
    seen: asyncio.Queue[rtc.RemoteTrackPublication] = asyncio.Queue()
    user_room.on("track_published", lambda publication, _: seen.put_nowait(publication))
    try:
        await publisher.start()
        audio = await asyncio.wait_for(seen.get(), WAIT_S)
        video = await asyncio.wait_for(seen.get(), WAIT_S)
    finally:
        await publisher.aclose()
        await avatar.disconnect()
    assert (audio.kind, audio.source) == (rtc.TrackKind.KIND_AUDIO, rtc.TrackSource.SOURCE_MICROPHONE)
    assert (video.kind, video.source) == (rtc.TrackKind.KIND_VIDEO, rtc.TrackSource.SOURCE_CAMERA)
    assert not video.simulcasted
    assert (video.width, video.height) == (SIDE, SIDE)


async def test_in_process_interruption_empties_the_rooms_queue_then_reports(livekit_server, user) -> None:
    """QueueAudioOutput (AgentSession's in-process output): an answer plays to its end and is reported
    finished with its length; the next one, cleared mid-way, is reported interrupted only once no audio is
    left queued for the room."""
    user_room, name = user
    avatar = await _room(livekit_server, "avatar", name)
    output = QueueAudioOutput()
    publisher = AvatarPublisher(avatar, audio_recv=output, video_gen=AvatarVideoGenerator(PaintingEngine(), fps=25))
    reports = _reports(output, publisher)
    try:
        await publisher.start()
        await output.capture_frame(_speech(0.4))
        output.flush()
        whole = await asyncio.wait_for(reports.get(), WAIT_S)
        await output.capture_frame(_speech(3.0, LOUD))
        output.flush()
        await asyncio.wait_for(_until_heard(user_room, "avatar"), WAIT_S)
        output.clear_buffer()
        cut = await asyncio.wait_for(reports.get(), WAIT_S)
    finally:
        await publisher.aclose()
        await avatar.disconnect()
    assert not whole.event.interrupted and whole.event.playback_position == pytest.approx(0.4, abs=0.02)
    assert cut.event.interrupted and 0 < cut.event.playback_position < 3.0
    assert cut.queued_s == 0


async def test_remote_interruption_travels_by_the_rpcs(livekit_server: LocalLiveKitServer, user) -> None:
    """DataStreamAudioOutput → DataStreamAudioReceiver: lk.clear_buffer reaches the publisher and
    lk.playback_finished comes back interrupted, then a later answer is reported whole."""
    user_room, name = user
    agent, avatar = await _room(livekit_server, "agent", name), await _room(livekit_server, "avatar", name)
    output = DataStreamAudioOutput(agent, destination_identity="avatar", wait_remote_track=rtc.TrackKind.KIND_VIDEO)
    publisher = AvatarPublisher(avatar, audio_recv=DataStreamAudioReceiver(avatar, sender_identity="agent"),
                                video_gen=AvatarVideoGenerator(PaintingEngine(), fps=25))
    reports = _reports(output, publisher)
    try:
        await publisher.start()
        await output.capture_frame(_speech(3.0, LOUD))
        output.flush()
        await asyncio.wait_for(_until_heard(user_room, "avatar"), WAIT_S)
        output.clear_buffer()
        cut = await asyncio.wait_for(reports.get(), WAIT_S)
        await output.capture_frame(_speech(0.4))
        output.flush()
        whole = await asyncio.wait_for(reports.get(), WAIT_S)
    finally:
        await publisher.aclose()
        await agent.disconnect()
        await avatar.disconnect()
    assert cut.event.interrupted and 0 < cut.event.playback_position < 3.0
    assert cut.queued_s == 0
    assert not whole.event.interrupted and whole.event.playback_position == pytest.approx(0.4, abs=0.02)


class StallingEngine(PaintingEngine):
    """Stalls the loop 150 ms every twelfth clip (short clips render on the loop), as a busy turn change does."""

    def __init__(self) -> None:
        self.clips = 0

    def render_clip(self, features: Sequence[AudioFeatures | None], label: Label) -> Clip:
        self.clips += 1
        if self.clips % 12 == 0:
            time.sleep(0.15)
        return super().render_clip(features, label)


async def test_frames_held_back_by_a_stall_still_reach_the_user(livekit_server: LocalLiveKitServer, user) -> None:
    """After a stall the generator catches up in a burst. Handed to WebRTC back to back (or faster than its
    frame-rate limit), all but the last of those frames were dropped: the user got 3 of 4 frames."""
    user_room, name = user
    avatar = await _room(livekit_server, "avatar", name)
    yielded: list[float] = []
    output = QueueAudioOutput()
    generator = AvatarVideoGenerator(StallingEngine(), fps=25, on_frame=lambda _: yielded.append(time.monotonic()))
    publisher = AvatarPublisher(avatar, audio_recv=output, video_gen=generator)
    received: list[float] = []

    async def receive(track: rtc.Track) -> None:
        async for _ in rtc.VideoStream(track):
            received.append(time.monotonic())

    tasks: list[asyncio.Task[None]] = []
    user_room.on("track_subscribed", lambda track, *_: track.kind == rtc.TrackKind.KIND_VIDEO
                 and tasks.append(asyncio.create_task(receive(track))))  # fmt: skip
    try:
        await publisher.start()
        await output.capture_frame(_speech(0.2))  # the tracks are published once audio is heard
        output.flush()
        await asyncio.wait_for(_until_received(received), WAIT_S)
        await asyncio.sleep(1.0)
        start = time.monotonic()
        await asyncio.sleep(3.0)
        for _ in range(20):
            await output.capture_frame(_speech(0.1))
        output.flush()
        await asyncio.sleep(5.0)
        end = time.monotonic()
        await asyncio.sleep(1.0)  # what was handed over by the end has arrived
    finally:
        await publisher.aclose()
        await avatar.disconnect()
        for task in tasks:
            task.cancel()
    handed = [t for t in yielded if start <= t < end]
    # Frames arrive ~0.1 s after they are handed over; count the same span, shifted by that.
    got = [t for t in received if start + 0.1 <= t < end + 0.1]
    assert len(handed) > 150
    assert len(got) >= 0.9 * len(handed), (len(got), len(handed))


async def _until_received(received: list[float]) -> None:
    while not received:
        await asyncio.sleep(0.02)
