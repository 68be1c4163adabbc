"""Conversation states become avatar labels: speaking, listening, idle after a quiet spell."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from livekit.rtc import EventEmitter

from facetalk.avatar.labels import Label
from facetalk.dialogue.avatar_state import AvatarStateDriver, AvatarStateTracker


@pytest.mark.parametrize(
    ("user", "agent", "label"),
    [
        ("speaking", "listening", Label.LISTENING),
        ("listening", "thinking", Label.THINKING),
        ("speaking", "thinking", Label.LISTENING),  # the user went on: listen again
        ("listening", "speaking", Label.SPEAKING),
        ("speaking", "speaking", Label.SPEAKING),  # overlap: the agent still talks until interrupted
        ("listening", "listening", Label.LISTENING),
    ],
)
def test_tracker_maps_states_to_labels(user: str, agent: str, label: Label) -> None:
    """The table in the module docstring holds."""
    assert AvatarStateTracker(user_state=user, agent_state=agent).label is label


def test_idle_only_when_quiet_and_timed_out() -> None:
    """The idle label needs both quiet and the timeout; activity wins over it."""
    tracker = AvatarStateTracker(user_state="listening", agent_state="listening", timed_out=True)
    assert tracker.label is Label.IDLE
    tracker.user_state = "speaking"
    assert not tracker.quiet
    assert tracker.label is Label.LISTENING


def _event(new_state: str) -> SimpleNamespace:
    return SimpleNamespace(new_state=new_state)


async def test_driver_goes_idle_after_quiet_and_back_on_speech() -> None:
    """After idle_after_s of quiet the label turns idle; speech and answers bring it back."""
    session = EventEmitter()  # stands in for AgentSession: the same event API
    labels: list[Label] = []
    driver = AvatarStateDriver(idle_after_s=0.05, on_label=labels.append)
    driver.attach(session)  # type: ignore[arg-type]
    session.emit("agent_state_changed", _event("listening"))
    async with asyncio.timeout(5):  # a busy loop may fire the 50 ms timer late, never early
        while Label.IDLE not in labels:
            await asyncio.sleep(0.01)
    assert labels == [Label.LISTENING, Label.IDLE]

    session.emit("user_state_changed", _event("speaking"))
    session.emit("agent_state_changed", _event("thinking"))
    session.emit("user_state_changed", _event("listening"))
    session.emit("agent_state_changed", _event("speaking"))
    await asyncio.sleep(0.1)  # no idle while the agent speaks
    assert labels == [Label.LISTENING, Label.IDLE, Label.LISTENING, Label.THINKING, Label.SPEAKING]
    driver.detach(session)  # type: ignore[arg-type]
