"""Who is talking, turned into the avatar's label.

The avatar generator is conditioned on one of three labels. They follow the
conversation, as reported by livekit-agents' ``user_state_changed`` and
``agent_state_changed`` events:

==========================  ==============
conversation                avatar label
==========================  ==============
user speaking               ``listening``
agent thinking              ``thinking`` (the turn has ended, the answer is coming)
agent speaking              ``speaking``
nobody for ``idle_after_s`` ``idle``
==========================  ==============

:class:`AvatarStateTracker` is the pure rule (no timers, no I/O), so it is
easy to test; :class:`AvatarStateDriver` wires it to a session, a timer and
whoever wants the labels (the in-process generator, a participant attribute).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from livekit.agents import AgentSession, AgentStateChangedEvent, UserStateChangedEvent

from ..avatar.labels import Label

__all__ = ["AvatarStateDriver", "AvatarStateTracker"]


@dataclass
class AvatarStateTracker:
    """The label for the current user and agent states (livekit-agents' names)."""

    user_state: str = "listening"  # "speaking" | "listening" | "away"
    agent_state: str = "initializing"  # "initializing" | "listening" | "thinking" | "speaking" | "idle"
    timed_out: bool = field(default=False)

    @property
    def label(self) -> Label:
        if self.agent_state == "speaking":
            return Label.SPEAKING
        if self.user_state == "speaking":
            return Label.LISTENING
        if self.agent_state == "thinking":
            return Label.THINKING
        return Label.IDLE if self.timed_out else Label.LISTENING

    @property
    def quiet(self) -> bool:
        """Nobody is talking or about to: the idle countdown may run."""
        return self.user_state != "speaking" and self.agent_state not in ("thinking", "speaking")


class AvatarStateDriver:
    """Feeds the avatar label from a session's state events.

    ``on_label`` is called with each *new* label, on the event loop. After
    ``idle_after_s`` of quiet the label becomes ``idle``; any speech or thinking
    brings it back at once.
    """

    def __init__(self, *, idle_after_s: float, on_label: Callable[[Label], None]) -> None:
        self._idle_after_s = idle_after_s
        self._on_label = on_label
        self._tracker = AvatarStateTracker()
        self._label = self._tracker.label
        self._idle_timer: asyncio.TimerHandle | None = None

    @property
    def label(self) -> Label:
        return self._label

    def attach(self, session: AgentSession) -> None:
        """Listen to ``session`` and emit the initial label."""
        session.on("user_state_changed", self._on_user_state)
        session.on("agent_state_changed", self._on_agent_state)
        self._on_label(self._label)
        self._restart_idle_timer()

    def detach(self, session: AgentSession) -> None:
        session.off("user_state_changed", self._on_user_state)
        session.off("agent_state_changed", self._on_agent_state)
        if self._idle_timer is not None:
            self._idle_timer.cancel()

    def _on_user_state(self, event: UserStateChangedEvent) -> None:
        self._tracker.user_state = event.new_state
        self._update()

    def _on_agent_state(self, event: AgentStateChangedEvent) -> None:
        self._tracker.agent_state = event.new_state
        self._update()

    def _update(self) -> None:
        self._tracker.timed_out = False
        self._restart_idle_timer()
        self._emit()

    def _restart_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._tracker.quiet:
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(self._idle_after_s, self._go_idle)

    def _go_idle(self) -> None:
        self._idle_timer = None
        self._tracker.timed_out = True
        self._emit()

    def _emit(self) -> None:
        label = self._tracker.label
        if label != self._label:
            self._label = label
            self._on_label(label)
