"""Every example in examples/ runs as its docstring says, from the repository root.

Each runs as a user runs it (``python -m examples.NAME``) in a child process,
against real models and its own local LiveKit server and worker; where an
LLM answer must be known, the OpenAI-compatible endpoint is the scripted one
on loopback. Bad input to the examples gets a clear error and writes nothing.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import pytest_asyncio
import skimage.data

from facetalk.avatar.models import cache_dir
from facetalk.eval.script import builtin_script
from facetalk.livekit_server import free_port
from facetalk.testing.scripted_llm import ScriptedLLMServer

REPO = Path(__file__).resolve().parents[1]
NAME_ANSWER = "My name is Astra."
DEFAULT_ANSWER = "That is a good question."
_RUN_TIMEOUT_S = 400  # a local stack's start, a greeting and one answer, on a busy machine


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scripted_llm() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer(rules={"name": NAME_ANSWER}, default=DEFAULT_ANSWER) as server:
        yield server


async def run_example(name: str, *args: str, cwd: Path = REPO) -> tuple[int, str]:
    """``python -m examples.NAME ARGS`` from the repository root: (exit code, stdout + stderr).

    Asynchronous, so the scripted LLM in this event loop keeps answering.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", f"examples.{name}", *args,
        cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=_RUN_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, output.decode(errors="replace")


def _answer_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("avatar: ")]
    assert lines, output[-3000:]
    return lines[-1]


@pytest.mark.e2e
@pytest.mark.asyncio(loop_scope="module")
async def test_talk_in_a_room_with_a_persons_recording(scripted_llm: ScriptedLLMServer, tmp_path: Path) -> None:
    """A real person's question gets the endpoint's answer, and the avatar's face arrives."""
    wav = next(t.wav for t in builtin_script("human", cache_dir() / "human-speech") if t.wav)
    frame = tmp_path / "frame.png"
    code, output = await run_example(
        "talk_in_a_room", "--wav", str(wav), "--llm", scripted_llm.base_url, "--frame", str(frame)
    )
    assert code == 0, output[-3000:]
    assert DEFAULT_ANSWER in _answer_line(output)
    image = cv2.imread(str(frame), cv2.IMREAD_GRAYSCALE)
    assert image is not None and image.shape == (256, 256) and image.std() > 20  # a picture, not a blank frame


@pytest.mark.e2e
@pytest.mark.asyncio(loop_scope="module")
async def test_custom_llm_class_answers_in_the_room() -> None:
    """ParrotLLM, loaded by the worker from its class path, repeats the user's question."""
    code, output = await run_example("custom_llm")
    assert code == 0, output[-3000:]
    assert "you said" in _answer_line(output).lower()
    assert "name" in _answer_line(output).lower()


@pytest.mark.e2e
@pytest.mark.asyncio(loop_scope="module")
async def test_openai_endpoint_is_checked_written_and_talked_to(
    scripted_llm: ScriptedLLMServer, tmp_path: Path
) -> None:
    """The endpoint is probed, the pipeline written for it, and its answer reaches the user."""
    pipeline = tmp_path / "pipeline.yaml"
    code, output = await run_example(
        "openai_endpoint", "--base-url", scripted_llm.base_url, "--model", "scripted",
        "--pipeline-out", str(pipeline),
    )  # fmt: skip
    assert code == 0, output[-3000:]
    assert NAME_ANSWER in _answer_line(output)
    assert scripted_llm.base_url in pipeline.read_text()
    assert "api_key_env: OPENAI_API_KEY" in pipeline.read_text()  # the key's name, never the key


@pytest.mark.asyncio(loop_scope="module")
async def test_openai_endpoint_that_does_not_answer_is_named_before_anything_starts(tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    url = f"http://127.0.0.1:{free_port()}/v1"
    code, output = await run_example(
        "openai_endpoint", "--base-url", url, "--model", "m", "--pipeline-out", str(pipeline)
    )
    assert code != 0
    assert f"nothing answers at {url}" in output and "--base-url" in output
    assert not pipeline.exists()


@pytest.mark.asyncio(loop_scope="module")
async def test_own_portrait_becomes_a_persona_with_a_preview(tmp_path: Path) -> None:
    """A different photo (the astronaut mirrored and re-framed) gives a valid persona and a clip."""
    photo = tmp_path / "me.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(np.ascontiguousarray(skimage.data.astronaut()[20:470, 480:30:-1]),
                                          cv2.COLOR_RGB2BGR))  # fmt: skip
    folder = tmp_path / "personas"
    code, output = await run_example("own_portrait", str(photo), "--name", "Ada Lovelace", "--folder", str(folder))
    assert code == 0, output[-3000:]
    assert (folder / "ada-lovelace.yaml").is_file() and (folder / "portraits" / "ada-lovelace.jpg").is_file()
    assert (folder / "ada-lovelace-preview.mp4").stat().st_size > 10_000
    assert cv2.imread(str(folder / "ada-lovelace-preview.png")) is not None
    check = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "facetalk", "config", "check", str(folder / "ada-lovelace.yaml"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    checked, _ = await check.communicate()
    assert check.returncode == 0, checked.decode()

    code, output = await run_example("own_portrait", str(photo), "--name", "Ada Lovelace", "--folder", str(folder))
    assert code != 0 and "already exists" in output  # the first persona is kept


@pytest.mark.asyncio(loop_scope="module")
async def test_own_portrait_without_a_face_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    photo = tmp_path / "coffee.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR))
    code, output = await run_example("own_portrait", str(photo), "--name", "Cup", "--folder", str(tmp_path / "p"))
    assert code != 0
    assert "no face found" in output and "front-facing" in output
    assert not (tmp_path / "p").exists()


@pytest.mark.e2e
@pytest.mark.asyncio(loop_scope="module")
async def test_latency_eval_reports_with_a_changed_setting(tmp_path: Path) -> None:
    """One turn with a pipeline override: a summary per kind of speech, and the full report on disk."""
    out = tmp_path / "out"
    code, output = await run_example(
        "latency_eval", "--turns", "1", "--set", "turn.min_endpointing_delay_s=0.4", "--out", str(out)
    )
    assert code == 0, output[-3000:]
    assert "synthetic speech: answer heard after p50" in output
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["response_ms"]["n"] == 1
    assert "min_endpointing_delay_s: 0.4" in (out / "pipeline.yaml").read_text()


@pytest.mark.asyncio(loop_scope="module")
async def test_latency_eval_names_a_wrong_setting(tmp_path: Path) -> None:
    code, output = await run_example("latency_eval", "--set", "turn.min_endpointing=0.4", "--out", str(tmp_path))
    assert code != 0
    assert "turn.min_endpointing" in output and "config check" in output
