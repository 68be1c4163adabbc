"""A FaceTalk face on a plain livekit-agents agent: nothing of FaceTalk's worker, one line of its avatar.

Everything here is livekit-agents as its own docs write it: an ``AgentServer``,
an ``AgentSession`` with a VAD, STT, LLM and TTS, an ``Agent``. The speech
plugins happen to be FaceTalk's (webrtcvad, faster-whisper, piper: all on the
CPU, no keys); any livekit plugins work. The LLM is any OpenAI-compatible
endpoint (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``OPENAI_MODEL``).

The face is the three lines around ``facetalk.AvatarSession``; call its
``start`` before ``session.start``, so the session's audio goes through the
avatar. ``placement="remote"`` would have LiveKit dispatch a
``facetalk avatar-worker`` instead of rendering here.

Run it beside a LiveKit server (keys in ``LIVEKIT_URL``/``LIVEKIT_API_KEY``/
``LIVEKIT_API_SECRET``)::

    python examples/plain_livekit_agent.py dev
"""

from __future__ import annotations

import os

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, JobProcess, cli
from livekit.plugins import openai

import facetalk
from facetalk.agent.plugins.faster_whisper import FasterWhisperSTT
from facetalk.agent.plugins.piper import PiperTTS
from facetalk.agent.plugins.webrtcvad import WebRTCVAD

GREETING = "Hello! I am Astra. Ask me anything."


def prewarm(proc: JobProcess) -> None:
    """Load the speech models once per process, as livekit-agents recommends."""
    proc.userdata["vad"] = WebRTCVAD()
    proc.userdata["stt"] = FasterWhisperSTT.load()
    proc.userdata["tts"] = PiperTTS.load()


MAX_ROOMS = 2

server = AgentServer(
    setup_fnc=prewarm,
    # Loading whisper and piper can take longer than livekit's default 10 s on a small CPU.
    initialize_process_timeout=60.0,
    # Rendering a face keeps the CPU busy, so CPU load (livekit's default) would soon read as
    # "full"; count rooms instead.
    load_fnc=lambda server: len(server.active_jobs) / MAX_ROOMS,
    load_threshold=1.0,
)


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    session = AgentSession(
        vad=ctx.proc.userdata["vad"],
        stt=ctx.proc.userdata["stt"],
        llm=openai.LLM(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini")),
        tts=ctx.proc.userdata["tts"],
    )

    avatar = facetalk.AvatarSession(persona="persona")
    await avatar.start(session, room=ctx.room)

    await session.start(Agent(instructions="You are Astra, a friendly astronaut. Answer in one short sentence."),
                        room=ctx.room)
    session.say(GREETING)


if __name__ == "__main__":
    cli.run_app(server)
