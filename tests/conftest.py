"""Shared fixtures. The LiveKit server here is the real binary, on loopback."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from facetalk.livekit_server import LocalLiveKitServer

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


@pytest.fixture(scope="session")
def livekit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLiveKitServer]:
    """A ``livekit-server --dev`` on free loopback ports, stopped after the session."""
    log = tmp_path_factory.mktemp("livekit") / "server.log"
    with LocalLiveKitServer(log_path=log) as server:
        yield server


@contextlib.contextmanager
def running_worker(
    server: LocalLiveKitServer, pipeline: dict[str, Any], folder: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``facetalk agent start`` with the default persona and the given pipeline.

    ``pipeline`` is merged, one level deep, over ``configs/pipeline.yaml``.
    The worker's log is printed when it stops, so a failing test shows it.
    """
    config = yaml.safe_load((CONFIGS / "pipeline.yaml").read_text())
    # Never refuse a room because the test machine is busy; a free health port.
    config["worker"] = {"load_threshold": 10.0, "num_idle_processes": 1, "http_port": 0}
    for section, values in pipeline.items():
        config[section] = values if section == "llm" else {**config.get(section, {}), **values}
    folder.mkdir(parents=True, exist_ok=True)
    pipeline_path = folder / "pipeline.yaml"
    pipeline_path.write_text(yaml.safe_dump(config))
    log_path = folder / "worker.log"
    env = {
        **os.environ,
        "LIVEKIT_URL": server.url,
        "LIVEKIT_API_KEY": server.api_key,
        "LIVEKIT_API_SECRET": server.api_secret,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "facetalk", "agent", "--persona", str(CONFIGS / "persona.yaml"),
             "--pipeline", str(pipeline_path), "start"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_for_log(log_path, "registered worker", process, timeout_s=120)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            print(f"--- worker log ({log_path}) ---")
            print(log_path.read_text(errors="replace")[-6000:])


def _wait_for_log(path: Path, needle: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Block until ``needle`` is in the log, or fail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while needle not in path.read_text(errors="replace"):
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode} before '{needle}'")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no '{needle}' in {path} after {timeout_s} s")
        time.sleep(0.2)
