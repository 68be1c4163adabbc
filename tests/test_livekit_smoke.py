"""Media really flows through the LiveKit server: video and audio, end to end."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest
from livekit import rtc

from facetalk.livekit_server import LocalLiveKitServer

pytestmark = pytest.mark.e2e

WIDTH, HEIGHT = 320, 240
SAMPLE_RATE = 48_000
TONE_HZ = 440.0
# One solid colour per quadrant (RGB): survives VP8 compression, and a swap or
# a mirrored frame would be caught.
QUADRANT_COLOURS = {
    "top_left": (230, 30, 30),
    "top_right": (30, 200, 30),
    "bottom_left": (30, 30, 230),
    "bottom_right": (240, 240, 240),
}


def _pattern_frame() -> rtc.VideoFrame:
    rgba = np.full((HEIGHT, WIDTH, 4), 255, dtype=np.uint8)
    h, w = HEIGHT // 2, WIDTH // 2
    rgba[:h, :w, :3] = QUADRANT_COLOURS["top_left"]
    rgba[:h, w:, :3] = QUADRANT_COLOURS["top_right"]
    rgba[h:, :w, :3] = QUADRANT_COLOURS["bottom_left"]
    rgba[h:, w:, :3] = QUADRANT_COLOURS["bottom_right"]
    return rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.RGBA, rgba.tobytes())


def _quadrant_means(frame: rtc.VideoFrame) -> dict[str, np.ndarray]:
    rgb = np.frombuffer(frame.convert(rtc.VideoBufferType.RGBA).data, dtype=np.uint8)
    rgb = rgb.reshape(frame.height, frame.width, 4)[:, :, :3].astype(float)
    h, w = frame.height // 2, frame.width // 2
    # Sample the middle of each quadrant, away from chroma-subsampled edges.
    def centre(block: np.ndarray) -> np.ndarray:
        bh, bw = block.shape[:2]
        return block[bh // 4 : 3 * bh // 4, bw // 4 : 3 * bw // 4].reshape(-1, 3).mean(axis=0)

    return {
        "top_left": centre(rgb[:h, :w]),
        "top_right": centre(rgb[:h, w:]),
        "bottom_left": centre(rgb[h:, :w]),
        "bottom_right": centre(rgb[h:, w:]),
    }


def _dominant_frequency(samples: np.ndarray, sample_rate: int) -> float:
    windowed = samples * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(windowed))
    return float(np.fft.rfftfreq(len(samples), 1 / sample_rate)[np.argmax(spectrum)])


async def _publish_media(room: rtc.Room, stop: asyncio.Event) -> None:
    video_source = rtc.VideoSource(WIDTH, HEIGHT)
    audio_source = rtc.AudioSource(SAMPLE_RATE, 1)
    await room.local_participant.publish_track(
        rtc.LocalVideoTrack.create_video_track("pattern", video_source),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA),
    )
    await room.local_participant.publish_track(
        rtc.LocalAudioTrack.create_audio_track("tone", audio_source),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
    )
    frame = _pattern_frame()
    chunk = SAMPLE_RATE // 100  # 10 ms
    t = 0
    for step in range(3000):  # bounded: at most 30 s of media
        if stop.is_set():
            return
        n = np.arange(t, t + chunk)
        tone = (0.3 * 32767 * np.sin(2 * np.pi * TONE_HZ * n / SAMPLE_RATE)).astype(np.int16)
        t += chunk
        await audio_source.capture_frame(
            rtc.AudioFrame(tone.tobytes(), SAMPLE_RATE, 1, chunk)
        )  # paces the loop in real time
        if step % 4 == 0:  # 25 fps
            video_source.capture_frame(frame)


async def test_media_round_trip_through_real_server(livekit_server: LocalLiveKitServer) -> None:
    """A subscriber decodes the publisher's pattern frames and hears its 440 Hz tone."""
    publisher, subscriber = rtc.Room(), rtc.Room()
    video_track: asyncio.Future[rtc.Track] = asyncio.get_running_loop().create_future()
    audio_track: asyncio.Future[rtc.Track] = asyncio.get_running_loop().create_future()

    @subscriber.on("track_subscribed")
    def _on_track(track: rtc.Track, *_: object) -> None:
        target = video_track if track.kind == rtc.TrackKind.KIND_VIDEO else audio_track
        if not target.done():
            target.set_result(track)

    stop = asyncio.Event()
    await subscriber.connect(livekit_server.url, livekit_server.token("viewer", "smoke"))
    await publisher.connect(livekit_server.url, livekit_server.token("camera", "smoke"))
    publishing = asyncio.create_task(_publish_media(publisher, stop))
    try:
        video = rtc.VideoStream(await asyncio.wait_for(video_track, 15))
        audio = rtc.AudioStream(await asyncio.wait_for(audio_track, 15), sample_rate=SAMPLE_RATE)

        async def received_frame() -> rtc.VideoFrame:
            frames = 0
            async for event in video:
                frames += 1
                if frames >= 10:  # past the first keyframes' ramp-up in quality
                    return event.frame
            raise AssertionError("video stream ended")

        async def received_audio() -> np.ndarray:
            chunks: list[np.ndarray] = []
            async for event in audio:
                chunks.append(np.frombuffer(event.frame.data, dtype=np.int16))
                if sum(map(len, chunks)) >= SAMPLE_RATE:  # one second
                    return np.concatenate(chunks).astype(float)
            raise AssertionError("audio stream ended")

        frame, samples = await asyncio.wait_for(
            asyncio.gather(received_frame(), received_audio()), timeout=20
        )
        await video.aclose()
        await audio.aclose()
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await publishing
        await publisher.disconnect()
        await subscriber.disconnect()

    assert (frame.width, frame.height) == (WIDTH, HEIGHT)
    for quadrant, mean in _quadrant_means(frame).items():
        expected = np.array(QUADRANT_COLOURS[quadrant], dtype=float)
        assert np.abs(mean - expected).max() < 25, f"{quadrant}: {mean} != {expected}"

    tail = samples[len(samples) // 2 :]  # skip the jitter buffer's start-up
    assert np.sqrt(np.mean(tail**2)) > 1000, "received audio is silent"
    assert abs(_dominant_frequency(tail, SAMPLE_RATE) - TONE_HZ) < 5
