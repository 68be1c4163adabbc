"""A scripted person in a LiveKit room: speaks from audio, records what comes back.

The end-to-end tests and the latency evaluation measure the agent from the
user's side of the room, as a person would experience it. Every timestamp
here is ``time.monotonic()`` in this process, taken when audio or video has
been *received and decoded*, never from the agent's logs.

The microphone track always flows (silence between utterances), as a real
client's does, so the agent's VAD sees true end-of-speech silence. Its queue
holds 200 ms: on a busy machine this process's loop stalls now and then, and a
shorter queue ran dry in a stall, cutting gaps into the user's speech that the
agent heard as pauses and that stretched the utterance past its timestamps
(the likely cause of an answer that once looked 2.3 s late). An utterance's start is when its first
sample plays, read from the queue, so the longer queue blurs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc

from ..dialogue.protocol import AVATAR_STATE_ATTRIBUTE, METRICS_TOPIC

__all__ = ["ReceivedAudio", "ReceivedVideo", "Recording", "SimulatedUser", "Utterance"]

MIC_RATE = 48_000
_CHUNK = MIC_RATE // 100  # 10 ms
_MIC_QUEUE_MS = 200
SPEECH_RMS = 300.0
"""RMS level (int16) above which received audio counts as speech; piper speaks at ~3000."""


@dataclass
class Utterance:
    """One thing the user said: when its audio started and ended (monotonic s)."""

    start: float
    end: float


@dataclass
class ReceivedAudio:
    """Agent audio as received: 10 ms chunks at 48 kHz mono with arrival times."""

    times: list[float] = field(default_factory=list)
    chunks: list[np.ndarray] = field(default_factory=list)

    def between(self, start: float, end: float) -> np.ndarray:
        """The received samples whose chunk arrived in [start, end)."""
        picked = [c for t, c in zip(self.times, self.chunks, strict=True) if start <= t < end]
        return np.concatenate(picked) if picked else np.zeros(0, dtype=np.int16)

    def rms(self) -> tuple[np.ndarray, np.ndarray]:
        """(arrival times, RMS level) per chunk."""
        levels = np.array([np.sqrt(np.mean(c.astype(np.float64) ** 2)) if len(c) else 0.0 for c in self.chunks])
        return np.array(self.times), levels

    def first_loud(self, after: float) -> float | None:
        """Arrival time of the first chunk louder than speech after ``after``, if any."""
        times, levels = self.rms()
        loud = times[(times > after) & (levels > SPEECH_RMS)]
        return float(loud[0]) if len(loud) else None

    def loud_span(self, after: float) -> tuple[float, float]:
        """First and last arrival of speech-level audio after ``after``."""
        times, levels = self.rms()
        loud = times[(times > after) & (levels > SPEECH_RMS)]
        if not len(loud):
            raise ValueError(f"no agent speech received after t={after:.3f}")
        return float(loud[0]), float(loud[-1])

    def played_after(self, after: float, until: float) -> float:
        """Seconds of agent audio played after ``after``, up to the quiet that lasts to ``until``.

        Counted in samples received, not arrival times: a test process that stalls on
        a busy machine stamps the chunks queued meanwhile late, as if the agent had
        spoken on, while the samples stay what the agent sent. And unlike
        :meth:`first_silence`, a short gap in speech that goes on (a TTS that falls
        behind on a busy machine) is not taken for its end.
        """
        times, levels = self.rms()
        window = np.flatnonzero((times > after) & (times <= until))
        if not len(window):
            raise ValueError(f"no agent audio received between t={after:.3f} and t={until:.3f}")
        loud = window[levels[window] > SPEECH_RMS]
        if not len(loud):
            return 0.0
        if loud[-1] == window[-1]:
            raise ValueError(f"agent audio was still loud at t={until:.3f}")
        return sum(len(chunk) for chunk in self.chunks[window[0] : loud[-1] + 1]) / MIC_RATE

    def first_silence(self, after: float, hold_s: float = 0.3) -> float:
        """Arrival of the first chunk after ``after`` that starts ``hold_s`` of quiet."""
        times, levels = self.rms()
        for i in np.flatnonzero(times > after):
            window = (times >= times[i]) & (times < times[i] + hold_s)
            if (levels[window] < SPEECH_RMS).all():
                return float(times[i])
        raise ValueError(f"agent audio never went quiet after t={after:.3f}")


@dataclass
class ReceivedVideo:
    """Agent video as received: small grayscale frames with arrival times."""

    times: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)  # the stream's (width, height)


@dataclass(frozen=True)
class Recording:
    """What a :class:`SimulatedUser` received up to a moment, copied: safe to measure on a thread
    while the user goes on receiving (measured on its loop, a long turn stalled the loop for
    ~0.25 s, and the frames that arrived meanwhile were stamped late, as a gap then a burst)."""

    room_name: str
    audio: ReceivedAudio
    video: ReceivedVideo
    turn_metrics: list[tuple[float, dict]]


class SimulatedUser:
    """Joins a room, publishes a microphone, records the agent's audio and video."""

    def __init__(self, *, keep_video_size: int = 128) -> None:
        self.room = rtc.Room()
        self.audio = ReceivedAudio()
        self.video = ReceivedVideo()
        self.transcripts: list[tuple[float, str, str, bool]] = []  # (t, identity, text, final)
        self.attributes: list[tuple[float, dict[str, str]]] = []  # agent attribute changes
        self.turn_metrics: list[tuple[float, dict]] = []  # the agent's per-message stage metrics
        self.joined_at = 0.0
        self.room_name = ""
        self._keep = keep_video_size
        # Long enough to ride out this loop's stalls; see the module docstring.
        self._mic = rtc.AudioSource(MIC_RATE, 1, queue_size_ms=_MIC_QUEUE_MS)
        self._speech: asyncio.Queue[tuple[np.ndarray, asyncio.Future[Utterance]]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()

    async def join(self, url: str, token: str) -> None:
        self.room.on("track_subscribed", self._on_track)
        self.room.on("participant_attributes_changed", self._on_attributes)
        self.room.on("data_received", self._on_data)
        self.room.register_text_stream_handler("lk.transcription", self._on_transcription)
        self.joined_at = time.monotonic()
        await self.room.connect(url, token)
        self.room_name = self.room.name
        track = rtc.LocalAudioTrack.create_audio_track("mic", self._mic)
        await self.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        self._spawn(self._run_mic())

    async def say(self, samples: np.ndarray) -> Utterance:
        """Speak ``samples`` (int16, 48 kHz mono) in real time; returns when done."""
        done: asyncio.Future[Utterance] = asyncio.get_running_loop().create_future()
        await self._speech.put((samples.astype(np.int16), done))
        return await done

    async def leave(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.room.disconnect()
        await self._mic.aclose()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Poll ``predicate()`` every 50 ms until true; TimeoutError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(0.05)

    def agent_label(self) -> str | None:
        """The avatar label the agent last published, if any."""
        labels = [a[AVATAR_STATE_ATTRIBUTE] for _, a in self.attributes if AVATAR_STATE_ATTRIBUTE in a]
        return labels[-1] if labels else None

    def label_changes(self) -> list[tuple[float, str]]:
        """(arrival time, label) of every avatar label the agent published."""
        return [(t, a[AVATAR_STATE_ATTRIBUTE]) for t, a in self.attributes if AVATAR_STATE_ATTRIBUTE in a]

    async def wait_for_greeting(self, timeout: float = 90) -> None:
        """Wait until the avatar's video arrives and its greeting has been spoken."""
        await self.wait_until(lambda: len(self.video.frames) > 0, timeout=timeout)
        await self.wait_for_answer(timeout=30)

    def recording(self) -> Recording:
        """A copy of what was received so far (the lists are copied, their items shared and never changed)."""
        audio = ReceivedAudio(times=list(self.audio.times), chunks=list(self.audio.chunks))
        video = ReceivedVideo(times=list(self.video.times), frames=list(self.video.frames), size=self.video.size)
        return Recording(self.room_name, audio, video, list(self.turn_metrics))

    async def wait_for_answer(self, timeout: float = 30) -> None:
        """Wait until the agent starts speaking, then until it stops."""
        await self.wait_until(lambda: self.agent_label() == "speaking", timeout=timeout)
        await self.wait_until(lambda: self.agent_label() != "speaking", timeout=timeout)

    # --- internals -----------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_mic(self) -> None:
        silence = np.zeros(_CHUNK, dtype=np.int16)
        while True:
            try:
                samples, done = self._speech.get_nowait()
            except asyncio.QueueEmpty:
                await self._mic.capture_frame(rtc.AudioFrame(silence.tobytes(), MIC_RATE, 1, _CHUNK))
                continue
            padded = np.concatenate([samples, np.zeros(-len(samples) % _CHUNK, dtype=np.int16)])
            start = 0.0
            for i in range(0, len(padded), _CHUNK):
                chunk = padded[i : i + _CHUNK]
                await self._mic.capture_frame(rtc.AudioFrame(chunk.tobytes(), MIC_RATE, 1, _CHUNK))
                if i == 0:  # it plays after what was queued before it
                    start = time.monotonic() + self._mic.queued_duration - _CHUNK / MIC_RATE
            # capture_frame returns when the frame is queued; the source plays out its queue.
            await self._mic.wait_for_playout()
            done.set_result(Utterance(start=start, end=time.monotonic()))

    def _on_track(self, track: rtc.Track, _pub: rtc.RemoteTrackPublication, _p: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self._spawn(self._record_audio(rtc.AudioStream(track, sample_rate=MIC_RATE, num_channels=1)))
        elif track.kind == rtc.TrackKind.KIND_VIDEO:
            self._spawn(self._record_video(rtc.VideoStream(track)))

    async def _record_audio(self, stream: rtc.AudioStream) -> None:
        try:
            async for event in stream:
                self.audio.times.append(time.monotonic())
                self.audio.chunks.append(np.frombuffer(event.frame.data, dtype=np.int16).copy())
        finally:
            await stream.aclose()

    async def _record_video(self, stream: rtc.VideoStream) -> None:
        import cv2

        try:
            async for event in stream:
                now = time.monotonic()
                frame = event.frame
                i420 = frame if frame.type == rtc.VideoBufferType.I420 else frame.convert(rtc.VideoBufferType.I420)
                luma = np.frombuffer(i420.data, dtype=np.uint8)[: frame.width * frame.height]
                luma = luma.reshape(frame.height, frame.width)
                self.video.size = (frame.width, frame.height)
                self.video.times.append(now)
                self.video.frames.append(cv2.resize(luma, (self._keep, self._keep), interpolation=cv2.INTER_AREA))
        finally:
            await stream.aclose()

    def _on_attributes(self, changed: dict[str, str], participant: rtc.Participant) -> None:
        if participant.identity != self.room.local_participant.identity:
            self.attributes.append((time.monotonic(), dict(changed)))

    def _on_data(self, packet: rtc.DataPacket) -> None:
        if packet.topic == METRICS_TOPIC:
            self.turn_metrics.append((time.monotonic(), json.loads(packet.data)))

    def _on_transcription(self, reader: rtc.TextStreamReader, identity: str) -> None:
        async def read() -> None:
            text = await reader.read_all()
            final = reader.info.attributes.get("lk.transcription_final") == "true"
            self.transcripts.append((time.monotonic(), identity, text, final))

        self._spawn(read())
