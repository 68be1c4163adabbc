"""The worker's side of a remote avatar: mint its token and ask its server to join.

The agent's worker calls :func:`request_remote_avatar`, a ``POST /launch``
with a LiveKit URL and a token minted by :func:`avatar_token` for the avatar
participant; the server side is :mod:`.remote_avatar`. The token carries
``lk.publish_on_behalf``, so the user's client and livekit-agents' RoomIO treat
the avatar's tracks as the agent's.
"""

from __future__ import annotations

from datetime import timedelta

import aiohttp
from livekit import api
from livekit.agents.types import ATTRIBUTE_PUBLISH_ON_BEHALF

from ..errors import FaceTalkError

__all__ = ["avatar_identity", "avatar_token", "request_remote_avatar"]


def avatar_identity(room_name: str) -> str:
    """The avatar participant's identity in ``room_name``."""
    return f"facetalk-avatar-{room_name}"


def avatar_token(room_name: str, *, agent_identity: str, api_key: str, api_secret: str) -> str:
    """A token for the avatar participant of ``room_name``, publishing for ``agent_identity``."""
    return (
        api.AccessToken(api_key, api_secret)
        .with_identity(avatar_identity(room_name))
        .with_kind("agent")
        .with_ttl(timedelta(hours=6))
        .with_grants(api.VideoGrants(room_join=True, room=room_name))
        .with_attributes({ATTRIBUTE_PUBLISH_ON_BEHALF: agent_identity})
        .to_jwt()
    )


async def request_remote_avatar(server_url: str, *, livekit_url: str, token: str) -> None:
    """Ask the avatar server at ``server_url`` to join; raise if it cannot."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
            async with http.post(f"{server_url.rstrip('/')}/launch", json={"url": livekit_url, "token": token}) as r:
                if r.status != 200:
                    raise FaceTalkError(
                        f"the avatar server at {server_url} refused: HTTP {r.status} {await r.text()}",
                        hint="check the avatar server's log",
                    )
    except (aiohttp.ClientError, TimeoutError) as e:
        raise FaceTalkError(
            f"cannot reach the avatar server at {server_url}: {e}",
            hint="start it with 'facetalk avatar-server' on that machine, or set avatar.placement: in-process",
        ) from e
