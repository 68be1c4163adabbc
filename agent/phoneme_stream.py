"""Phoneme timing to a remote avatar, on a channel that stays with the audio.

In-process, the timing rides inside the audio frames themselves (the TTS's
``TimedString`` s in ``frame.userdata``, see :mod:`facetalk.avatar.phonemes`).
Across the room, livekit-agents' ``DataStreamAudioOutput`` sends only the PCM
bytes, one byte stream per segment, so the timing needs its own channel:

- :class:`PhonemeTimingOutput` sits in front of ``DataStreamAudioOutput``.
  Before a frame that carries timing goes out, it hands the timing to the
  avatar by RPC (method :data:`TIMING_RPC`), tagged with an id for the
  segment the audio belongs to, and waits for the avatar's answer; a new
  segment's id is announced the same way before its first frame. Times stay
  relative to the start of the segment, so the machines share no clock.
- :class:`PhonemeTimingReceiver` wraps ``DataStreamAudioReceiver`` on the
  avatar's side and puts the timing back onto the audio frames of that
  segment, so the avatar's generator reads it exactly as in-process.

Matching a segment's id to its audio needs no id in the audio stream: since
each RPC is answered before the audio behind it is sent, ids reach the
avatar in the order their segments' audio does. They are queued, and the
receiver takes the next one whenever a new segment's audio begins. (A text
stream was tried first: it can overtake, or fall behind, the audio's byte
stream.) An interruption (``lk.clear_buffer``) drops the queue: everything
announced before it belongs to audio the clear throws away, and the agent
announces nothing new until the avatar has reported the cleared playback
finished.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import AsyncIterator

from livekit import rtc
from livekit.agents import utils
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT
from livekit.agents.voice.avatar import AudioReceiver, AudioSegmentEnd
from livekit.agents.voice.io import AudioOutput, AudioOutputCapabilities

from ..avatar.phonemes import PhonemeSpan, PhonemeTimedString, spans_from_frame, spans_from_json, spans_to_json
from ..dialogue.protocol import PHONEME_TIMING_RPC

__all__ = ["TIMING_RPC", "PhonemeTimingOutput", "PhonemeTimingReceiver"]

logger = logging.getLogger(__name__)

TIMING_RPC = PHONEME_TIMING_RPC
"""RPC method of the timing messages (:mod:`facetalk.dialogue.protocol` names it)."""


class PhonemeTimingOutput(AudioOutput):
    """Sends the phoneme timing carried by the frames, then the frames, to ``destination_identity``.

    Args:
        room: the agent's room.
        destination_identity: the avatar participant.
        next_in_chain: the ``DataStreamAudioOutput`` the audio goes through.
    """

    def __init__(self, room: rtc.Room, *, destination_identity: str, next_in_chain: AudioOutput) -> None:
        super().__init__(label="PhonemeTiming", next_in_chain=next_in_chain,
                         capabilities=AudioOutputCapabilities(pause=False))
        self._room = room
        self._destination = destination_identity
        self._segment: str | None = None
        self._cleared = False
        self._warned = False

    @property
    def sample_rate(self) -> int | None:
        return self.next_in_chain.sample_rate if self.next_in_chain else None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        assert self.next_in_chain is not None
        if self._segment is None:
            await self._before_segment()
            self._segment = utils.shortuuid("SEG_")
            await self._announce([])  # the segment's id, ahead of its first audio
        if spans := spans_from_frame(frame):
            await self._announce(spans)
        await super().capture_frame(frame)
        await self.next_in_chain.capture_frame(frame)

    def flush(self) -> None:
        assert self.next_in_chain is not None
        super().flush()
        self._segment = None
        self.next_in_chain.flush()

    def clear_buffer(self) -> None:
        assert self.next_in_chain is not None
        self._segment = None
        self._cleared = True
        self.next_in_chain.clear_buffer()

    async def _before_segment(self) -> None:
        """Wait until an announcement can reach the avatar and lands after any clear.

        The avatar registers its timing handler before it publishes video, as
        ``DataStreamAudioOutput`` waits for that video before its first audio.
        After an interruption, the avatar reports the cleared playback finished
        only once it has dropped the old timing, so a new segment's id sent
        after that cannot be dropped with it.
        """
        await utils.wait_for_track_publication(room=self._room, identity=self._destination,
                                               kind=rtc.TrackKind.KIND_VIDEO)  # at once when published
        if self._cleared:
            self._cleared = False
            await self.wait_for_playout()

    async def _announce(self, spans: list[PhonemeSpan]) -> None:
        assert self._segment is not None
        payload = json.dumps({"segment": self._segment, "phonemes": spans_to_json(spans)})
        try:
            await self._room.local_participant.perform_rpc(
                destination_identity=self._destination, method=TIMING_RPC, payload=payload)
        except rtc.RpcError as e:  # an avatar without the method: its mouth follows the audio
            if not self._warned:
                self._warned = True
                logger.warning("the avatar did not take the phoneme timing (%s); its mouth follows the audio", e.message)


class PhonemeTimingReceiver(AudioReceiver):
    """The avatar's audio receiver, with each segment's phoneme timing put back on its frames.

    Args:
        inner: the ``DataStreamAudioReceiver`` of the agent's audio.
        room: the avatar's room.
        sender_identity: the agent, the only participant timing is taken from.
    """

    def __init__(self, inner: AudioReceiver, room: rtc.Room, *, sender_identity: str) -> None:
        super().__init__()
        self._inner = inner
        self._room = room
        self._sender = sender_identity
        self._announced: deque[str] = deque()  # segment ids whose audio has not begun
        self._timing: dict[str, list[PhonemeSpan]] = {}  # spans not yet put on a frame
        self._current: str | None = None
        inner.on("clear_buffer", self._on_clear_buffer)

    async def start(self) -> None:
        self._room.local_participant.register_rpc_method(TIMING_RPC, self._on_timing)
        await self._inner.start()

    def notify_playback_finished(self, playback_position: float, interrupted: bool) -> None:
        self._inner.notify_playback_finished(playback_position, interrupted)

    def notify_playback_started(self) -> None:
        self._inner.notify_playback_started()

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame | AudioSegmentEnd]:
        return self._frames()

    async def aclose(self) -> None:
        self._room.local_participant.unregister_rpc_method(TIMING_RPC)
        await self._inner.aclose()

    async def _frames(self) -> AsyncIterator[rtc.AudioFrame | AudioSegmentEnd]:
        async for item in self._inner:
            if isinstance(item, AudioSegmentEnd):
                self._timing.pop(self._current or "", None)
                self._current = None
            else:
                if self._current is None:
                    self._current = self._announced.popleft() if self._announced else ""
                self._attach(item)
            yield item

    def _attach(self, frame: rtc.AudioFrame) -> None:
        """Put the current segment's timing that arrived since the last frame on ``frame``."""
        spans = self._timing.get(self._current) if self._current else None
        if spans:
            frame.userdata[USERDATA_TIMED_TRANSCRIPT] = [PhonemeTimedString(
                "", spans, start_time=min(s.start for s in spans), end_time=max(s.end for s in spans))]
            spans.clear()

    def _on_timing(self, data: rtc.RpcInvocationData) -> str:
        if data.caller_identity != self._sender:
            return "rejected"
        try:
            message = json.loads(data.payload)
            segment, spans = str(message["segment"]), spans_from_json(message["phonemes"])
        except (ValueError, KeyError, TypeError) as e:  # json.JSONDecodeError is a ValueError
            logger.warning("ignoring bad phoneme timing from %s: %s", self._sender, e)
            return "ignored"
        if segment not in self._timing:
            self._announced.append(segment)
            self._timing[segment] = []
        self._timing[segment].extend(spans)
        return "ok"

    def _on_clear_buffer(self) -> None:
        self._announced.clear()
        self._timing.clear()
        self._current = None
        self.emit("clear_buffer")
