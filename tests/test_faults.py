"""Faults in the middle of a conversation, on the real server: nobody is left in a silent room.

A worker killed mid-answer (the OOM killer, a crash) takes its room's agent
with it, and LiveKit does not dispatch the room again; it notices the dead
agent only after about 20 s. The page notices sooner, from the avatar's
video (which never stops while an agent lives), ends the call with a message
that says what happened, and a new join gets an agent from a worker that is
still there. (The LLM endpoint dying mid-answer is in test_agent_e2e.)
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect

from facetalk.livekit_server import LocalLiveKitServer

from .browser import CHROMIUM, CHROMIUM_FLAGS, quiet_microphone, running_facetalk_web
from .conftest import CONFIGS, running_worker

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason="Debian's chromium is not installed"),
]


@pytest.fixture
def two_workers(livekit_server: LocalLiveKitServer, tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen[bytes], Path]]]:
    folders = [tmp_path / "a", tmp_path / "b"]
    with running_worker(livekit_server, {}, folders[0]) as a, running_worker(livekit_server, {}, folders[1]) as b:
        yield [(a, folders[0] / "worker.log"), (b, folders[1] / "worker.log")]


@pytest.fixture
def facetalk_web(livekit_server: LocalLiveKitServer, tmp_path: Path) -> Iterator[str]:
    with running_facetalk_web(livekit_server, tmp_path, CONFIGS) as url:
        yield url


async def test_worker_killed_mid_answer_ends_the_call_with_a_message_and_a_rejoin_gets_an_agent(
    two_workers: list[tuple[subprocess.Popen[bytes], Path]], facetalk_web: str, tmp_path: Path
) -> None:
    """SIGKILL the worker while its avatar speaks: within 10 s the page says the avatar stopped
    responding and is back in the lobby; joining again brings a moving avatar from the other worker."""
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_FLAGS, *quiet_microphone(tmp_path)]
        )
        try:
            page = await browser.new_page()
            await page.goto(facetalk_web)
            await page.click("#join")
            await expect(page.locator("#call")).to_be_visible(timeout=60_000)
            await expect(page.locator("#transcript li.agent").first).to_be_visible(timeout=60_000)  # the greeting
            room = (await page.locator("#connection").inner_text()).removeprefix("in room ")
            (victim,) = [process for process, log in two_workers if room in log.read_text()]
            victim.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            await expect(page.locator("#error")).to_contain_text("stopped responding", timeout=10_000)
            assert time.monotonic() - killed < 10
            await expect(page.locator("#lobby")).to_be_visible()

            await page.click("#join")
            await expect(page.locator("#call")).to_be_visible(timeout=60_000)
            await expect(page.locator("#transcript li.agent").first).to_be_visible(timeout=60_000)  # greeted again
            frames = "document.querySelector('#avatar').getVideoPlaybackQuality().totalVideoFrames"
            before = await page.evaluate(frames)
            await page.wait_for_timeout(1000)
            assert await page.evaluate(frames) > before, "the new avatar's video is not moving"
            assert await page.locator("#error").is_hidden()
        finally:
            await browser.close()
