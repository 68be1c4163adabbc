"""An OpenAI-compatible chat server on loopback that answers from a script.

It is a real HTTP server speaking the chat-completions protocol (streamed as
server-sent events), so the real ``openai`` client talks to it. Tests and the
latency evaluation use it to make the LLM's part of a turn known and fast,
and to simulate an endpoint that fails (``mode="error"``), hangs
(``mode="slow"``) or dies in the middle of a streamed answer (``mode="drop"``:
half the answer, then the connection is closed without an end).

Answers: the first rule whose key appears (case-insensitively) in the last
user message wins; otherwise ``default``.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from ..http_service import HTTPService

__all__ = ["ScriptedLLMServer"]

Mode = Literal["ok", "error", "slow", "drop"]


@dataclass
class ScriptedLLMServer(HTTPService):
    """Serve ``POST /v1/chat/completions`` on 127.0.0.1 from ``rules``."""

    rules: dict[str, str] = field(default_factory=dict)
    default: str = "I see."
    mode: Mode = "ok"
    slow_delay_s: float = 30.0
    requests: list[dict] = field(default_factory=list)
    host: str = field(default="127.0.0.1", init=False)
    port: int = field(default=0, init=False)  # a free port, chosen by start()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def questions(self) -> list[str]:
        """What each request so far asked: its last user message, lower-cased."""
        return [_last_user_text(body.get("messages", [])) for body in self.requests]

    def llm_section(self, *, timeout_s: float | None = None) -> dict[str, Any]:
        """The pipeline's ``llm`` section that points a worker at this server."""
        section: dict[str, Any] = {"provider": "openai", "base_url": self.base_url, "model": "scripted"}
        if timeout_s is not None:
            section["timeout_s"] = timeout_s
        return section

    def answer_for(self, messages: list[dict]) -> str:
        last = _last_user_text(messages)
        for key, answer in self.rules.items():
            if key.lower() in last:
                return answer
        return self.default

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        return app

    async def _models(self, _: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if self.mode == "error":
            return web.json_response(
                {"error": {"message": "scripted failure", "type": "server_error"}}, status=500
            )
        if self.mode == "slow":
            await asyncio.sleep(self.slow_delay_s)
        answer = self.answer_for(body.get("messages", []))
        if not body.get("stream"):
            return web.json_response(_completion(answer, body.get("model", "scripted")))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        pieces = _word_pieces(answer)
        for i, piece in enumerate(pieces):
            if self.mode == "drop" and i == len(pieces) // 2:
                assert request.transport is not None
                request.transport.close()  # the endpoint dies mid-answer
                return response
            await response.write(_sse(_chunk(body.get("model", "scripted"), {"content": piece})))
        await response.write(_sse(_chunk(body.get("model", "scripted"), {}, finish="stop")))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _last_user_text(messages: list[dict]) -> str:
    user_texts = [m.get("content") for m in messages if m.get("role") == "user"]
    return _text_of(user_texts[-1]).lower() if user_texts else ""


def _text_of(content: object) -> str:
    if isinstance(content, list):  # content parts
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


def _word_pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _chunk(model: str, delta: dict, finish: str | None = None) -> dict:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _completion(answer: str, model: str) -> dict:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
        ],
    }


def _sse(payload: dict) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()
