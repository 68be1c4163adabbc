"""The whole agent in a real room: it hears the user, answers through the avatar, yields the floor.

The worker runs as users run it (``facetalk agent start``), against the real
LiveKit server, with the real models (faster-whisper tiny.en, webrtcvad,
piper, the CPU avatar). The LLM is a scripted OpenAI-compatible endpoint on
loopback, talked to by the real ``openai`` client. The user is a
:class:`SimulatedUser` speaking piper-synthesised speech.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
import pytest_asyncio
from livekit import api, rtc

from facetalk.livekit_server import LocalLiveKitServer
from facetalk.testing.scripted_llm import ScriptedLLMServer
from facetalk.testing.simulated_user import MIC_RATE, SPEECH_RMS

from .conftest import REPO
from .conversation import assert_lip_synced_answer, join_greeted, scripted_worker
from .lipreading import BILABIAL_ANSWER, NOT_RELIABLE_YET, closure_of_an_answer
from .remote_user import read_reply
from .speech import speak, transcribe, word_error_rate

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

QUESTION = "What is your name?"
NAME_ANSWER = "My name is Astra."
LONG_ANSWER = (
    "Let me tell you a long story about the stars. "
    "Once upon a time there was a small rocket that wanted to fly to the moon. "
    "It practised every single day, and it dreamed about the silver dust and the quiet sky. "
    "One morning it finally lifted off, and everyone below was cheering."
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scripted_llm() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer(
        rules={"name": NAME_ANSWER, "story": LONG_ANSWER, "boat": BILABIAL_ANSWER}, default="I see.",
        slow_delay_s=20
    ) as server:
        yield server


@pytest.fixture(scope="module")
def worker(
    livekit_server: LocalLiveKitServer,
    scripted_llm: ScriptedLLMServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[subprocess.Popen[bytes]]:
    """One worker for the module; its LLM is the scripted endpoint, with a 3 s timeout."""
    with scripted_worker(livekit_server, scripted_llm, tmp_path_factory.mktemp("worker"), llm_timeout_s=3) as process:
        yield process


@pytest.fixture
def llm_mode(scripted_llm: ScriptedLLMServer) -> Iterator[ScriptedLLMServer]:
    """Lets a test switch the endpoint to failing or slow; restored afterwards."""
    yield scripted_llm
    scripted_llm.mode = "ok"


async def test_agent_hears_answers_and_animates(
    livekit_server: LocalLiveKitServer, worker: subprocess.Popen[bytes]
) -> None:
    """User asks the name; the agent transcribes it, answers by voice, and the avatar's mouth moves only then."""
    user = await join_greeted(livekit_server)
    try:
        asked = await user.say(speak(QUESTION))
        await user.wait_for_answer()
        await user.wait_until(lambda: any(final for *_, final in user.transcripts), timeout=5)
    finally:
        await user.leave()

    heard = [text for _, who, text, final in user.transcripts if who == "person" and final]
    assert heard, "the agent published no final transcript of the user"
    assert word_error_rate(QUESTION, heard[-1]) <= 0.2, heard

    assert_lip_synced_answer(user, asked, NAME_ANSWER)


@NOT_RELIABLE_YET
async def test_lips_close_on_p_b_m_at_the_receiver(
    livekit_server: LocalLiveKitServer, worker: subprocess.Popen[bytes]
) -> None:
    """piper's phoneme timing reaches the in-process avatar: in the frames the user receives,
    the lips are shut on at least 80 % of the p/b/m of the answer."""
    closure = await closure_of_an_answer(livekit_server, f"e2e-{uuid.uuid4().hex[:8]}")
    assert closure is not None and closure >= 0.8, closure


