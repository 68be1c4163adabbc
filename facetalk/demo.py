"""``make demo``: a local LiveKit server, the agent worker, the web page, and how to join.

Everything runs on loopback with the embedded defaults. The worker is the
same ``facetalk agent start`` a user would run, in a child process, so the
demo exercises the real dispatch path: a room gets an agent when a person
joins it. ``facetalk web`` runs beside it, also as users run it, offering the
personas of the worker's persona folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from .config import load_pipeline
from .livekit_server import LocalLiveKitServer, free_port, make_token
from .shutdown import child_process_options

__all__ = ["run_demo"]

DEMO_ROOM = "facetalk-demo"
WEB_PORT = 8080


def run_demo(persona: Path, pipeline: Path, *, port: int, console: Console, web_port: int = WEB_PORT) -> None:
    """Run until Ctrl-C or SIGTERM (as ``KeyboardInterrupt``), or until a child exits; then stop everything.

    The children run in their own sessions, so a Ctrl-C reaches only this
    process, which stops each child once: the worker drains its rooms (within
    its ``drain_timeout_s``) before it is killed.
    """
    drain_s = load_pipeline(pipeline).worker.drain_timeout_s
    with LocalLiveKitServer(port=port, rtc_tcp_port=free_port()) as server:
        env = {
            **os.environ,
            "LIVEKIT_URL": server.url,
            "LIVEKIT_API_KEY": server.api_key,
            "LIVEKIT_API_SECRET": server.api_secret,
        }
        children: list[tuple[str, subprocess.Popen[bytes], float]] = []
        try:
            worker = subprocess.Popen(
                [sys.executable, "-m", "facetalk", "agent", "--persona", str(persona), "--pipeline", str(pipeline), "start"],
                env=env, **child_process_options(),
            )  # fmt: skip
            children.append(("worker", worker, drain_s + _STOP_MARGIN_S))
            web = subprocess.Popen(
                [sys.executable, "-m", "facetalk", "web", "--port", str(web_port), "--personas", str(persona.parent)],
                env=env, **child_process_options(),
            )  # fmt: skip
            children.append(("web server", web, _STOP_MARGIN_S))
            token = make_token("you", DEMO_ROOM, api_key=server.api_key, api_secret=server.api_secret, ttl_s=6 * 3600)
            console.print(
                Panel.fit(
                    f"Open [bold]http://127.0.0.1:{web_port}[/] in a browser to talk to the avatar.\n\n"
                    f"LiveKit server: [bold]{server.url}[/]  (keys devkey / secret)\n"
                    f"Room: [bold]{DEMO_ROOM}[/]\n\n"
                    "Or join from any LiveKit client with this URL and token:\n"
                    f"[dim]{token}[/]\n\n"
                    "The agent joins as soon as you do. Ctrl-C stops everything.",
                    title="FaceTalk demo",
                ),
                soft_wrap=True,
            )
            while all(child.poll() is None for _, child, _ in children):
                time.sleep(0.5)
            for name, child, _ in children:
                if child.poll() is not None:
                    console.print(f"[red]the {name} exited with code {child.returncode}[/]")
        except KeyboardInterrupt:
            console.print("stopping…")
        finally:
            _stop_children(children)


_STOP_MARGIN_S = 15.0
"""How long a child may take to exit after SIGTERM, beyond the worker's drain time."""


def _stop_children(children: list[tuple[str, subprocess.Popen[bytes], float]]) -> None:
    """SIGTERM every child at once, then wait for each up to its bound and kill it if it overstays."""
    for _, child, _ in children:
        if child.poll() is None:
            child.terminate()
    for _, child, bound_s in reversed(children):
        try:
            child.wait(timeout=bound_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
