"""Find, build and run a local LiveKit server.

The demo and the tests talk to a real ``livekit-server``. It is looked up in
this order:

1. ``$FACETALK_LIVEKIT_SERVER`` (a path to the binary);
2. ``livekit-server`` on ``PATH``;
3. ``bin/livekit-server`` in the user's cache (``~/.cache/facetalk``, see
   :func:`facetalk.resources.cache_dir`), built once from the Go module proxy by
   :func:`build_server` (``facetalk server build``; ``make setup`` runs it).
   Never into the package: an installed wheel stays read-only and one build
   serves every checkout and virtualenv of the user.

:class:`LocalLiveKitServer` starts it in ``--dev`` mode, bound to loopback on
free ports, waits until it answers HTTP, and always stops it again.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from datetime import timedelta
from dataclasses import dataclass, field
from pathlib import Path

from livekit import api

from .config import DEV_API_KEY, DEV_API_SECRET
from .errors import FaceTalkError
from .process import ServiceProcess, StartStopContext
from .resources import cache_dir

__all__ = [
    "LIVEKIT_SERVER_VERSION",
    "LocalLiveKitServer",
    "build_server",
    "find_server",
    "free_port",
    "make_token",
    "server_cache_dir",
]

# The newest release whose go.mod has no `replace` directives, which
# `go install pkg@version` refuses; later releases cannot be installed this way.
LIVEKIT_SERVER_VERSION = "v1.13.5"
LIVEKIT_SERVER_PACKAGE = "github.com/livekit/livekit-server/cmd/server"


def server_cache_dir() -> Path:
    """Where :func:`build_server` puts the binary and :func:`find_server` looks for it last."""
    return cache_dir() / "bin"


def _install_hint() -> str:
    return (
        f"put livekit-server on PATH (e.g. 'go install {LIVEKIT_SERVER_PACKAGE}@{LIVEKIT_SERVER_VERSION}'), "
        f"set FACETALK_LIVEKIT_SERVER to its path, or run 'facetalk server build' (needs Go >= 1.26; "
        f"'make setup' in a checkout runs it) to build it once into {server_cache_dir()}"
    )


def find_server() -> Path:
    """Return the livekit-server binary to use, or explain the three ways to get one."""
    if env := os.environ.get("FACETALK_LIVEKIT_SERVER"):
        if not Path(env).is_file():
            raise FaceTalkError(f"FACETALK_LIVEKIT_SERVER={env} does not exist", hint=_install_hint())
        return Path(env)
    if on_path := shutil.which("livekit-server"):
        return Path(on_path)
    cached = server_cache_dir() / "livekit-server"
    if cached.is_file():
        return cached
    raise FaceTalkError("livekit-server was not found", hint=_install_hint())


def build_server() -> Path:
    """Build the pinned livekit-server with ``go install`` into :func:`server_cache_dir`."""
    dest_dir = server_cache_dir()
    go = shutil.which("go")
    if go is None:
        raise FaceTalkError(
            "cannot build livekit-server: 'go' is not installed",
            hint="install Go >= 1.26 (https://go.dev/dl/) and run this again, or put a livekit-server "
            "binary on PATH or set FACETALK_LIVEKIT_SERVER to its path",
        )
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as gobin:
        result = subprocess.run(
            [go, "install", f"{LIVEKIT_SERVER_PACKAGE}@{LIVEKIT_SERVER_VERSION}"],
            env={**os.environ, "GOBIN": gobin},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise FaceTalkError(
                f"building livekit-server {LIVEKIT_SERVER_VERSION} failed:\n{result.stderr[-2000:]}",
                hint=_install_hint(),
            )
        target = dest_dir / "livekit-server"
        shutil.move(Path(gobin) / "server", target)
    return target


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that is free right now (TCP by default)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_udp_range(size: int) -> tuple[int, int]:
    """``size`` consecutive free UDP ports, found by probing from a random start."""
    for _ in range(50):
        start = free_port(socket.SOCK_DGRAM)
        sockets: list[socket.socket] = []
        try:
            for port in range(start, start + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return start, start + size - 1
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise FaceTalkError(f"could not find {size} consecutive free UDP ports on 127.0.0.1")


def make_token(
    identity: str,
    room: str,
    *,
    api_key: str = DEV_API_KEY,
    api_secret: str = DEV_API_SECRET,
    ttl_s: float = 600,
    name: str | None = None,
    attributes: dict[str, str] | None = None,
) -> str:
    """A join token scoped to one room and one identity.

    ``attributes`` become the participant's attributes as it joins, so the
    agent can read them (e.g. ``facetalk.persona``) before anything is said.
    """
    token = (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_name(name or identity)
        .with_ttl(timedelta(seconds=ttl_s))
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_attributes(attributes or {})
    )
    return token.to_jwt()


@dataclass
class LocalLiveKitServer(StartStopContext):
    """A ``livekit-server --dev`` on loopback, on free ports unless given.

    Use as a context manager; the process is always stopped on exit. Its log
    goes to ``log_path`` so a failed start can be explained. ``host`` is the
    one address it binds and announces to clients (its ICE candidates): another
    local address than loopback lets a client in a network namespace reach it.
    """

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    rtc_tcp_port: int = field(default_factory=free_port)
    udp_ports: tuple[int, int] = field(default_factory=lambda: _free_udp_range(20))
    binary: Path = field(default_factory=find_server)
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.gettempdir()) / f"livekit-server-{os.getpid()}.log"
    )
    api_key: str = DEV_API_KEY
    api_secret: str = DEV_API_SECRET
    _service: ServiceProcess | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _config_body(self) -> str:
        start, end = self.udp_ports
        return (
            f"port: {self.port}\n"
            f"rtc:\n"
            f"  tcp_port: {self.rtc_tcp_port}\n"
            f"  port_range_start: {start}\n"
            f"  port_range_end: {end}\n"
            f"  use_external_ip: false\n"
        )

    def start(self, timeout_s: float = 20.0) -> LocalLiveKitServer:
        """Start the server and wait until it answers, or raise with its log."""
        self._service = ServiceProcess(
            name=f"livekit-server on port {self.port}",
            args=[
                str(self.binary),
                "--dev",
                "--bind", self.host,
                "--node-ip", self.host,
                "--config-body", self._config_body(),
            ],  # fmt: skip
            ready_url=self.http_url,
            log_path=self.log_path,
            hint=f"check that the ports are free and that '{self.binary} --version' runs",
        )
        self._service.start(timeout_s)
        return self

    def stop(self) -> None:
        """Stop the server. Safe to call twice."""
        if self._service is not None:
            self._service.stop()

    def token(self, identity: str, room: str, *, ttl_s: float = 600) -> str:
        """A token for this server, scoped to ``room`` and ``identity``."""
        return make_token(
            identity, room, api_key=self.api_key, api_secret=self.api_secret, ttl_s=ttl_s
        )
