"""The user can pick a persona by name; anything else falls back to the default one."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from facetalk.agent.worker import PERSONA_ATTRIBUTE, WorkerResources
from facetalk.config import load_persona, load_pipeline

from .conftest import CONFIGS


@pytest.fixture
def resources(tmp_path: Path) -> WorkerResources:
    """Resources whose persona folder holds the default persona and a second one, 'nova'."""
    shutil.copytree(CONFIGS / "portraits", tmp_path / "portraits")
    shutil.copy(CONFIGS / "persona.yaml", tmp_path / "persona.yaml")
    nova = yaml.safe_load((CONFIGS / "persona.yaml").read_text()) | {"name": "Nova"}
    (tmp_path / "nova.yaml").write_text(yaml.safe_dump(nova))
    (tmp_path / "broken.yaml").write_text("kind: persona\nname: Broken\n")
    path = tmp_path / "persona.yaml"
    return WorkerResources(
        persona_path=path,
        persona=load_persona(path),
        pipeline=load_pipeline(CONFIGS / "pipeline.yaml"),
        vad=None,  # type: ignore[arg-type]  # models are not needed to choose a persona
        stt=None,  # type: ignore[arg-type]
        tts=None,  # type: ignore[arg-type]
    )


def _user(**attributes: str) -> SimpleNamespace:
    return SimpleNamespace(attributes=attributes)


@pytest.mark.parametrize(
    ("chosen", "name"),
    [
        (None, "Astra"),
        ("nova", "Nova"),
        ("persona", "Astra"),
        ("missing", "Astra"),
        ("broken", "Astra"),
        ("../persona", "Astra"),
    ],
)
def test_persona_attribute_picks_a_persona_file(resources: WorkerResources, chosen: str | None, name: str) -> None:
    """A valid persona name is loaded; unknown, broken or path-like names fall back to the default."""
    user = _user(**({PERSONA_ATTRIBUTE: chosen} if chosen else {}))
    assert resources.persona_for(user).name == name  # type: ignore[arg-type]
