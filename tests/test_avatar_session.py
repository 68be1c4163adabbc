"""facetalk.AvatarSession's own logic, no server: bad input, the dispatch metadata, a worker's capacity."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import facetalk
from facetalk.agent.avatar_dispatch import AvatarJob
from facetalk.agent.capacity import SERVER_TARGET_LOAD, RoomsLoad
from facetalk.cli import app
from facetalk.config import ConfigError, load_pipeline
from facetalk.dialogue.personas import UnknownPersonaError
from facetalk.errors import FaceTalkError

from .conftest import CONFIGS




def _persona_yaml(folder: Path, portrait: str) -> Path:
    path = folder / "mine.yaml"
    data = yaml.safe_load((CONFIGS / "persona.yaml").read_text())
    path.write_text(yaml.safe_dump({**data, "portrait": portrait}))
    return path


def test_a_portrait_that_does_not_exist_fails_before_any_room(tmp_path: Path) -> None:
    """The error names the missing file and says what was expected."""
    with pytest.raises(ConfigError, match=r"portrait: file not found: .*no-such-face\.png.*expected an image path"):
        facetalk.AvatarSession(persona=_persona_yaml(tmp_path, "no-such-face.png"))


def test_an_unknown_persona_id_names_the_known_ones() -> None:
    with pytest.raises(UnknownPersonaError, match=r"unknown persona 'nobody' \(known: persona, nova"):
        facetalk.AvatarSession(persona="nobody")


@pytest.mark.parametrize("persona", [CONFIGS / "persona.yaml", "configs/persona.yaml"])
def test_a_remote_avatar_takes_a_persona_id_not_a_path(persona: Path | str) -> None:
    with pytest.raises(FaceTalkError, match="remote avatars take a persona id") as error:
        facetalk.AvatarSession(persona=persona, placement="remote")
    assert "--personas folder" in (error.value.hint or "")


def test_a_remote_avatar_reads_no_persona_file_on_the_agent_side() -> None:
    """The avatar workers resolve the id, so an id unknown here is fine until a worker says otherwise."""
    assert facetalk.AvatarSession(persona="only-on-the-gpu-box", placement="remote").placement == "remote"


def test_the_avatar_job_round_trips_through_dispatch_metadata() -> None:
    job = AvatarJob(persona="nova", agent_identity="agent-AJ_1", avatar_identity="facetalk-avatar-r1")
    assert AvatarJob.from_metadata(job.to_metadata()) == job


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [("", "persona: Field required"), ("not json", "Invalid JSON"), ('{"v": 2}', "v: Input should be 1"),
     ('{"v": 1, "persona": "../etc", "agent_identity": "a", "avatar_identity": "b"}', "persona: String should match")],
)
def test_bad_dispatch_metadata_is_a_clear_error(metadata: str, problem: str) -> None:
    with pytest.raises(FaceTalkError, match="not a FaceTalk avatar job") as error:
        AvatarJob.from_metadata(metadata)
    assert problem in error.value.message
    assert "AvatarSession(placement='remote')" in (error.value.hint or "")


def test_a_pipeline_with_remote_url_says_how_to_migrate(tmp_path: Path) -> None:
    pipeline = yaml.safe_load((CONFIGS / "pipeline.yaml").read_text())
    pipeline["avatar"] = {"placement": "remote", "remote_url": "http://gpu-box:8089"}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline))
    with pytest.raises(ConfigError, match=r"avatar: remote_url is gone.*facetalk avatar-worker start"):
        load_pipeline(path)


def test_the_avatar_server_command_says_what_replaced_it() -> None:
    result = CliRunner().invoke(app, ["avatar-server"])
    assert result.exit_code != 0
    assert "facetalk avatar-worker start" in result.output


@dataclass
class _Server:
    """What RoomsLoad reads of an AgentServer: its running jobs."""

    active_jobs: list[object] = field(default_factory=list)


@dataclass
class _Request:
    """A job request whose accept takes until ``launched`` is set, as a job process starts."""

    server: _Server
    launched: asyncio.Event = field(default_factory=asyncio.Event)
    answer: str = ""

    @dataclass
    class room:  # noqa: N801 - the attribute JobRequest has
        name: str = "r"

    async def accept(self, **_: object) -> None:
        await self.launched.wait()
        self.server.active_jobs.append(self)
        self.answer = "accepted"

    async def reject(self, *, terminate: bool = True) -> None:
        self.answer = "ends the dispatch" if terminate else "passed on"


def test_load_reads_the_servers_target_load_exactly_when_full() -> None:
    """At max_rooms the load is 0.7 (LiveKit's default target), so no new job is sent; never above."""
    server, rooms = _Server(), RoomsLoad(3)
    assert rooms(server) == 0
    server.active_jobs = [object()] * 3
    assert rooms(server) == SERVER_TARGET_LOAD and rooms.full
    server.active_jobs = [object()] * 4
    assert rooms(server) == SERVER_TARGET_LOAD
    server.active_jobs = [object()]
    assert rooms(server) == pytest.approx(SERVER_TARGET_LOAD / 3) and not rooms.full


async def test_simultaneous_requests_never_overfill_and_the_extra_one_is_passed_on() -> None:
    """Two requests arrive while the first is still launching: with one room, the second goes to
    another worker (terminate=False), and the worker never runs two."""
    server, rooms = _Server(), RoomsLoad(1)
    first, second = _Request(server), _Request(server)
    admitting = asyncio.create_task(rooms.admit(server, first))
    await asyncio.sleep(0)
    assert await rooms.admit(server, second) is False
    first.launched.set()
    assert await admitting is True
    assert (first.answer, second.answer) == ("accepted", "passed on")
    assert len(server.active_jobs) == 1 and rooms.accepting == 0


def test_an_avatar_worker_without_personas_fails_at_start(tmp_path: Path) -> None:
    """Before registering with LiveKit: a worker that could serve no persona says where it looked."""
    result = CliRunner().invoke(app, ["avatar-worker", "--personas", str(tmp_path), "start"])
    assert result.exit_code != 0
    assert f"no valid persona YAML in {tmp_path}" in result.output and "--personas" in result.output
