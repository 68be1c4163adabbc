"""What importing a part of FaceTalk loads: the CLI stays light and acyclic, the product leaves the test harness out."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from facetalk.cli import app

HEAVY = ("livekit.agents", "facetalk.agent", "facetalk.avatar", "cv2", "torch")


def _modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after ``statement``."""
    code = f"{statement}; import sys; print('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return set(result.stdout.split())


def test_importing_the_cli_loads_neither_livekit_agents_nor_the_avatar() -> None:
    """`import facetalk.cli` registers every command without importing what the commands use."""
    loaded = _modules_after("import facetalk.cli")
    assert not [name for name in loaded if name.startswith(HEAVY)], sorted(n for n in loaded if n.startswith(HEAVY))


def test_the_product_does_not_load_the_test_harness() -> None:
    """The worker, the web server and the CLI run without facetalk.testing (only the tests and 'facetalk eval' use it)."""
    loaded = _modules_after("import facetalk.cli, facetalk.agent.worker, facetalk.agent.launcher, facetalk.web")
    assert not [name for name in loaded if name.startswith("facetalk.testing")]


def test_the_avatar_commands_import_without_the_cli() -> None:
    """The areas' command modules do not import the CLI that registers them (no import cycle)."""
    loaded = _modules_after("import facetalk.avatar.cli, facetalk.avatar.train_cli, facetalk.avatar.data.cli")
    assert "facetalk.cli" not in loaded


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["persona", "--help"], "prepare"),
        (["models", "--help"], "fetch"),
        (["bench", "--help"], "soak"),
        (["render", "--help"], "--audio"),
        (["train", "--help"], "distill"),
        (["data", "--help"], "synth"),
        (["eval", "--help"], "generator"),
        (["eval", "generator", "--help"], "--checkpoint"),
    ],
)
def test_commands_registered_by_name_still_run(argv: list[str], usage: str) -> None:
    """A command imported on first use parses its own options and subcommands like any other."""
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert usage in result.output


def test_help_lists_every_command_group() -> None:
    """`facetalk --help` shows the groups registered by name beside the others."""
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for name in ["agent", "web", "eval", "persona", "models", "bench", "render", "train", "data"]:
        assert name in result.output
