"""The web page in real headless Chromium, against the real server, worker and ``facetalk web``.

Chromium is Debian's (``/usr/bin/chromium``), driven by playwright; its
microphone is a WAV of piper asking "What is your name?", looped by
Chromium's fake capture device. The LLM is the scripted endpoint of
``test_agent_e2e``, so the answer is known. The conversation test saves
screenshots (desktop and phone width) in its temporary folder, and into
``docs/`` when ``FACETALK_UPDATE_DOCS=1``, so a test run leaves the tree clean.
"""

from __future__ import annotations

import os
import re
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Playwright, async_playwright, expect
from pydantic import SecretStr

from facetalk.config import LiveKitConfig
from facetalk.dialogue.personas import PersonaCatalog
from facetalk.livekit_server import LocalLiveKitServer, free_port
from facetalk.testing.scripted_llm import ScriptedLLMServer
from facetalk.testing.simulated_user import MIC_RATE
from facetalk.web import WebServer

from .browser import CHROMIUM, CHROMIUM_FLAGS, running_facetalk_web
from .conftest import CONFIGS, REPO
from .conversation import scripted_worker
from .speech import speak

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

QUESTION = "What is your name?"
ANSWER = "My name is Nova."

if not CHROMIUM.is_file():
    pytest.skip("Debian's chromium is not installed (make setup installs it as root)", allow_module_level=True)


