"""``facetalk web``'s endpoints: scoped short-lived tokens, personas, no secrets on the page.

The server runs for real on a free loopback port and is spoken to over HTTP;
the room test joins the real LiveKit server.
"""

from __future__ import annotations

import base64
import inspect
import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import pytest
import pytest_asyncio
from livekit import api, rtc
from pydantic import SecretStr

from facetalk import cli
from facetalk.config import LiveKitConfig
from facetalk.dialogue.personas import PersonaCatalog
from facetalk.livekit_server import LocalLiveKitServer
from facetalk.web import PAGE_DIR, WebServer

from .conftest import CONFIGS

SECRET = "facetalk-test-secret-that-must-never-leave-the-server"


@pytest_asyncio.fixture
async def web_server() -> AsyncIterator[WebServer]:
    """The page server over configs/, with a distinctive secret to look for.

    No LiveKit server runs here, so tokens are handed out without first
    opening the room for an agent (test_capacity covers that part).
    """
    livekit = LiveKitConfig(url="ws://127.0.0.1:7880", api_key="testkey", api_secret=SecretStr(SECRET))
    async with WebServer(PersonaCatalog(CONFIGS), livekit=livekit, port=0, agent_wait_s=0) as server:
        yield server


async def _post_token(server: WebServer, body: object) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.post(f"{server.url}/api/token", json=body) as response:
        return response.status, await response.json()


async def test_token_is_for_one_fresh_room_and_identity_and_expires_in_ten_minutes(web_server: WebServer) -> None:
    """Each token names one new room and one new identity, may only join, and lives 10 minutes."""
    _, first = await _post_token(web_server, {"persona": "persona"})
    _, second = await _post_token(web_server, {"persona": "persona"})
    assert first["room"] != second["room"] and first["identity"] != second["identity"]
    assert first["url"] == "ws://127.0.0.1:7880"

    claims = api.TokenVerifier("testkey", SECRET).verify(first["token"])
    assert claims.identity == first["identity"]
    assert claims.video.room == first["room"] and claims.video.room.startswith("facetalk-")
    assert claims.video.room_join
    assert not (claims.video.room_create or claims.video.room_admin or claims.video.room_list)
    payload = json.loads(base64.urlsafe_b64decode(first["token"].split(".")[1] + "=="))
    assert 590 <= payload["exp"] - time.time() <= 600


async def test_token_carries_the_chosen_persona_for_the_worker(web_server: WebServer) -> None:
    """The persona id travels as the participant attribute facetalk.persona; none means the default."""
    _, nova = await _post_token(web_server, {"persona": "nova"})
    _, default = await _post_token(web_server, {})
    verifier = api.TokenVerifier("testkey", SECRET)
    assert verifier.verify(nova["token"]).attributes == {"facetalk.persona": "nova"}
    assert verifier.verify(default["token"]).attributes == {"facetalk.persona": "persona"}


@pytest.mark.parametrize("body", [{"persona": "nobody"}, {"persona": "../pipeline"}, {"persona": "pipeline"}, {"persona": 3}])
async def test_unknown_persona_gets_no_token(web_server: WebServer, body: dict) -> None:
    """A persona id that is not a persona file in the folder is refused with a readable error."""
    status, answer = await _post_token(web_server, body)
    assert status == 400
    assert "token" not in answer and "persona" in answer["error"]


async def test_the_secret_never_reaches_the_page(web_server: WebServer) -> None:
    """No response of the server, the page's files included, contains the API secret."""
    responses: list[str] = []
    async with aiohttp.ClientSession() as http:
        for path in ["/", "/app.js", "/style.css", "/api/personas", "/api/personas/persona/portrait"]:
            async with http.get(web_server.url + path) as response:
                assert response.status == 200, path
                responses.append(str(response.headers) + (await response.read()).decode("latin-1"))
        async with http.post(web_server.url + "/api/token", json={"persona": "nova"}) as response:
            responses.append(str(response.headers) + await response.text())
    assert all(SECRET not in text for text in responses)


async def test_binds_loopback_by_default() -> None:
    """Both the server and the `facetalk web` command listen on 127.0.0.1 unless told otherwise."""
    async with WebServer(PersonaCatalog(CONFIGS), port=0) as server:
        assert server._runner is not None
        assert [address[0] for address in server._runner.addresses] == ["127.0.0.1"]
    assert inspect.signature(cli.web).parameters["host"].default == "127.0.0.1"


async def test_personas_are_listed_default_first_with_thumbnails(web_server: WebServer) -> None:
    """Every persona YAML of the folder is listed, the default first, each with a small JPEG portrait."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{web_server.url}/api/personas") as response:
            listing = await response.json()
        ids = [p["id"] for p in listing["personas"]]
        assert ids[0] == "persona" and "nova" in ids and "pipeline" not in ids
        assert {p["name"] for p in listing["personas"]} >= {"Astra", "Nova"}
        async with http.get(web_server.url + listing["personas"][0]["portrait_url"]) as response:
            assert response.content_type == "image/jpeg"
            jpeg = await response.read()
        async with http.get(f"{web_server.url}/api/personas/nobody/portrait") as response:
            assert response.status == 404
    thumbnail = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert thumbnail.shape == (192, 192, 3) and len(jpeg) < 30_000


def test_broken_persona_files_are_left_out(tmp_path: Path) -> None:
    """A persona file that does not validate is skipped; the valid ones are still offered."""
    shutil.copy(CONFIGS / "persona.yaml", tmp_path / "persona.yaml")
    (tmp_path / "portraits").mkdir()
    shutil.copy(CONFIGS / "portraits" / "astronaut.png", tmp_path / "portraits" / "astronaut.png")
    (tmp_path / "broken.yaml").write_text("kind: persona\nname: Broken\n")
    (tmp_path / "pipeline.yaml").write_text("kind: pipeline\n")
    assert [entry.id for entry in PersonaCatalog(tmp_path).entries()] == ["persona"]


@pytest.mark.e2e
async def test_a_token_joins_its_own_room_and_no_other(livekit_server: LocalLiveKitServer) -> None:
    """On the real server the token lands in its own room; rewritten for another room, it is refused."""
    livekit = LiveKitConfig(
        url=livekit_server.url, api_key=livekit_server.api_key, api_secret=SecretStr(livekit_server.api_secret)
    )
    async with WebServer(PersonaCatalog(CONFIGS), livekit=livekit, port=0, agent_wait_s=0) as server:
        _, grant = await _post_token(server, {"persona": "persona"})

    room = rtc.Room()
    await room.connect(grant["url"], grant["token"])
    try:
        assert room.name == grant["room"]
        assert room.local_participant.identity == grant["identity"]
    finally:
        await room.disconnect()

    header, payload, signature = grant["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["video"]["room"] = "someone-elses-room"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    other = rtc.Room()
    with pytest.raises(rtc.ConnectError):
        await other.connect(grant["url"], f"{header}.{forged}.{signature}")
    await other.disconnect()
