"""How FaceTalk's long-running commands stop: SIGTERM the same as Ctrl-C.

Process managers stop services with SIGTERM (``docker stop``, systemd,
Kubernetes). Python's default SIGTERM handling ends the process at once,
skipping the ``finally`` blocks and context managers that stop child
processes, so a ``livekit-server`` child would outlive ``facetalk server run``
and keep its ports. Every long-running command therefore treats SIGTERM as it
treats Ctrl-C:

* synchronous commands run inside :func:`sigterm_as_interrupt`, where SIGTERM
  raises ``KeyboardInterrupt`` like SIGINT does;
* asyncio services await :func:`stop_requested`, which returns on the first
  SIGINT or SIGTERM, so their cleanup runs on the event loop.

Children are started in their own session (``start_new_session=True``) so a
Ctrl-C in the terminal reaches only the parent, which then stops each child
once, in order; see :func:`child_process_options`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["STOP_SIGNALS", "child_process_options", "sigterm_as_interrupt", "stop_requested"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


async def stop_requested() -> None:
    """Return at the first SIGINT or SIGTERM this process receives."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM us when the parent dies.

    This covers the one case the parent's cleanup cannot: the parent killed
    with SIGKILL (the OOM killer, a crashed test).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def child_process_options() -> dict[str, Any]:
    """``subprocess.Popen`` keywords for a child the caller will stop itself.

    Its own session keeps a terminal's Ctrl-C from reaching it directly (the
    parent stops it, once); on Linux it also dies if the parent is killed.
    """
    preexec: Callable[[], None] | None = _die_with_parent if sys.platform == "linux" else None
    return {"start_new_session": True, "preexec_fn": preexec}
