"""A simulated user in a process of its own, so a test can cut it off the network.

``python -m tests.remote_user URL TOKEN`` joins, prints ``greeted`` once the
agent has greeted it, then for each line ``ask`` on stdin asks "What is your
name?" and prints ``answered <transcript>`` (or ``no answer``); ``frames T0 T1``
prints ``frames <n>``, the video frames received between those ``time.monotonic()``
times (one clock for every process on the machine). Its room's
connection events come as ``event reconnecting|reconnected|disconnected``
lines when they happen. Stopping the process (SIGSTOP) silences every packet
it would send or acknowledge; run in a network namespace
(:mod:`tests.isolated_network`) its link can be cut for real.
"""

from __future__ import annotations

import asyncio
import sys
from typing import IO

from facetalk.testing.simulated_user import SimulatedUser

from .speech import speak, transcribe


def read_reply(stdout: IO[str]) -> tuple[str, list[str]]:
    """The next line that is not an event (blocking), and the events printed before it."""
    events = []
    while (line := stdout.readline()).startswith("event "):
        events.append(line.removeprefix("event ").strip())
    return line, events


async def main(url: str, token: str) -> None:
    user = SimulatedUser()
    for event in ("reconnecting", "reconnected", "disconnected"):
        user.room.on(event, lambda *_, event=event: print("event", event, flush=True))
    await user.join(url, token)
    await user.wait_for_greeting()
    print("greeted", flush=True)
    question = speak("What is your name?")
    loop = asyncio.get_running_loop()
    while (line := (await loop.run_in_executor(None, sys.stdin.readline)).strip()).startswith(("ask", "frames")):
        if line.startswith("frames"):
            start, end = map(float, line.split()[1:])
            print("frames", sum(start <= t <= end for t in user.video.times), flush=True)
            continue
        asked = await user.say(question)
        try:
            await user.wait_for_answer(timeout=60)
            start, end = user.audio.loud_span(after=asked.end)
            print("answered", transcribe(user.audio.between(start - 0.2, end + 0.2)), flush=True)
        except (TimeoutError, ValueError) as e:
            print("no answer", e, flush=True)
    await user.leave()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
