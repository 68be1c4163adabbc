"""Phoneme timing to a remote avatar over a real LiveKit room, alongside livekit's audio data stream."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT
from livekit.agents.voice.avatar import AudioSegmentEnd, DataStreamAudioOutput, DataStreamAudioReceiver

from facetalk.agent.phoneme_stream import PhonemeTimingOutput, PhonemeTimingReceiver
from facetalk.avatar.phonemes import PhonemeSpan, PhonemeTimedString, spans_from_frame
from facetalk.livekit_server import LocalLiveKitServer

pytestmark = pytest.mark.e2e


def _audio(seconds: float) -> rtc.AudioFrame:
    n = int(24000 * seconds)
    return rtc.AudioFrame((np.ones(n, np.int16) * 1000).tobytes(), 24000, 1, n)


async def test_each_segment_gets_its_own_timing_across_the_room(livekit_server: LocalLiveKitServer) -> None:
    """Segment 1 is sent with two sentences' timing, segment 2 with none: the avatar's frames of
    segment 1 carry exactly that timing, those of segment 2 carry nothing (audio-driven)."""
    name = f"timing-{uuid.uuid4().hex[:8]}"
    agent, avatar = rtc.Room(), rtc.Room()
    await agent.connect(livekit_server.url, livekit_server.token("agent", name))
    await avatar.connect(livekit_server.url, livekit_server.token("avatar", name))
    receiver = PhonemeTimingReceiver(DataStreamAudioReceiver(avatar, sender_identity="agent"), avatar,
                                     sender_identity="agent")
    try:
        await receiver.start()
        source = rtc.VideoSource(16, 16)  # the agent's output waits for the avatar's video, as in production
        await avatar.local_participant.publish_track(rtc.LocalVideoTrack.create_video_track("video", source))
        output = PhonemeTimingOutput(agent, destination_identity="avatar",
                                     next_in_chain=DataStreamAudioOutput(agent, destination_identity="avatar"))
        first = [PhonemeSpan("m", 0.0, 0.1), PhonemeSpan("a", 0.1, 0.3)]
        second = [PhonemeSpan("b", 0.3, 0.4), PhonemeSpan("uː", 0.4, 0.6)]
        sentence_one, sentence_two = _audio(0.3), _audio(0.3)
        sentence_one.userdata[USERDATA_TIMED_TRANSCRIPT] = [PhonemeTimedString("Ma.", first, start_time=0.0, end_time=0.3)]
        sentence_two.userdata[USERDATA_TIMED_TRANSCRIPT] = [PhonemeTimedString("Boo.", second, start_time=0.3, end_time=0.6)]
        for frame in (sentence_one, sentence_two):
            await output.capture_frame(frame)
        output.flush()
        await output.capture_frame(_audio(0.4))
        output.flush()

        segments: list[list[PhonemeSpan] | None] = [None]

        async def read() -> None:
            async for item in receiver:
                if isinstance(item, AudioSegmentEnd):
                    if len(segments) == 2:
                        return
                    segments.append(None)
                elif (spans := spans_from_frame(item)) is not None:
                    segments[-1] = (segments[-1] or []) + spans

        await asyncio.wait_for(read(), timeout=20)
        assert segments == [first + second, None]
    finally:
        await receiver.aclose()
        await agent.disconnect()
        await avatar.disconnect()
