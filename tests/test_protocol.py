"""The wire names (attributes, data topics, RPC methods) have one source that every side reads."""

from __future__ import annotations

import json
import re

import pytest

from facetalk.dialogue import protocol
from facetalk.web import PAGE_DIR

from .conftest import REPO

NAMES = json.loads((REPO / "dialogue" / "protocol.json").read_text())
PRODUCT_SOURCES = ["agent", "avatar", "dialogue", "facetalk", "web/src"]


def test_every_name_in_the_json_is_a_constant_of_the_protocol_module() -> None:
    """protocol.py exposes each JSON entry under its upper-cased key, and nothing else."""
    assert {key.upper(): value for key, value in NAMES.items()} == {
        name: getattr(protocol, name) for name in protocol.__all__
    }


@pytest.mark.parametrize("name", sorted(NAMES.values()))
def test_no_source_spells_a_wire_name_itself(name: str) -> None:
    """A name appears as a string literal only in protocol.json: a rename there renames it everywhere."""
    literal = re.compile(rf"""["']{re.escape(name)}["']""")
    spelled = [
        str(path.relative_to(REPO))
        for folder in PRODUCT_SOURCES
        for path in (REPO / folder).rglob("*")
        if path.suffix in (".py", ".js", ".html") and literal.search(path.read_text(encoding="utf-8"))
    ]
    assert spelled == [], f"{name!r} spelled out in {spelled}; import it from dialogue/protocol"


def test_the_built_page_listens_on_the_protocol_metrics_topic() -> None:
    """The page's bundle inlines protocol.json, so it carries the topic the worker publishes on."""
    bundle = PAGE_DIR / "app.js"
    if not bundle.is_file():
        pytest.skip("the page is not built (make setup builds it)")
    assert protocol.METRICS_TOPIC in bundle.read_text(encoding="utf-8")
