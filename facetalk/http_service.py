"""The lifecycle shared by FaceTalk's small aiohttp servers (web page, avatar server, scripted LLM).

A subclass builds its ``web.Application`` in :meth:`HTTPService.build_app` and
has ``host`` and ``port`` attributes; ``start()`` listens there (port 0 picks
a free port, which ``port`` then holds), ``aclose()`` stops, and
``async with`` does both.
"""

from __future__ import annotations

from typing import Self

from aiohttp import web

__all__ = ["HTTPService"]


class HTTPService:
    """An aiohttp app listening on ``host:port`` from :meth:`start` until :meth:`aclose`."""

    host: str
    port: int
    _runner: web.AppRunner | None = None

    def build_app(self) -> web.Application:
        """The application with its routes."""
        raise NotImplementedError

    async def start(self) -> Self:
        self._runner = web.AppRunner(self.build_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
