"""Persona and pipeline files: the shipped ones pass, broken copies fail readably."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from facetalk.cli import app
from facetalk.config import ConfigError, load_persona, load_pipeline

from .conftest import CONFIGS

runner = CliRunner()


@pytest.fixture
def persona_copy(tmp_path: Path) -> Path:
    """A copy of the default persona, with its portrait beside it."""
    shutil.copytree(CONFIGS / "portraits", tmp_path / "portraits")
    target = tmp_path / "persona.yaml"
    shutil.copy(CONFIGS / "persona.yaml", target)
    return target


def _edit(path: Path, change: dict) -> Path:
    data = yaml.safe_load(path.read_text())
    for dotted, value in change.items():
        *parents, leaf = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    path.write_text(yaml.safe_dump(data))
    return path


_DELETE = object()


@pytest.mark.parametrize("name", ["persona.yaml", "pipeline.yaml"])
def test_shipped_configs_pass_check(name: str) -> None:
    """`facetalk config check` accepts every shipped config."""
    result = runner.invoke(app, ["config", "check", str(CONFIGS / name)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_default_persona_resolves_portrait_next_to_the_file() -> None:
    """Relative portrait paths resolve against the YAML file's folder."""
    persona = load_persona(CONFIGS / "persona.yaml")
    assert persona.portrait == CONFIGS / "portraits" / "astronaut.png"
    assert persona.portrait.is_file()


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"name": _DELETE}, "name", "Field required"),
        ({"expression.smile": "lots"}, "expression.smile", "valid number"),
        ({"expression.smile": 1.5}, "expression.smile", "less than or equal to 1"),
        ({"portrait": "portraits/missing.png"}, "portrait", "file not found"),
        ({"voice_typo": "joe"}, "voice_typo", "Extra inputs are not permitted"),
    ],
)
def test_broken_persona_names_file_field_and_expectation(
    persona_copy: Path, change: dict, field: str, expected: str
) -> None:
    """A broken persona fails with the file, the field path and what was expected."""
    _edit(persona_copy, change)
    result = runner.invoke(app, ["config", "check", str(persona_copy)])
    assert result.exit_code == 1
    assert str(persona_copy) in result.output
    assert f"{field}: " in result.output
    assert expected in result.output


def test_broken_pipeline_reports_every_problem(tmp_path: Path) -> None:
    """All errors of a pipeline file are listed, with nested union fields named plainly."""
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "kind: pipeline\n"
        "vad: {aggressiveness: 7}\n"
        "llm: {provider: openai, temprature: 0.2}\n"
        "avatar: {resolution: 300}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    message = str(info.value)
    assert "vad.aggressiveness: Input should be less than or equal to 3" in message
    assert "llm.temprature: Extra inputs are not permitted" in message
    assert "avatar.resolution: Input should be 384 or 512" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind: persona\nname: [unclosed\n", "not valid YAML at line"),
        ("- just\n- a list\n", "expected a mapping"),
        ("name: Astra\n", "field 'kind'"),
    ],
)
def test_unreadable_files_fail_with_a_hint(tmp_path: Path, text: str, expected: str) -> None:
    """Syntax errors, wrong shapes and a missing kind are explained, not tracebacks."""
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert expected in result.output
    assert "fix:" in result.output
    assert "Traceback" not in result.output


def test_loading_the_wrong_kind_is_refused() -> None:
    """A persona file passed where a pipeline is expected is refused by name."""
    with pytest.raises(ConfigError, match="expected a pipeline config"):
        load_pipeline(CONFIGS / "persona.yaml")


def test_livekit_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """LiveKit URL and keys are read from the environment, never the file."""
    monkeypatch.setenv("LIVEKIT_URL", "wss://example.livekit.cloud")
    monkeypatch.setenv("LIVEKIT_API_KEY", "k")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "s")
    pipeline = load_pipeline(CONFIGS / "pipeline.yaml")
    assert pipeline.livekit.url == "wss://example.livekit.cloud"
    assert pipeline.livekit.api_secret.get_secret_value() == "s"
    assert "s" not in repr(pipeline.livekit.api_secret)
