"""Every long-running command stops cleanly on SIGTERM (as ``docker stop`` sends) and SIGINT.

Each command runs as users run it, in a child process of its own session, so
the signal reaches only that process, as a process manager's does. After it
the command must exit within a bound, leave no descendant process running,
and free its ports for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from livekit import api, rtc
from livekit.agents import utils

from facetalk.agent.avatar_dispatch import AvatarJob, avatar_identity, request_avatar
from facetalk.livekit_server import LocalLiveKitServer, free_port
from facetalk.testing.local_stack import running_avatar_worker
from facetalk.testing.simulated_user import SimulatedUser

from .conftest import CONFIGS, running_worker

pytestmark = pytest.mark.e2e

Start = Callable[[list[str]], tuple[subprocess.Popen[bytes], Path]]

_EXIT_BOUND_S = 20.0
"""How long a command may take to exit after the signal, beyond any drain it is
configured for: several times what it takes on a busy two-core machine."""


_START_BOUND_S = 180.0
"""How long a command may take to be ready: importing the CLI alone takes tens of
seconds on a loaded two-core machine, and the worker loads its models."""


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Starts ``facetalk ARGS`` in a session of its own, logging to a file; kills what a failed test left."""
    started: list[subprocess.Popen[bytes]] = []

    def launch(args: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"{args[0]}-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "facetalk", *args], stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        started.append(process)
        return process, log

    yield launch
    for process in started:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_for(ready: Callable[[], bool], process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert process.poll() is None, f"exited with {process.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"not ready within {timeout_s} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


def _answers(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # it answered
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    return check


def _port_is_free(port: int) -> bool:
    """A new server could listen on ``port`` (as servers do, with SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        s.listen()
        return True


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _stop_and_check(
    process: subprocess.Popen[bytes], sig: signal.Signals, *, ports: list[int], log: Path, bound_s: float
) -> float:
    """Send ``sig``; assert a clean exit within ``bound_s``, no surviving descendant, free ports. Returns the exit time."""
    descendants = psutil.Process(process.pid).children(recursive=True)
    sent = time.monotonic()
    process.send_signal(sig)
    try:
        code = process.wait(timeout=bound_s)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"still running {bound_s} s after {sig.name}:\n{log.read_text()[-3000:]}") from None
    took = time.monotonic() - sent
    assert code == 0, f"exit code {code} after {sig.name}:\n{log.read_text()[-3000:]}"
    deadline = time.monotonic() + 5  # reparented orphans would be reaped by init by now
    while (survivors := [p for p in descendants if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for survivor in survivors:
        survivor.kill()
    assert not survivors, f"children outlived {sig.name}: {[p.pid for p in survivors]}"
    assert [port for port in ports if not _port_is_free(port)] == []
    return took


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_server_run_stops_livekit_and_frees_its_port(start: Start, sig: signal.Signals) -> None:
    """`facetalk server run` stops its livekit-server child, which frees the signalling port."""
    port = free_port()
    process, log = start(["server", "run", "--port", str(port)])
    _wait_for(_answers(f"http://127.0.0.1:{port}"), process, log, timeout_s=_START_BOUND_S)
    assert psutil.Process(process.pid).children(), "no livekit-server child"
    _stop_and_check(process, sig, ports=[port], log=log, bound_s=_EXIT_BOUND_S)


def test_web_stops_on_sigterm(start: Start) -> None:
    """`facetalk web` closes its listener and exits 0 on SIGTERM."""
    port = free_port()
    process, log = start(["web", "--personas", str(CONFIGS), "--port", str(port)])
    _wait_for(_answers(f"http://127.0.0.1:{port}/"), process, log, timeout_s=_START_BOUND_S)
    _stop_and_check(process, signal.SIGTERM, ports=[port], log=log, bound_s=_EXIT_BOUND_S)


async def test_worker_drains_its_room_within_its_drain_timeout(
    livekit_server: LocalLiveKitServer, tmp_path: Path
) -> None:
    """SIGTERM during a conversation: the worker drains for at most drain_timeout_s, then
    closes the room's job and exits 0; no job process survives and its health port is free."""
    port, drain_s = free_port(), 3
    worker_config = {"worker": {"http_port": port, "drain_timeout_s": drain_s}}
    with running_worker(livekit_server, worker_config, tmp_path, show_log=False) as worker:
        user = SimulatedUser()
        await user.join(livekit_server.url, livekit_server.token("person", f"drain-{uuid.uuid4().hex[:8]}"))
        try:
            await user.wait_for_greeting()
            log = tmp_path / "worker.log"
            took = _stop_and_check(
                worker, signal.SIGTERM, ports=[port], log=log, bound_s=drain_s + _EXIT_BOUND_S
            )
        finally:
            await user.leave()
    text = log.read_text()
    assert "draining worker" in text
    assert took >= drain_s - 0.5, f"exited after {took:.1f} s: the room was not given its drain time"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_idle_avatar_worker_stops_at_once(
    livekit_server: LocalLiveKitServer, tmp_path: Path, sig: signal.Signals
) -> None:
    """`facetalk avatar-worker start` with no room exits 0 without waiting out its drain time,
    stops its idle job process and frees its health port."""
    port, drain_s = free_port(), 30
    worker_config = {"worker": {"http_port": port, "drain_timeout_s": drain_s}}
    with running_avatar_worker(
        livekit_server, f"shutdown-{uuid.uuid4().hex[:8]}", tmp_path, pipeline=worker_config, show_log=False
    ) as worker:
        assert psutil.Process(worker.pid).children(), "no idle job process"
        took = _stop_and_check(worker, sig, ports=[port], log=tmp_path / "avatar-worker.log", bound_s=_EXIT_BOUND_S)
    assert took < drain_s, f"an idle avatar worker took {took:.1f} s to stop"


async def test_avatar_worker_drains_its_avatar_within_its_drain_timeout(
    livekit_server: LocalLiveKitServer, tmp_path: Path
) -> None:
    """SIGTERM while an avatar is dispatched into a room whose agent stays: the avatar worker
    drains for at most drain_timeout_s, then ends the avatar's job and exits 0; no job process
    survives, its health port is free, and the avatar leaves the room."""
    port, drain_s, agent_name = free_port(), 3, f"shutdown-{uuid.uuid4().hex[:8]}"
    worker_config = {"worker": {"http_port": port, "drain_timeout_s": drain_s}}
    room_name = f"avatar-drain-{uuid.uuid4().hex[:8]}"
    agent = rtc.Room()  # the dispatching agent, as far as the avatar worker can tell: it only waits for audio
    await agent.connect(livekit_server.url, livekit_server.token("agent", room_name))
    lkapi = api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret)
    try:
        with running_avatar_worker(
            livekit_server, agent_name, tmp_path, pipeline=worker_config, show_log=False
        ) as worker:
            job = AvatarJob(persona="persona", agent_identity="agent", avatar_identity=avatar_identity(room_name))
            await request_avatar(lkapi, room_name, job, agent_name)
            avatar = await asyncio.wait_for(utils.wait_for_participant(agent, identity=job.avatar_identity), 120)
            assert avatar.attributes.get("lk.publish_on_behalf") == "agent"
            log = tmp_path / "avatar-worker.log"
            took = await asyncio.to_thread(
                _stop_and_check, worker, signal.SIGTERM, ports=[port], log=log, bound_s=drain_s + _EXIT_BOUND_S
            )
        deadline = time.monotonic() + _EXIT_BOUND_S  # the server notices a killed participant's socket close
        while job.avatar_identity in agent.remote_participants and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert job.avatar_identity not in agent.remote_participants, "the avatar stayed in the room"
    finally:
        await lkapi.aclose()
        await agent.disconnect()
    assert "draining worker" in log.read_text()
    assert took >= drain_s - 0.5, f"exited after {took:.1f} s: the avatar was not given its drain time"


def test_demo_stops_everything_it_started(start: Start, tmp_path: Path) -> None:
    """`facetalk demo` on SIGTERM stops the worker (and its LLM server and job processes),
    the web server and livekit-server, and frees their ports."""
    lk_port, web_port, health_port = free_port(), free_port(), free_port()
    pipeline = yaml.safe_load((CONFIGS / "pipeline.yaml").read_text())
    pipeline["worker"] = {**pipeline["worker"], "http_port": health_port, "drain_timeout_s": 2}
    pipeline_path = tmp_path / "pipeline.yaml"
    pipeline_path.write_text(yaml.safe_dump(pipeline))
    process, log = start(
        ["demo", "--port", str(lk_port), "--web-port", str(web_port),
         "--persona", str(CONFIGS / "persona.yaml"), "--pipeline", str(pipeline_path)],
    )  # fmt: skip
    _wait_for(lambda: "registered worker" in log.read_text(errors="replace"), process, log, timeout_s=2 * _START_BOUND_S)
    _wait_for(_answers(f"http://127.0.0.1:{web_port}/api/personas"), process, log, timeout_s=_START_BOUND_S)
    names = " ".join(" ".join(p.cmdline()) for p in psutil.Process(process.pid).children(recursive=True))
    assert "livekit-server" in names and "llama_cpp.server" in names and "web" in names, names
    _stop_and_check(
        process, signal.SIGTERM, ports=[lk_port, web_port, health_port], log=log, bound_s=2 + 2 * _EXIT_BOUND_S
    )
