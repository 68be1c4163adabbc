"""``facetalk web``: the browser page and the few endpoints it needs.

The page (``web/``, bundled by ``npm run build`` into ``web/dist/``) talks to
LiveKit directly; this server only hands it what it cannot have by itself:

* ``GET /api/personas``: the personas to choose from, with thumbnail URLs;
* ``GET /api/personas/{id}/portrait``: a small JPEG of one portrait;
* ``POST /api/token`` with ``{"persona": id}``: a join token for a fresh room
  that an agent has already joined, or, when every worker is full, HTTP 503
  ``{"busy": true, "room": …, "retry_after_s": …}`` so the page can say so and
  offer to wait, asking again with ``{"room": …}`` (:mod:`facetalk.availability`);
  a user never joins a silent room.

Each token is short-lived and scoped to one new room and one new identity,
so a page can join only its own conversation. The chosen persona travels in
the token as the participant attribute ``facetalk.persona``, which the worker
reads when the user joins. The API secret stays here: the page gets only the
signed token and the LiveKit URL.

The server binds 127.0.0.1 unless told otherwise, because anyone who can
reach it can mint tokens.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from .availability import AgentAvailability, LiveKitUnavailableError
from .config import LiveKitConfig
from .dialogue.personas import PERSONA_ID_PATTERN, PersonaCatalog, UnknownPersonaError
from .dialogue.protocol import PERSONA_ATTRIBUTE
from .errors import FaceTalkError
from .http_service import HTTPService
from .livekit_server import make_token
from .resources import PACKAGED_WEB_PAGE

__all__ = ["PAGE_DIR", "WebServer", "require_built_page"]

logger = logging.getLogger("facetalk.web")

PAGE_DIR = PACKAGED_WEB_PAGE
"""The bundled page: ``web/dist`` (``npm run build``, run by ``make setup``), shipped in the wheel."""

_ROOM_BYTES = 6
_ROOM_PATTERN = rf"facetalk-[0-9a-f]{{{2 * _ROOM_BYTES}}}"

_ASSET_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".map": "application/json"}


def require_built_page(page_dir: Path = PAGE_DIR) -> None:
    """Fail with a fix if the page has not been built."""
    if not (page_dir / "index.html").is_file():
        raise FaceTalkError(
            f"the web page is not built ({page_dir / 'index.html'} is missing)",
            hint="run 'make setup', or 'npm ci && npm run build' in web/",
        )


def _error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    """An HTTP error whose JSON body the page shows as it is."""
    return status(text=json.dumps({"error": message}), content_type="application/json")


@dataclass
class WebServer(HTTPService):
    """Serves the page, the personas and join tokens until :meth:`aclose`."""

    catalog: PersonaCatalog
    livekit: LiveKitConfig = field(default_factory=LiveKitConfig)
    host: str = "127.0.0.1"
    port: int = 8080
    page_dir: Path = PAGE_DIR
    token_ttl_s: float = 600.0
    agent_wait_s: float = 1.5
    """How long a fresh room may wait for an agent before the answer is "busy";
    0 hands out tokens without opening the room (agents dispatched another way)."""
    busy_retry_s: float = 3.0
    """When the page should ask again after a "busy" answer."""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/personas", self._personas)
        app.router.add_get(f"/api/personas/{{persona_id:{PERSONA_ID_PATTERN}}}/portrait", self._portrait)
        app.router.add_post("/api/token", self._token)
        app.router.add_get("/", self._asset)
        app.router.add_get(r"/{name:[\w.-]+}", self._asset)
        return app

    # --- handlers ------------------------------------------------------------

    async def _personas(self, _request: web.Request) -> web.Response:
        personas = [
            {
                "id": entry.id,
                "name": entry.config.name,
                "greeting": entry.config.greeting,
                "portrait_url": f"/api/personas/{entry.id}/portrait",
            }
            for entry in self.catalog.entries()
        ]
        return web.json_response({"personas": personas, "default": self.catalog.default_id})

    async def _portrait(self, request: web.Request) -> web.Response:
        try:
            jpeg = self.catalog.get(request.match_info["persona_id"]).thumbnail_jpeg()
        except UnknownPersonaError as e:
            raise _error(web.HTTPNotFound, e.message) from None
        return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "max-age=300"})

    async def _token(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        persona_id = body.get("persona") or self.catalog.default_id
        if not isinstance(persona_id, str):
            raise _error(web.HTTPBadRequest, "'persona' must be a persona id (a string)")
        try:
            persona = self.catalog.get(persona_id)
        except UnknownPersonaError as e:
            raise _error(web.HTTPBadRequest, e.message) from None
        waited_in = body.get("room")
        room = f"facetalk-{secrets.token_hex(_ROOM_BYTES)}"
        identity = f"user-{secrets.token_hex(4)}"
        if self.agent_wait_s > 0:
            room = await self._room_with_agent(room, waited_in if isinstance(waited_in, str) else None)
        token = make_token(
            identity,
            room,
            api_key=self.livekit.api_key,
            api_secret=self.livekit.api_secret.get_secret_value(),
            ttl_s=self.token_ttl_s,
            name="You",
            attributes={PERSONA_ATTRIBUTE: persona.id},
        )
        logger.info("token for %s in %s (persona %s)", identity, room, persona.id)
        return web.json_response(
            {
                "url": self.livekit.url,
                "token": token,
                "room": room,
                "identity": identity,
                "persona": persona.id,
                "expires_in_s": self.token_ttl_s,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def _room_with_agent(self, fresh: str, waited_in: str | None) -> str:
        """A room with an agent in it: ``waited_in`` (from a "busy" answer) if its agent has come
        since, else ``fresh``. Answers 503 (busy) or 502 (LiveKit unavailable) otherwise."""
        availability = AgentAvailability(self.livekit, agent_wait_s=self.agent_wait_s)
        try:
            if waited_in and re.fullmatch(_ROOM_PATTERN, waited_in) and await availability.retry_room(waited_in):
                return waited_in
            if await availability.open_room(fresh):
                return fresh
        except LiveKitUnavailableError as e:
            raise _error(web.HTTPBadGateway, f"{e.message}. Fix: {e.hint}" if e.hint else e.message) from None
        raise web.HTTPServiceUnavailable(
            text=json.dumps(
                {
                    "error": "All avatars are busy right now.",
                    "busy": True,
                    "room": fresh,  # ask again with it: its agent may still come
                    "retry_after_s": self.busy_retry_s,
                }
            ),
            content_type="application/json",
            headers={"Retry-After": str(round(self.busy_retry_s)), "Cache-Control": "no-store"},
        )

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            body = await request.json()
        except ValueError:
            raise _error(web.HTTPBadRequest, "the request body is not JSON") from None
        if not isinstance(body, dict):
            raise _error(web.HTTPBadRequest, "the request body must be a JSON object")
        return body

    async def _asset(self, request: web.Request) -> web.FileResponse:
        name = request.match_info.get("name", "index.html")
        path = self.page_dir / name
        if path.suffix not in _ASSET_TYPES or not path.is_file():
            if not (self.page_dir / "index.html").is_file():
                raise _error(web.HTTPServiceUnavailable, "the page is not built: run 'make setup'")
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": _ASSET_TYPES[path.suffix]})