@pytest.fixture(scope="module")
def question_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake microphone, looped: 10 s of quiet for the greeting, the question, 6 s for the answer."""
    quiet = np.zeros(MIC_RATE, np.int16)
    samples = np.concatenate([*[quiet] * 10, speak(QUESTION), *[quiet] * 6])
    path = tmp_path_factory.mktemp("mic") / "question.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(MIC_RATE)
        wav.writeframes(samples.tobytes())
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as driver:
        yield driver


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(playwright: Playwright, question_wav: Path) -> AsyncIterator[Browser]:
    """Chromium that grants the microphone and feeds it the question."""
    browser = await playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[*CHROMIUM_FLAGS, "--use-fake-ui-for-media-stream", f"--use-file-for-fake-audio-capture={question_wav}"],
    )
    yield browser
    await browser.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scripted_llm() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer(rules={"name": ANSWER}, default="I see.") as server:
        yield server


@pytest.fixture(scope="module")
def worker(
    livekit_server: LocalLiveKitServer, scripted_llm: ScriptedLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    with scripted_worker(livekit_server, scripted_llm, tmp_path_factory.mktemp("worker"), llm_timeout_s=3):
        yield


@pytest.fixture(scope="module")
def facetalk_web(livekit_server: LocalLiveKitServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_facetalk_web(livekit_server, tmp_path_factory.mktemp("web"), CONFIGS) as url:
        yield url


async def _video_is_playing(page: Page) -> None:
    """The avatar <video> has a size and its time and frame count move on."""
    await page.wait_for_function("document.querySelector('#avatar').videoWidth > 0", timeout=90_000)
    before = await page.evaluate(
        "(v => [v.currentTime, v.getVideoPlaybackQuality().totalVideoFrames])(document.querySelector('#avatar'))"
    )
    await page.wait_for_timeout(1000)
    after = await page.evaluate(
        "(v => [v.currentTime, v.getVideoPlaybackQuality().totalVideoFrames])(document.querySelector('#avatar'))"
    )
    assert after[0] > before[0] and after[1] > before[1], (before, after)
    assert await page.evaluate("document.querySelector('#avatar').videoWidth") >= 256


async def test_a_conversation_in_chromium(
    browser: Browser, facetalk_web: str, worker: None, tmp_path: Path
) -> None:
    """Pick Nova, join, see the avatar move, hear her greeting, ask her name and read her answer."""
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(facetalk_web)
    await page.click('.persona[data-id="nova"]')
    await expect(page.locator("#join")).to_have_text("Talk to Nova")
    await page.click("#join")
    await expect(page.locator("#call")).to_be_visible(timeout=15_000)

    await _video_is_playing(page)
    agent_lines = page.locator("#transcript li.agent")
    # The greeting is Nova's: the worker loaded the persona the token named.
    await expect(agent_lines.first).to_contain_text("Nova here", timeout=60_000)
    user_lines = page.locator("#transcript li.user:not(.interim)")
    await expect(user_lines.filter(has_text=re.compile(r"what.*name", re.I)).first).to_be_visible(timeout=60_000)
    await expect(agent_lines.filter(has_text=ANSWER).first).to_be_visible(timeout=30_000)
    await expect(page.locator("#latency")).to_contain_text(re.compile(r"Reply time \d+\.\d\d s"), timeout=15_000)
    await expect(page.locator("#state")).to_have_text(re.compile("listening|speaking|thinking|idle"))
    assert await page.locator("#error").is_hidden()

    shots = REPO / "docs" if os.environ.get("FACETALK_UPDATE_DOCS") == "1" else tmp_path
    await page.screenshot(path=shots / "web-client.png")
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.wait_for_timeout(300)
    await page.screenshot(path=shots / "web-client-phone.png")

    await page.click("#mute")
    await expect(page.locator("#mute")).to_have_attribute("aria-pressed", "true")
    await page.click("#leave")
    await expect(page.locator("#lobby")).to_be_visible()
    await page.close()


async def _join_and_read_error(browser: Browser, url: str) -> str:
    page = await browser.new_page()
    try:
        await page.goto(url)
        await page.click("#join")
        error = page.locator("#error")
        await expect(error).to_be_visible(timeout=30_000)
        await expect(page.locator("#lobby")).to_be_visible()
        return await error.inner_text()
    finally:
        await page.close()


async def test_page_says_when_livekit_is_unreachable(browser: Browser) -> None:
    """With nothing listening at the LiveKit URL, the page says it cannot reach the server, and where."""
    dead_url = f"ws://127.0.0.1:{free_port()}"
    async with WebServer(PersonaCatalog(CONFIGS), livekit=LiveKitConfig(url=dead_url), port=0) as server:
        message = await _join_and_read_error(browser, server.url)
    assert "Cannot reach the LiveKit server" in message and dead_url in message, message


async def test_page_says_when_livekit_refuses_the_token(browser: Browser, livekit_server: LocalLiveKitServer) -> None:
    """A token signed with the wrong secret is refused, and the page says which keys to check."""
    wrong = LiveKitConfig(url=livekit_server.url, api_key=livekit_server.api_key, api_secret=SecretStr("not-the-secret"))
    async with WebServer(PersonaCatalog(CONFIGS), livekit=wrong, port=0) as server:
        message = await _join_and_read_error(browser, server.url)
    assert "refused the token" in message, message


async def test_page_says_when_the_facetalk_server_is_gone(browser: Browser) -> None:
    """If `facetalk web` stops after the page loaded, joining says the FaceTalk server is unreachable."""
    page = await browser.new_page()
    try:
        async with WebServer(PersonaCatalog(CONFIGS), port=0) as server:
            await page.goto(server.url)
            await expect(page.locator("#join")).to_be_enabled()
        await page.click("#join")
        await expect(page.locator("#error")).to_contain_text("Cannot reach the FaceTalk server")
    finally:
        await page.close()


async def test_page_says_when_the_microphone_is_denied(
    playwright: Playwright, livekit_server: LocalLiveKitServer, worker: None
) -> None:
    """A browser that denies the microphone gets a message saying how to allow it, and stays in the lobby."""
    browser = await playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_FLAGS, "--deny-permission-prompts"]
    )
    livekit = LiveKitConfig(
        url=livekit_server.url, api_key=livekit_server.api_key, api_secret=SecretStr(livekit_server.api_secret)
    )
    try:
        async with WebServer(PersonaCatalog(CONFIGS), livekit=livekit, port=0) as server:
            message = await _join_and_read_error(browser, server.url)
    finally:
        await browser.close()
    assert "Microphone access was denied" in message, message
