"""FaceTalk: an open-source conversational avatar for LiveKit rooms.

``facetalk.AvatarSession`` adds a FaceTalk face to any livekit-agents agent.
It is imported on first use (a module ``__getattr__``, PEP 562), so
``import facetalk`` stays light for the CLI and every worker subprocess,
which must not pay for livekit-agents and the avatar engine up front.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import FaceTalkError

if TYPE_CHECKING:
    from .avatar_session import AvatarSession

__all__ = ["AvatarSession", "FaceTalkError", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "AvatarSession":
        from .avatar_session import AvatarSession

        return AvatarSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
