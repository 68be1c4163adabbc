"""One VAD decision for the whole session: the session's VAD streams, shared with the STT.

``AgentSession`` runs its VAD on every microphone frame (for interruptions and
the user's speaking state), and livekit's ``stt.StreamAdapter`` runs a second
one on the same frames to cut utterances for a non-streaming STT. Two detectors
cost twice, and can disagree on where speech starts and ends.

:class:`SharedVAD` wraps the configured VAD. Its streams are the ones the
session opens; each forwards its events to the session as usual and also
publishes them as :class:`VADDecision`\\ s, which
:class:`~facetalk.agent.vad_stream_adapter.VADStreamAdapter` reads instead of
running a VAD of its own. Build one per session (the worker does), so that the
decisions of one room never reach another room's STT.

A stream's ``flush()`` ends a *segment*: the wrapped VAD stream's input ends
(it judges what it has, then drops its open speech), listeners are told the
segment ended, after its last event, so they can finish what was open, and a
fresh wrapped stream takes the next frame.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

from livekit import rtc
from livekit.agents import utils, vad

from .concurrency import run_together

__all__ = ["SharedVAD", "SharedVADStream", "VADDecision"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VADDecision:
    """One event of a VAD segment, or (``event`` is ``None``) the end of the segment.

    Attributes:
        segment: which segment, unique within a :class:`SharedVAD`; event times
            count from the start of their segment.
        event: the VAD's event, exactly as the session sees it.
    """

    segment: int
    event: vad.VADEvent | None


class SharedVAD(vad.VAD):
    """A VAD whose streams' decisions can be listened to, for one session."""

    def __init__(self, vad_: vad.VAD) -> None:
        super().__init__(capabilities=vad_.capabilities)
        self._wrapped = vad_
        self._listeners: set[utils.aio.Chan[VADDecision]] = set()
        self._open_segments: set[int] = set()
        self._segment_ids = itertools.count()

    @property
    def model(self) -> str:
        return self._wrapped.model

    @property
    def provider(self) -> str:
        return self._wrapped.provider

    @property
    def min_silence_duration(self) -> float | None:
        """The wrapped VAD's, when it says (read by AgentSession and the STT adapter)."""
        return getattr(self._wrapped, "min_silence_duration", None)

    def stream(self) -> SharedVADStream:
        return SharedVADStream(self)

    def listen(self) -> utils.aio.Chan[VADDecision]:
        """A channel that receives every decision from now on; :meth:`forget` it when done."""
        channel = utils.aio.Chan[VADDecision]()
        self._listeners.add(channel)
        return channel

    def forget(self, channel: utils.aio.Chan[VADDecision]) -> None:
        self._listeners.discard(channel)
        channel.close()

    def open_segments(self) -> frozenset[int]:
        """The segments that have begun and not yet ended."""
        return frozenset(self._open_segments)

    def _open_segment(self) -> int:
        segment = next(self._segment_ids)
        self._open_segments.add(segment)
        return segment

    def _publish(self, decision: VADDecision) -> None:
        if decision.event is None:
            self._open_segments.discard(decision.segment)
        for channel in self._listeners:
            channel.send_nowait(decision)


class SharedVADStream(vad.VADStream):
    """The session's VAD stream: the wrapped VAD's events, also published to listeners."""

    def __init__(self, shared: SharedVAD) -> None:
        super().__init__(shared)
        self._shared = shared
        self._segments = utils.aio.Chan[tuple[int, vad.VADStream]]()
        self._opened: dict[int, vad.VADStream] = {}
        # The first segment opens now, so that listeners know of it before any audio.
        self._segment: vad.VADStream | None = self._open_segment()

    def _open_segment(self) -> vad.VADStream:
        segment, stream = self._shared._open_segment(), self._shared._wrapped.stream()
        self._opened[segment] = stream
        self._segments.send_nowait((segment, stream))
        return stream

    async def _close_segment(self, segment: int) -> None:
        self._shared._publish(VADDecision(segment, None))
        await self._opened.pop(segment).aclose()

    @utils.log_exceptions(logger=logger)
    async def _main_task(self) -> None:
        async def forward_input() -> None:
            async for item in self._input_ch:
                if isinstance(item, rtc.AudioFrame):
                    if self._segment is None:
                        self._segment = self._open_segment()
                    self._segment.push_frame(item)
                elif self._segment is not None:  # a flush: the segment ends once its audio is judged
                    self._segment.end_input()
                    self._segment = None
            if self._segment is not None:
                self._segment.end_input()
            self._segments.close()

        async def forward_events() -> None:
            async for segment, stream in self._segments:
                try:
                    async for event in stream:
                        self._event_ch.send_nowait(event)
                        self._shared._publish(VADDecision(segment, event))
                finally:
                    await self._close_segment(segment)

        try:
            await run_together(forward_input(), forward_events())
        finally:
            for segment in list(self._opened):
                await self._close_segment(segment)
