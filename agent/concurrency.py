"""Run a stream's helper coroutines side by side, as livekit's own streams do.

A stream hook (``_run``, ``_main_task``) often pumps input and output at once.
:func:`run_together` is the ``gather`` + ``cancel_and_wait`` idiom of
livekit's stream adapters, written once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from livekit.agents import utils

__all__ = ["run_together"]


async def run_together(*coroutines: Coroutine[Any, Any, None]) -> None:
    """Run the coroutines as tasks until all are done.

    The first failure cancels the others and is raised as it is, not wrapped
    in an ``ExceptionGroup`` as a ``TaskGroup`` would: the livekit base classes
    catch ``APIError`` by type. Cancelling the caller cancels them all.
    """
    tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
    try:
        await asyncio.gather(*tasks)
    finally:
        await utils.aio.cancel_and_wait(*tasks)
