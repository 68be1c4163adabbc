"""The avatar on another machine: a separate participant publishing on the agent's behalf.

Here the "other machine" is a ``facetalk avatar-worker`` on loopback, which
LiveKit dispatches when the agent's worker (``avatar.placement: remote``) asks
for an avatar; the agent sends its TTS audio over data streams.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from facetalk.agent.avatar_dispatch import AVATAR_PERSONA_ATTRIBUTE, avatar_identity
from facetalk.dialogue.protocol import PERSONA_ATTRIBUTE
from facetalk.livekit_server import LocalLiveKitServer, make_token
from facetalk.testing.local_stack import running_avatar_worker
from facetalk.testing.scripted_llm import ScriptedLLMServer
from facetalk.testing.simulated_user import SimulatedUser

from .conftest import running_worker
from .conversation import agent_said, assert_lip_synced_answer, join_greeted
from .lipreading import BILABIAL_ANSWER, NOT_RELIABLE_YET, closure_of_an_answer
from .speech import speak

NAME_ANSWER = "My name is Astra."
STORY_ANSWER = (
    "Let me tell you a long story about the stars. "
    "Once upon a time there was a small rocket that wanted to fly to the moon. "
    "It practised every single day, and it dreamed about the silver dust and the quiet sky."
)

_STOP_BOUND_S = 1.5
"""How much of its audio the avatar may play after the user starts talking over it: the agent's
turn detection (about 0.5 s of speech, as in process) plus the ``lk.clear_buffer`` RPC to the
avatar worker and the room's jitter buffer. Read 0.34-0.60 s in eight runs on a shared VM, and
1.11 s in a fresh clone's suite beside one CPU burner (the agent listened again after 0.49 s,
so the avatar played 0.6 s on after the clear). The bound is the in-process test's, 1.5 s; the
stop's target (<= 300 ms) is a benchmark's, ``facetalk eval latency``'s barge_in_audio_stop_ms."""

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scripted_llm() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer(rules={"name": NAME_ANSWER, "story": STORY_ANSWER, "boat": BILABIAL_ANSWER}) as server:
        yield server


