"""Debian's chromium, as the browser tests drive it through playwright (never a browser build of its own),
and the `facetalk web` its pages talk to."""

from __future__ import annotations

import contextlib
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetalk.livekit_server import LocalLiveKitServer, free_port
from facetalk.process import ServiceProcess

__all__ = ["CHROMIUM", "CHROMIUM_FLAGS", "quiet_microphone", "running_facetalk_web"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip


def quiet_microphone(folder: Path) -> list[str]:
    """Chromium flags for a silent fake microphone: its default one beeps, which interrupts the agent."""
    quiet = folder / "quiet.wav"
    with wave.open(str(quiet), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(bytes(2 * 16_000))
    return ["--use-fake-ui-for-media-stream", f"--use-file-for-fake-audio-capture={quiet}"]


@contextlib.contextmanager
def running_facetalk_web(livekit_server: LocalLiveKitServer, folder: Path, personas: Path) -> Iterator[str]:
    """``facetalk web`` as users run it, on a free port, keys from the environment; yields its URL."""
    port = free_port()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LIVEKIT_URL", livekit_server.url)
        env.setenv("LIVEKIT_API_KEY", livekit_server.api_key)
        env.setenv("LIVEKIT_API_SECRET", livekit_server.api_secret)
        service = ServiceProcess(
            name="facetalk web",
            args=[sys.executable, "-m", "facetalk", "web", "--port", str(port), "--personas", str(personas)],
            ready_url=f"http://127.0.0.1:{port}/api/personas",
            log_path=folder / "web.log",
            hint="run 'make setup' to build the page",
        )
        service.start(timeout_s=60)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        service.stop()
