"""The user can pick a persona by name; anything else falls back to the default one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from facetalk.dialogue.personas import PersonaChoice
from facetalk.dialogue.protocol import PERSONA_ATTRIBUTE

from .conftest import CONFIGS


@pytest.fixture
def choice(tmp_path: Path) -> PersonaChoice:
    """A worker's choice whose persona folder holds the default persona and a second one, 'nova'."""
    shutil.copytree(CONFIGS / "portraits", tmp_path / "portraits")
    shutil.copy(CONFIGS / "persona.yaml", tmp_path / "persona.yaml")
    nova = yaml.safe_load((CONFIGS / "persona.yaml").read_text()) | {"name": "Nova"}
    (tmp_path / "nova.yaml").write_text(yaml.safe_dump(nova))
    (tmp_path / "broken.yaml").write_text("kind: persona\nname: Broken\n")
    return PersonaChoice.load(tmp_path / "persona.yaml")


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
def test_persona_attribute_picks_a_persona_file(choice: PersonaChoice, chosen: str | None, name: str) -> None:
    """A valid persona name is loaded; unknown, broken or path-like names fall back to the default."""
    attributes = {PERSONA_ATTRIBUTE: chosen} if chosen else {}
    assert choice.persona_for(attributes).name == name
