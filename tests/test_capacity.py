"""A clear answer at capacity: two single-room workers, and a third user.

Everything is real: the LiveKit server, two ``facetalk agent start`` workers
with ``max_rooms: 1``, ``facetalk web``'s token endpoint and, for the page,
Debian's chromium. When both workers are in a conversation, a third user is
told that every avatar is busy (the endpoint within its agent wait, the page
within 3 s) and gets an avatar once a conversation ends; nobody is put in a
room without an agent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from livekit import api
from playwright.async_api import async_playwright, expect
from pydantic import SecretStr

from facetalk.config import LiveKitConfig
from facetalk.dialogue.personas import PersonaCatalog
from facetalk.livekit_server import LocalLiveKitServer, free_port
from facetalk.testing.simulated_user import SimulatedUser
from facetalk.web import WebServer

from .browser import CHROMIUM, CHROMIUM_FLAGS
from .conftest import CONFIGS, running_worker

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]



@pytest.fixture(scope="module")
def single_room_workers(
    livekit_server: LocalLiveKitServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Path]]:
    """Two workers that each take one room; yields their log files."""
    single = {"worker": {"max_rooms": 1}}
    folders = [tmp_path_factory.mktemp(f"worker{i}") for i in range(2)]
    with running_worker(livekit_server, single, folders[0]), running_worker(livekit_server, single, folders[1]):
        yield [folder / "worker.log" for folder in folders]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web(livekit_server: LocalLiveKitServer) -> AsyncIterator[WebServer]:
    livekit = LiveKitConfig(
        url=livekit_server.url, api_key=livekit_server.api_key, api_secret=SecretStr(livekit_server.api_secret)
    )
    async with WebServer(PersonaCatalog(CONFIGS), livekit=livekit, port=0) as server:
        yield server


async def _post_token(web: WebServer, body: dict | None = None) -> tuple[int, dict, float]:
    """(status, body, seconds taken) of one POST /api/token."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as http, http.post(f"{web.url}/api/token", json=body or {}) as response:
        return response.status, await response.json(), time.monotonic() - started


async def _occupy(web: WebServer) -> SimulatedUser:
    """A user who got a token from the endpoint and has been greeted by its agent.

    A worker whose last room just ended is still starting a fresh job process
    (seconds, on a busy machine), so the first answer may be "busy": the
    user waits as the page does.
    """
    grant = await _token_once_free(web, timeout_s=90)
    user = SimulatedUser()
    await user.join(grant["url"], grant["token"])
    await user.wait_for_greeting()
    return user


async def _token_once_free(web: WebServer, timeout_s: float) -> dict:
    """Ask as the page does while waiting: again after each 'busy', within ``timeout_s``."""
    deadline, waited_in = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        status, body, _ = await _post_token(web, {"room": waited_in})
        if status == 200:
            return body
        assert status == 503 and body["busy"], body
        waited_in = body["room"]
        await asyncio.sleep(body["retry_after_s"] / 5)
    raise AssertionError(f"no avatar became free within {timeout_s} s")


async def test_a_token_comes_with_an_agent_already_in_the_room(
    single_room_workers: list[Path], web: WebServer, livekit_server: LocalLiveKitServer
) -> None:
    """The endpoint opens the room and answers once an agent is in it; the agent greets the user."""
    grant = await _token_once_free(web, timeout_s=90)
    async with api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret) as lk:
        listed = await lk.room.list_participants(api.ListParticipantsRequest(room=grant["room"]))
    assert [p.kind for p in listed.participants] == [api.ParticipantInfo.Kind.AGENT]
    user = SimulatedUser()
    await user.join(grant["url"], grant["token"])
    try:
        await user.wait_for_greeting()
    finally:
        await user.leave()


async def test_full_workers_make_the_endpoint_say_busy_until_one_frees(
    single_room_workers: list[Path], web: WebServer, livekit_server: LocalLiveKitServer
) -> None:
    """Both workers talking: a third token request is answered 503 busy (with its waiting room,
    never someone else's), and the workers log that they are full; once a user leaves, asking
    again gets an avatar."""
    first = await _occupy(web)
    second = await _occupy(web)
    try:
        await _third_user_is_told_busy_then_served(web, livekit_server, single_room_workers, first)
    finally:
        await second.leave()
        if first.room.isconnected():
            await first.leave()


async def _third_user_is_told_busy_then_served(
    web: WebServer, livekit_server: LocalLiveKitServer, worker_logs: list[Path], first: SimulatedUser
) -> None:
    try:
        status, busy, took = await _post_token(web)
        assert status == 503 and busy["busy"] and busy["retry_after_s"] > 0, busy
        assert "busy" in busy["error"] and "token" not in busy
        assert web.agent_wait_s <= took < web.agent_wait_s + 3, took
        status, again, _ = await _post_token(web, {"room": first.room_name})
        assert status == 503 and again["room"] not in (first.room_name, busy["room"]), again
        async with api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret) as lk:
            rooms = {room.name for room in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms}
            waiting = await lk.room.list_participants(api.ListParticipantsRequest(room=again["room"]))
        assert busy["room"] in rooms and not waiting.participants, rooms
        assert all("all 1 rooms in use" in log.read_text() for log in worker_logs)
    finally:
        await first.leave()
    grant = await _token_once_free(web, timeout_s=90)
    third = SimulatedUser()
    await third.join(grant["url"], grant["token"])
    try:
        await third.wait_for_greeting()
    finally:
        await third.leave()


async def test_endpoint_says_when_livekit_is_unreachable() -> None:
    """With nothing at the LiveKit URL, the token endpoint answers 502 naming the URL, not 'busy'."""
    dead = LiveKitConfig(url=f"ws://127.0.0.1:{free_port()}")
    async with WebServer(PersonaCatalog(CONFIGS), livekit=dead, port=0) as server:
        status, body, _ = await _post_token(server)
    assert status == 502 and "Cannot reach the LiveKit server" in body["error"] and dead.url in body["error"], body


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.is_file(), reason="Debian's chromium is not installed")
async def test_page_says_busy_within_3_s_and_connects_when_an_avatar_frees(
    single_room_workers: list[Path], web: WebServer, tmp_path: Path
) -> None:
    """A third user in Chromium sees 'busy' within 3 s of joining, chooses to wait, and is
    in a call with a moving avatar once one of the two conversations ends."""
    first = await _occupy(web)
    second = await _occupy(web)
    try:
        async with async_playwright() as driver:
            browser = await driver.chromium.launch(
                executable_path=str(CHROMIUM), args=[*CHROMIUM_FLAGS, "--use-fake-ui-for-media-stream"]
            )
            page = await browser.new_page()
            await page.goto(web.url)
            await expect(page.locator("#join")).to_be_enabled()
            clicked = time.monotonic()
            await page.click("#join")
            await expect(page.locator("#busy")).to_contain_text("busy", timeout=3_000)
            assert time.monotonic() - clicked < 3.0
            assert await page.locator("#call").is_hidden()
            await page.screenshot(path=tmp_path / "web-busy.png")
            await page.click("#wait")
            await expect(page.locator("#busy")).to_contain_text("Waiting for one to free up")
            await first.leave()
            await expect(page.locator("#call")).to_be_visible(timeout=60_000)
            await page.wait_for_function("document.querySelector('#avatar').videoWidth > 0", timeout=60_000)
            assert await page.locator("#busy").is_hidden()
            await page.click("#leave")
            await browser.close()
    finally:
        await second.leave()
        if first.room.isconnected():
            await first.leave()
