"""The names FaceTalk's participants agree on: attributes, data topics, RPC methods.

The worker, the avatar (in-process or remote), ``facetalk web``, the simulated
user and the browser page all talk through a LiveKit room, so they must spell
these names alike. ``protocol.json`` beside this module is their one source:
this module reads it, and the page's bundle imports it (esbuild inlines the
JSON), so renaming one changes every side at once.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Final

__all__ = [
    "AGENT_SINCE_ATTRIBUTE",
    "AVATAR_STATE_ATTRIBUTE",
    "METRICS_TOPIC",
    "PERSONA_ATTRIBUTE",
    "PHONEME_TIMING_RPC",
]

_NAMES: dict[str, str] = json.loads(
    resources.files(__package__).joinpath("protocol.json").read_text(encoding="utf-8")
)

PERSONA_ATTRIBUTE: Final = _NAMES["persona_attribute"]
"""User participant attribute: the id (file stem) of the persona the user chose.
``facetalk web`` puts it in the join token; the worker reads it when the user joins."""

AVATAR_STATE_ATTRIBUTE: Final = _NAMES["avatar_state_attribute"]
"""Agent participant attribute: the avatar's label (``listening``, ``thinking``,
``speaking``, ``idle``), for an avatar in another process and for clients."""

AGENT_SINCE_ATTRIBUTE: Final = _NAMES["agent_since_attribute"]
"""Agent participant attribute: when its conversation began (Unix seconds). After a
LiveKit server restart a room can hold its old agent and a newly dispatched one; the
later of the two leaves (:mod:`facetalk.agent.room_claim`)."""

METRICS_TOPIC: Final = _NAMES["metrics_topic"]
"""Data topic of each turn's livekit-agents metrics, as JSON ``{"role", "metrics"}``."""

PHONEME_TIMING_RPC: Final = _NAMES["phoneme_timing_rpc"]
"""RPC method from the agent to a remote avatar: JSON ``{"segment": id,
"phonemes": [[phoneme, start, end], ...]}``."""
