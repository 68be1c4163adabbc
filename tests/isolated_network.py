"""A network of its own for one process, whose link the test can cut and bring back.

A Linux network namespace joined to this machine by a veth pair: the process
inside reaches the host only over that link. Setting the namespace's end of
the link down is what a laptop sees when its Wi-Fi drops: every packet of the
process, signalling and media, in and out, stops at once, while the process
runs on and notices (unlike a frozen process). Up again, the route is back
and the same sockets can talk.

Needs root (CI runs as root) and ``ip`` from iproute2; :func:`isolated_network`
raises :class:`NoIsolatedNetwork` with the reason when it cannot have them, for
the test to skip with. No packet filter is needed, and nothing outside the
namespace and its veth is changed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["IsolatedNetwork", "NoIsolatedNetwork", "isolated_network"]


class NoIsolatedNetwork(Exception):
    """This machine or user cannot make a network namespace; the message says why."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class IsolatedNetwork:
    """A namespace ``name`` whose link ``inner`` reaches the host at ``host_ip``."""

    name: str
    inner: str
    host_ip: str

    def command(self, *args: str) -> list[str]:
        """``args`` run inside the namespace (same user, files and environment)."""
        return ["ip", "netns", "exec", self.name, *args]

    @contextlib.contextmanager
    def cut(self) -> Iterator[None]:
        """The namespace's link is down inside the block, and always up again after it."""
        _ip("-n", self.name, "link", "set", self.inner, "down")
        try:
            yield
        finally:
            _ip("-n", self.name, "link", "set", self.inner, "up")


@contextlib.contextmanager
def isolated_network() -> Iterator[IsolatedNetwork]:
    """A fresh namespace and veth pair, named and addressed after this process, always removed."""
    if os.geteuid() != 0:
        raise NoIsolatedNetwork("a network namespace needs root (CI runs as root)")
    if shutil.which("ip") is None:
        raise NoIsolatedNetwork("'ip' (iproute2) is not installed")
    pid = os.getpid()
    name, outer, inner = f"facetalk-{pid}", f"ft{pid}h", f"ft{pid}n"
    # A /30 of its own per process, so concurrent runs on one machine never share one.
    base = f"10.{200 + pid // 65536 % 50}.{pid // 256 % 256}.{pid % 64 * 4}"
    prefix, last = base.rsplit(".", 1)
    host_ip, inner_ip = f"{prefix}.{int(last) + 1}", f"{prefix}.{int(last) + 2}"
    try:
        _ip("netns", "add", name)
    except subprocess.CalledProcessError as e:
        raise NoIsolatedNetwork(f"cannot create a network namespace here: {e.stderr.strip()}") from e
    try:
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner, "netns", name)
        _ip("addr", "add", f"{host_ip}/30", "dev", outer)
        _ip("link", "set", outer, "up")
        _ip("-n", name, "addr", "add", f"{inner_ip}/30", "dev", inner)
        _ip("-n", name, "link", "set", inner, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield IsolatedNetwork(name=name, inner=inner, host_ip=host_ip)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", outer)  # takes its peer with it
        _ip("netns", "del", name)
