"""Talk to a FaceTalk avatar in a LiveKit room, from Python.

Run it from the repository root::

    python -m examples.talk_in_a_room                          # piper asks the question
    python -m examples.talk_in_a_room --say "Where do you live?"
    python -m examples.talk_in_a_room --wav me.wav             # your own recording
    python -m examples.talk_in_a_room --llm http://127.0.0.1:8080/v1

It starts what ``make demo`` starts, minus the web page: a local LiveKit
server and a FaceTalk worker (the embedded SmolLM2 answers unless ``--llm``
names an OpenAI-compatible endpoint). Then it joins a room as a user, waits
for the avatar's greeting, says one thing, and prints what the avatar
answered and how soon. It also saves the last video frame it received.

To talk with your own microphone instead, run ``make demo`` and open the page.

:func:`talk` is the part to reuse: it joins any LiveKit server where a
FaceTalk worker runs (yours, or LiveKit Cloud) given a URL and API keys.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetalk.eval.script import ScriptTurn, turn_audio
from facetalk.livekit_server import LocalLiveKitServer
from facetalk.testing.local_stack import running_worker
from facetalk.testing.simulated_user import MIC_RATE, SPEECH_RMS, SimulatedUser

__all__ = ["Answer", "facetalk_stack", "main", "talk"]


@dataclass
class Answer:
    """What the user heard and saw after speaking."""

    text: str
    """The avatar's answer, as the agent transcribed it into the room."""
    seconds: float
    """From the end of the user's speech to the first sound of the answer."""
    frames: int
    """Video frames received while in the room."""
    last_frame: np.ndarray
    """The last frame received (grayscale, 256²)."""


async def talk(server: LocalLiveKitServer, speech: np.ndarray, *, room: str | None = None) -> Answer:
    """Join a room of ``server`` as a user, say ``speech`` (int16, 48 kHz mono), and return the answer.

    A FaceTalk worker serving ``server`` joins the room when the user does;
    every wait here is bounded, so a missing worker raises ``TimeoutError``.
    """
    user = SimulatedUser(keep_video_size=256)
    await user.join(server.url, server.token("you", room or f"example-{uuid.uuid4().hex[:8]}"))
    try:
        await user.wait_for_greeting(timeout=120)
        said = await user.say(speech)
        await user.wait_for_answer(timeout=60)
    finally:
        await user.leave()
    times, levels = user.audio.rms()
    heard = times[(times > said.end) & (levels > SPEECH_RMS)]
    text = " ".join(t for at, who, t, final in user.transcripts if final and who != "you" and at > said.end)
    return Answer(
        text=text.strip(),
        seconds=float(heard[0] - said.end) if len(heard) else float("nan"),
        frames=len(user.video.frames),
        last_frame=user.video.frames[-1],
    )


@contextlib.contextmanager
def facetalk_stack(llm: dict, folder: Path) -> Iterator[LocalLiveKitServer]:
    """A local LiveKit server and a FaceTalk worker whose pipeline's ``llm`` section is ``llm``.

    Logs go to ``folder``; both processes are stopped on exit.
    """
    with LocalLiveKitServer(log_path=folder / "livekit-server.log") as server:
        with running_worker(server, {"llm": llm}, folder, show_log=False):
            yield server


def speech_to_say(text: str | None, wav: Path | None) -> np.ndarray:
    """The user's utterance at 48 kHz: a recording if given, else ``text`` spoken by piper."""
    turn = ScriptTurn(wav=wav) if wav is not None else ScriptTurn(text=text or "What is your name?")
    return turn_audio(turn, MIC_RATE)


def run(llm: dict, speech: np.ndarray, frame_path: Path | None = None) -> Answer:
    """Start a local stack with ``llm``, talk once, print and return the answer."""
    with tempfile.TemporaryDirectory(prefix="facetalk-example-") as tmp:
        with facetalk_stack(llm, Path(tmp)) as server:
            answer = asyncio.run(talk(server, speech))
    print(f"avatar: {answer.text}")
    print(f"answered {answer.seconds * 1000:.0f} ms after you stopped; {answer.frames} video frames received")
    if frame_path is not None:
        import cv2

        cv2.imwrite(str(frame_path), answer.last_frame)
        print(f"last frame: {frame_path}")
    return answer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--say", help="what piper says for you (default: 'What is your name?')")
    parser.add_argument("--wav", type=Path, help="a recording of you to play instead")
    parser.add_argument("--llm", help="an OpenAI-compatible base URL; default: the embedded SmolLM2")
    parser.add_argument("--frame", type=Path, default=Path("avatar-frame.png"), help="where to save the last frame")
    args = parser.parse_args(argv)
    llm = {"provider": "openai", "base_url": args.llm, "model": "default"} if args.llm else {"provider": "embedded"}
    run(llm, speech_to_say(args.say, args.wav), args.frame)


if __name__ == "__main__":
    main()
