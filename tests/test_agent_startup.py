"""The worker refuses to start with a clear message when something it needs is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import CONFIGS


def _start(tmp_path: Path, pipeline_changes: dict) -> subprocess.CompletedProcess[str]:
    pipeline = yaml.safe_load((CONFIGS / "pipeline.yaml").read_text())
    for section, values in pipeline_changes.items():
        pipeline[section] = {**pipeline[section], **values}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline))
    return subprocess.run(
        [sys.executable, "-m", "facetalk", "agent", "--persona", str(CONFIGS / "persona.yaml"),
         "--pipeline", str(path), "start"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"stt": {"model": "/nowhere/whisper-model"}}, "/nowhere/whisper-model"),
        ({"llm": {"provider": "custom", "class_path": "nowhere.module:LLM"}}, "cannot import module"),
    ],
)
def test_missing_model_fails_at_startup_with_a_fix(tmp_path: Path, changes: dict, message: str) -> None:
    """A model or class that is not there stops the worker before it registers, saying how to fix it."""
    result = _start(tmp_path, changes)
    assert result.returncode == 1
    assert message in result.stderr
    assert "fix:" in result.stderr
    assert "Traceback" not in result.stderr