async def test_user_talking_over_the_agent_stops_it(
    livekit_server: LocalLiveKitServer, worker: subprocess.Popen[bytes]
) -> None:
    """Talking over a long answer stops the agent's audio at the user within 1.5 s, while the
    user is still talking, and the avatar listens again.

    Measured as the agent's audio received after the first sample of the user's speech, in samples
    (a stalled test process stamps queued chunks late, as if the agent had spoken on).
    The stop path's target (≤ 300 ms) is a benchmark's: ``facetalk eval latency`` reports it
    as ``barge_in_audio_stop_ms``, p50 / p90 = 0.25 / 0.39 s on a quiet machine. Its stages,
    seen once from both ends: user to the agent's VAD 0.27 s (0.09 s of it the VAD's minimum
    speech), VAD to the cleared queue 0.02 s, cleared queue to silence at the user 0.21 s
    (transport and jitter buffer). Each stage is a process waiting for its share of the CPU:
    beside one burner it read 0.66-0.69 s, and on this 2-core VM shared five ways (load 7-10)
    0.82-1.18 s (five runs, three with the old "Wait, stop please."). The bound is that worst
    reading plus a quarter. The interruption has no pause in it (piper pauses 0.29 s after
    "Wait,", longer than the VAD's 0.25 s end of speech, so the turn could end there and the
    agent answer into the rest), and it lasts 2.5 s, longer than the bound.
    """
    story, stop = speak("Tell me a story."), speak("Wait stop please I have another question.")
    user = await join_greeted(livekit_server)
    try:
        await user.say(story)
        await user.wait_until(lambda: user.agent_label() == "speaking", timeout=30)
        await asyncio.sleep(2.0)  # well into the answer
        interruption = await user.say(stop)
        await asyncio.sleep(1.0)
    finally:
        await user.leave()

    barge_in = interruption.start
    speaking = user.audio.between(barge_in - 0.5, barge_in)
    assert len(speaking) and np.abs(speaking).max() > 3 * SPEECH_RMS, (
        "the agent was not speaking when the user cut in: its answer fell behind (a machine too busy to hold a conversation)"
    )
    # Until the user stops talking the agent has nothing new to say: the quiet that runs to
    # the end of the interruption starts where the answer was stopped.
    played = user.audio.played_after(barge_in, until=interruption.end)
    assert played <= 1.5, f"agent audio went on for {played:.2f} s"
    states = user.label_changes()
    assert any(t > barge_in and s == "listening" for t, s in states), states


async def test_a_pause_inside_a_question_does_not_end_the_turn(
    livekit_server: LocalLiveKitServer, worker: subprocess.Popen[bytes], scripted_llm: ScriptedLLMServer
) -> None:
    """A 0.2 s pause mid-question is shorter than the silence that ends a turn: the agent
    answers the whole question. A preflight reply to the first half may start in the pause
    (when the decode fits in it; on a busy machine it may not), but it is never the one played."""
    first_half = speak("Please tell me")
    first_half = first_half[: np.flatnonzero(np.abs(first_half.astype(np.int32)) > 64)[-1] + 1]
    pause = np.zeros(int(0.2 * MIC_RATE), np.int16)
    seen = len(scripted_llm.requests)
    user = await join_greeted(livekit_server)
    try:
        asked = await user.say(np.concatenate([first_half, pause, speak("your name.")]))
        await user.wait_for_answer()
    finally:
        await user.leave()

    asked_llm = scripted_llm.questions[seen:]
    assert "tell me your name" in asked_llm[-1], asked_llm
    assert all("please tell me" in text for text in asked_llm), asked_llm  # only this question's halves
    start, end = user.audio.loud_span(after=asked.end)
    answer = transcribe(user.audio.between(start - 0.2, end + 0.2))
    assert word_error_rate(NAME_ANSWER, answer) <= 0.25, answer