@pytest.fixture(scope="module")
def avatar_worker(
    livekit_server: LocalLiveKitServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One avatar worker under an agent name of its own; yields that name."""
    agent_name = f"facetalk-avatar-{uuid.uuid4().hex[:8]}"
    with running_avatar_worker(livekit_server, agent_name, tmp_path_factory.mktemp("avatar"), max_rooms=2):
        yield agent_name


@pytest.fixture(scope="module")
def remote_worker(
    livekit_server: LocalLiveKitServer,
    scripted_llm: ScriptedLLMServer,
    avatar_worker: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[subprocess.Popen[bytes]]:
    pipeline = {
        "llm": scripted_llm.llm_section(),
        "avatar": {"placement": "remote", "agent_name": avatar_worker},
    }
    with running_worker(livekit_server, pipeline, tmp_path_factory.mktemp("worker")) as process:
        yield process


async def test_remote_avatar_speaks_for_the_agent(
    livekit_server: LocalLiveKitServer, remote_worker: subprocess.Popen[bytes]
) -> None:
    """The user sees and hears the avatar participant, whose mouth moves with the agent's answer."""
    user = SimulatedUser()
    room = f"remote-{uuid.uuid4().hex[:8]}"
    await user.join(livekit_server.url, livekit_server.token("person", room))
    try:
        await user.wait_for_greeting()
        publishers = {p.identity: p for p in user.room.remote_participants.values()}
        avatar = publishers[avatar_identity(room)]
        assert {pub.kind for pub in avatar.track_publications.values()} >= {1, 2}  # audio + video
        asked = await user.say(speak("What is your name?"))
        await user.wait_for_answer()
    finally:
        await user.leave()

    assert_lip_synced_answer(user, asked, NAME_ANSWER)


async def test_talking_over_the_remote_avatar_stops_it_and_the_next_answer_plays_whole(
    livekit_server: LocalLiveKitServer, remote_worker: subprocess.Popen[bytes]
) -> None:
    """The user talks over a long answer: the dispatched avatar's audio stops after at most
    _STOP_BOUND_S of it (the agent's lk.clear_buffer reaches the avatar worker), and the
    next answer is heard whole, lip-synced."""
    # Spoken before joining: piper on the user's loop would stall it while the answer's audio
    # queues up, and that audio would arrive stamped after the barge-in.
    story, stop, question = (speak(text) for text in (
        "Tell me a story.", "Wait stop please I have another question.", "What is your name?"))  # fmt: skip
    user = await join_greeted(livekit_server, f"remote-{uuid.uuid4().hex[:8]}")
    try:
        await user.say(story)
        await user.wait_until(lambda: user.agent_label() == "speaking", timeout=30)
        await asyncio.sleep(2.0)  # well into the answer
        interruption = await user.say(stop)  # no pause inside, so no turn ends within it
        await user.wait_for_answer()  # to the interruption
        asked = await user.say(question)
        await user.wait_for_answer()
    finally:
        await user.leave()

    barge_in = interruption.start
    played = user.audio.played_after(barge_in, until=interruption.end)
    heard_at = [t - barge_in for t, label in user.label_changes() if t > barge_in and label == "listening"][:1]
    assert played <= _STOP_BOUND_S, (
        f"the avatar played {played:.2f} s of audio over the user; the agent listened again after {heard_at} s"
    )
    assert_lip_synced_answer(user, asked, NAME_ANSWER)


async def test_the_users_chosen_persona_is_the_dispatched_avatars(
    livekit_server: LocalLiveKitServer, remote_worker: subprocess.Popen[bytes]
) -> None:
    """A user who picked Nova on the web page (their facetalk.persona attribute) gets an avatar
    worker animating nova, and Nova's greeting."""
    room = f"remote-{uuid.uuid4().hex[:8]}"
    token = make_token(
        "person", room, api_key=livekit_server.api_key, api_secret=livekit_server.api_secret,
        attributes={PERSONA_ATTRIBUTE: "nova"},
    )  # fmt: skip
    user = SimulatedUser()
    await user.join(livekit_server.url, token)
    try:
        await user.wait_for_greeting()
        avatar = user.room.remote_participants[avatar_identity(room)]
        await user.wait_until(lambda: bool(agent_said(user, after=0)), timeout=10)
    finally:
        await user.leave()

    assert avatar.attributes.get(AVATAR_PERSONA_ATTRIBUTE) == "nova", avatar.attributes
    assert "nova" in agent_said(user, after=0)


@NOT_RELIABLE_YET
async def test_remote_avatar_closes_the_lips_on_p_b_m(
    livekit_server: LocalLiveKitServer, remote_worker: subprocess.Popen[bytes]
) -> None:
    """The phoneme timing crosses the room to the remote avatar: in the frames the user receives,
    the lips are shut on at least 80 % of the p/b/m of the answer."""
    closure = await closure_of_an_answer(livekit_server, f"remote-{uuid.uuid4().hex[:8]}")
    assert closure is not None and closure >= 0.8, closure


async def test_without_an_avatar_worker_the_agent_greets_by_voice_and_says_why(
    scripted_llm: ScriptedLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Our worker asks for a remote avatar that no worker serves: after its bounded wait
    (avatar.join_timeout_s) the agent greets the user with its own voice, no video comes,
    and the worker's log says why. A server of its own: the module's other worker, which has
    an avatar worker, would otherwise be as likely to take the room."""
    folder = tmp_path_factory.mktemp("voice-only")
    nobody = f"no-such-avatar-{uuid.uuid4().hex[:6]}"
    pipeline = {
        "llm": scripted_llm.llm_section(),
        "avatar": {"placement": "remote", "agent_name": nobody, "join_timeout_s": 3},
    }
    with LocalLiveKitServer(log_path=folder / "livekit-server.log") as server, running_worker(server, pipeline, folder):
        user = SimulatedUser()
        await user.join(server.url, server.token("person", f"voice-only-{uuid.uuid4().hex[:8]}"))
        try:
            await user.wait_until(lambda: user.agent_label() == "speaking", timeout=90)
            await user.wait_until(lambda: user.agent_label() != "speaking", timeout=30)
        finally:
            await user.leave()
    start, end = user.audio.loud_span(after=user.joined_at)
    assert end - start > 1.0  # the greeting, heard
    assert not user.video.frames
    log = (folder / "worker.log").read_text(errors="replace")
    assert nobody in log and "without video" in log
