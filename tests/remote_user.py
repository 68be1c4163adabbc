"""A simulated user in a process of its own, so a test can cut it off the network.

``python -m tests.remote_user URL TOKEN`` joins, prints ``greeted`` once the
agent has greeted it, then for each line ``ask`` on stdin asks "What is your
name?" and prints ``answered <transcript>`` (or ``no answer``). Stopping the
process (SIGSTOP) silences every packet it would send or acknowledge, which
the server sees as the user's network going away; SIGCONT brings it back.
"""

from __future__ import annotations

import asyncio
import sys

from facetalk.testing.simulated_user import SimulatedUser

from .speech import speak, transcribe


async def main(url: str, token: str) -> None:
    user = SimulatedUser()
    await user.join(url, token)
    await user.wait_for_greeting()
    print("greeted", flush=True)
    question = speak("What is your name?")
    loop = asyncio.get_running_loop()
    while (line := await loop.run_in_executor(None, sys.stdin.readline)).strip() == "ask":
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