@pytest.mark.parametrize("mode", ["error", "slow"])
async def test_failing_llm_gets_an_apology_and_the_agent_stays(
    livekit_server: LocalLiveKitServer,
    worker: subprocess.Popen[bytes],
    llm_mode: ScriptedLLMServer,
    mode: str,
) -> None:
    """With the LLM failing or too slow, the agent says it cannot answer and stays in the room."""
    user = await join_greeted(livekit_server)
    try:
        llm_mode.mode = mode  # type: ignore[assignment]
        asked = await user.say(speak(QUESTION))
        await user.wait_for_answer()
        agent = [
            p for p in user.room.remote_participants.values()
            if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        ]
        assert agent, "the agent left the room"
    finally:
        await user.leave()
    start, end = user.audio.loud_span(after=asked.end)
    reply = transcribe(user.audio.between(start - 0.2, end + 0.2)).lower()
    assert "answer right now" in reply or "can't answer" in reply, reply


async def test_llm_dying_mid_answer_gets_an_apology_and_the_next_question_an_answer(
    livekit_server: LocalLiveKitServer, worker: subprocess.Popen[bytes], llm_mode: ScriptedLLMServer
) -> None:
    """The endpoint closes the connection half-way through a streamed answer: the agent says
    the half it got and that it lost its connection, then answers the next question normally."""
    user = await join_greeted(livekit_server)
    try:
        llm_mode.mode = "drop"
        asked = await user.say(speak("Tell me a story."))
        await user.wait_for_answer()
        llm_mode.mode = "ok"
        start, end = user.audio.loud_span(after=asked.end)
        cut_off = transcribe(user.audio.between(start - 0.2, end + 0.2)).lower()
        again = await user.say(speak(QUESTION))
        await user.wait_for_answer()
    finally:
        await user.leave()
    assert "story" in cut_off and "lost my connection" in cut_off and "cheering" not in cut_off, cut_off
    start, end = user.audio.loud_span(after=again.end)
    answer = transcribe(user.audio.between(start - 0.2, end + 0.2))
    assert word_error_rate(NAME_ANSWER, answer) <= 0.25, answer


async def test_a_5_s_network_drop_of_the_user_does_not_end_the_conversation(
    livekit_server: LocalLiveKitServer, worker: subprocess.Popen[bytes]
) -> None:
    """The user's process is frozen for 5 s (no packet in or out, as when Wi-Fi drops), then
    resumes: livekit reconnects, and the same session answers the next question."""
    room = f"e2e-drop-{uuid.uuid4().hex[:6]}"
    user = subprocess.Popen(
        [sys.executable, "-m", "tests.remote_user", livekit_server.url, livekit_server.token("person", room)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert user.stdin is not None and user.stdout is not None
    try:
        assert await asyncio.wait_for(asyncio.to_thread(user.stdout.readline), 120) == "greeted\n"
        user.send_signal(signal.SIGSTOP)
        await asyncio.sleep(5)
        user.send_signal(signal.SIGCONT)
        user.stdin.write("ask\n")
        user.stdin.flush()
        reply, _ = await asyncio.wait_for(asyncio.to_thread(read_reply, user.stdout), 120)
    finally:
        user.send_signal(signal.SIGCONT)
        user.kill()
        user.wait()
    assert reply.startswith("answered"), reply
    assert word_error_rate(NAME_ANSWER, reply.removeprefix("answered")) <= 0.25, reply
    assert worker.poll() is None


async def test_rejoining_user_gets_a_new_session(
    livekit_server: LocalLiveKitServer, worker: subprocess.Popen[bytes]
) -> None:
    """When the user leaves, the room is closed; coming back to it starts a fresh, greeting session."""
    room = f"e2e-rejoin-{uuid.uuid4().hex[:6]}"
    first = await join_greeted(livekit_server, room)  # join_greeted waits for the greeting
    await first.leave()
    rooms = api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret)
    try:
        for _ in range(100):  # the agent deletes the room as its session ends
            listed = await rooms.room.list_rooms(api.ListRoomsRequest(names=[room]))
            if not listed.rooms:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the room outlived the session")
    finally:
        await rooms.aclose()
    second = await join_greeted(livekit_server, room)
    await second.leave()
    assert worker.poll() is None, "the worker died"
