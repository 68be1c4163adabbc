"""Publish each turn's stage metrics to the room, for clients that show or measure latency.

livekit-agents attaches a ``MetricsReport`` to every chat message: for the
agent's replies, end-of-turn delay, transcription delay, LLM time-to-first-
token, TTS time-to-first-byte, playback latency and end-to-end latency. The
worker sends each report as JSON on the ``facetalk.metrics`` data topic, so the
web page's latency readout and ``facetalk eval latency`` can break a turn down
by stage without access to the worker's logs.
"""

from __future__ import annotations

import asyncio
import json

from livekit import rtc
from livekit.agents import AgentSession, ConversationItemAddedEvent, JobContext, llm, utils

from ..dialogue.protocol import METRICS_TOPIC

__all__ = ["publish_turn_metrics"]


def publish_turn_metrics(ctx: JobContext, session: AgentSession) -> None:
    """Send ``{"role", "metrics"}`` for every message that carries metrics."""
    pending: set[asyncio.Task[None]] = set()
    room: rtc.Room = ctx.room

    def on_item(event: ConversationItemAddedEvent) -> None:
        item = event.item
        if not isinstance(item, llm.ChatMessage) or not item.metrics:
            return
        payload = json.dumps({"role": item.role, "metrics": dict(item.metrics)})
        task = asyncio.create_task(room.local_participant.publish_data(payload, topic=METRICS_TOPIC))
        pending.add(task)
        task.add_done_callback(pending.discard)

    async def stop() -> None:
        session.off("conversation_item_added", on_item)
        await utils.aio.cancel_and_wait(*pending)

    session.on("conversation_item_added", on_item)
    ctx.add_shutdown_callback(stop)
