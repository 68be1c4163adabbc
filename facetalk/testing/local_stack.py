"""Run the worker as users run it, beside a local server, for tests and evaluations.

:func:`running_worker` starts ``facetalk agent start`` (and
:func:`running_avatar_worker` ``facetalk avatar-worker start``) in a child process with
a pipeline derived from a base file, waits until it has registered with the
LiveKit server (a room created before that would never get an agent), and
always stops it. :func:`local_stack` adds the LiveKit server and, if asked
for, the scripted LLM: the whole stack ``facetalk eval`` talks to.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import yaml

from ..errors import FaceTalkError
from ..livekit_server import LocalLiveKitServer
from ..resources import PACKAGED_CONFIGS
from ..shutdown import child_process_options
from .scripted_llm import ScriptedLLMServer

__all__ = ["SCRIPTED_ANSWERS", "local_stack", "running_avatar_worker", "running_process", "running_worker"]

_CONFIGS = PACKAGED_CONFIGS

SCRIPTED_ANSWERS = {
    "name": "My name is Astra.",
    "story": (
        "Let me tell you a story about the stars. Long ago a small rocket dreamed of the moon. "
        "It practised every day, and one bright morning it finally lifted off. Everyone below was cheering."
    ),
}
"""What the scripted LLM of :func:`local_stack` answers, by a word of the question."""
SCRIPTED_DEFAULT = "That is a good question. I love talking about life in orbit."


@contextlib.contextmanager
def running_worker(
    server: LocalLiveKitServer,
    pipeline: dict[str, Any],
    folder: Path,
    *,
    persona: Path = _CONFIGS / "persona.yaml",
    base_pipeline: Path = _CONFIGS / "pipeline.yaml",
    show_log: bool = True,
) -> Iterator[subprocess.Popen[bytes]]:
    """``facetalk agent start`` with ``pipeline`` merged one level deep over ``base_pipeline``.

    The worker counts its load in rooms (up to 8), so a busy test machine never
    stops rooms from being dispatched, and it picks a free health port. Its log is in ``folder/worker.log`` and, with
    ``show_log``, printed when it stops, so a failing test shows it.
    """
    pipeline_path = _write_pipeline(pipeline, folder, base_pipeline, max_rooms=8)
    command = ["agent", "--persona", str(persona), "--pipeline", str(pipeline_path), "start"]
    with running_process(server, ["-m", "facetalk", *command], folder / "worker.log", show_log=show_log) as process:
        yield process


@contextlib.contextmanager
def running_avatar_worker(
    server: LocalLiveKitServer,
    agent_name: str,
    folder: Path,
    *,
    max_rooms: int = 1,
    pipeline: dict[str, Any] | None = None,
    personas: Path = _CONFIGS,
    base_pipeline: Path = _CONFIGS / "pipeline.yaml",
    show_log: bool = True,
) -> Iterator[subprocess.Popen[bytes]]:
    """``facetalk avatar-worker start`` registered as ``agent_name``, serving ``max_rooms`` avatars,
    with ``pipeline`` merged as in :func:`running_worker` (e.g. a ``worker`` section's health port).

    Its log is ``folder/avatar-worker.log``; it is running once registered with ``server``.
    """
    pipeline = {**(pipeline or {}), "avatar": {**(pipeline or {}).get("avatar", {}), "agent_name": agent_name}}
    pipeline_path = _write_pipeline(pipeline, folder, base_pipeline, max_rooms=max_rooms)
    command = ["avatar-worker", "--personas", str(personas), "--pipeline", str(pipeline_path), "start"]
    log = folder / "avatar-worker.log"
    with running_process(server, ["-m", "facetalk", *command], log, show_log=show_log) as process:
        yield process


def _write_pipeline(pipeline: dict[str, Any], folder: Path, base_pipeline: Path, *, max_rooms: int) -> Path:
    """``pipeline`` merged one level deep over ``base_pipeline``, with a test worker section, in ``folder``."""
    config = yaml.safe_load(base_pipeline.read_text())
    config["worker"] = {"max_rooms": max_rooms, "num_idle_processes": 1, "http_port": 0}
    for section, values in pipeline.items():
        replace = section == "llm" or not isinstance(values, dict)
        config[section] = values if replace else {**config.get(section, {}), **values}
    folder.mkdir(parents=True, exist_ok=True)
    pipeline_path = folder / "pipeline.yaml"
    pipeline_path.write_text(yaml.safe_dump(config))
    return pipeline_path


@contextlib.contextmanager
def running_process(
    server: LocalLiveKitServer,
    python_args: list[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    show_log: bool = True,
) -> Iterator[subprocess.Popen[bytes]]:
    """A livekit-agents worker, ``python <python_args>``, on ``server``'s keys (and ``env``),
    yielded once registered; always stopped, its log printed with ``show_log``."""
    env = {
        **os.environ,
        "LIVEKIT_URL": server.url,
        "LIVEKIT_API_KEY": server.api_key,
        "LIVEKIT_API_SECRET": server.api_secret,
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, *python_args],
            env=env, stdout=log, stderr=subprocess.STDOUT, **child_process_options(),
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
            if show_log:
                print(f"--- {log_path.name} ---")
                print(log_path.read_text(errors="replace")[-6000:])


def _llm_section(llm: str, scripted: ScriptedLLMServer | None) -> dict:
    if llm == "embedded":
        return {"provider": "embedded"}
    if scripted is not None:
        return scripted.llm_section()
    return {"provider": "openai", "base_url": llm, "model": "default"}


@contextlib.asynccontextmanager
async def local_stack(
    llm: str, persona: Path, pipeline: Path, folder: Path
) -> AsyncIterator[tuple[LocalLiveKitServer, subprocess.Popen[bytes]]]:
    """A local LiveKit server and worker process (and the scripted LLM, if asked for)."""
    async with contextlib.AsyncExitStack() as stack:
        scripted = None
        if llm == "scripted":
            scripted = await stack.enter_async_context(
                ScriptedLLMServer(rules=SCRIPTED_ANSWERS, default=SCRIPTED_DEFAULT)
            )
        server = stack.enter_context(LocalLiveKitServer(log_path=folder / "livekit-server.log"))
        worker = stack.enter_context(
            running_worker(
                server,
                {"llm": _llm_section(llm, scripted)},
                folder,
                persona=persona,
                base_pipeline=pipeline,
                show_log=False,
            )
        )
        yield server, worker


def _wait_for_log(path: Path, needle: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Block until ``needle`` is in the log, or fail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while needle not in path.read_text(errors="replace"):
        if process.poll() is not None:
            tail = path.read_text(errors="replace")[-2000:]
            raise FaceTalkError(f"the worker exited with {process.returncode} before it registered:\n{tail}")
        if time.monotonic() > deadline:
            raise FaceTalkError(f"the worker did not register within {timeout_s} s (log: {path})")
        time.sleep(0.2)
