"""Where commands find their configs, what ``facetalk init`` writes, and where the cache is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from facetalk import resources
from facetalk.errors import FaceTalkError

from .conftest import CONFIGS, REPO


def test_a_checkout_reads_the_repository_folders() -> None:
    """In a source checkout the shipped configs and page are the repository's own configs/ and web/dist/."""
    assert resources.PACKAGED_CONFIGS == CONFIGS
    assert resources.PACKAGED_WEB_PAGE == CONFIGS.parent / "web" / "dist"


def test_a_project_folder_wins_over_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """./configs/<name> is the default where it exists; elsewhere the packaged file is, file by file."""
    monkeypatch.chdir(tmp_path)
    assert resources.default_config("persona.yaml") == resources.PACKAGED_CONFIGS / "persona.yaml"
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "persona.yaml").write_text("kind: persona\n")
    assert resources.default_config("persona.yaml") == Path("configs/persona.yaml")
    assert resources.default_config("pipeline.yaml") == resources.PACKAGED_CONFIGS / "pipeline.yaml"


def test_init_copies_personas_portraits_and_pipeline(tmp_path: Path) -> None:
    """init writes every packaged YAML and portrait under FOLDER/configs, byte for byte."""
    written = resources.init_project(tmp_path / "project")
    relative = sorted(str(path.relative_to(tmp_path / "project" / "configs")) for path in written)
    assert relative == ["nova.yaml", "persona.yaml", "pipeline.yaml", "portraits/astronaut.png"]
    for path in written:
        source = resources.PACKAGED_CONFIGS / path.relative_to(tmp_path / "project" / "configs")
        assert path.read_bytes() == source.read_bytes()


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    """An edited config is never replaced silently: init names the files and the --force way out."""
    resources.init_project(tmp_path)
    edited = tmp_path / "configs" / "persona.yaml"
    edited.write_text("my own persona\n")
    with pytest.raises(FaceTalkError) as info:
        resources.init_project(tmp_path)
    assert str(edited) in str(info.value)
    assert "--force" in (info.value.hint or "")
    assert edited.read_text() == "my own persona\n"
    resources.init_project(tmp_path, force=True)
    assert edited.read_bytes() == (resources.PACKAGED_CONFIGS / "persona.yaml").read_bytes()


@pytest.mark.parametrize(
    ("facetalk_cache", "xdg", "expected"),
    [
        ("/srv/ft", "/xdg", "/srv/ft"),
        (None, "/xdg", "/xdg/facetalk"),
        (None, "relative/xdg", "~/.cache/facetalk"),  # the XDG spec says to ignore a relative path
        (None, None, "~/.cache/facetalk"),
    ],
)
def test_cache_dir_honours_facetalk_cache_then_xdg(
    monkeypatch: pytest.MonkeyPatch, facetalk_cache: str | None, xdg: str | None, expected: str
) -> None:
    """$FACETALK_CACHE, else $XDG_CACHE_HOME/facetalk, else ~/.cache/facetalk."""
    for name, value in (("FACETALK_CACHE", facetalk_cache), ("XDG_CACHE_HOME", xdg)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert resources.cache_dir() == Path(expected).expanduser()


def test_only_resources_names_the_shipped_folders() -> None:
    """Product code reaches configs/ and web/dist/ through facetalk.resources, so it works from a wheel.

    A path such as ``Path("configs/persona.yaml")`` works only in the repository's folder, and
    ``Path(__file__).parent.parent / "configs"`` only in a checkout; both broke the installed package.
    """
    literal = re.compile(r"""["']configs["'/]|["']web/dist|["']web["']\s*/\s*["']dist""")
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for folder in ("facetalk", "agent", "avatar", "dialogue")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path != REPO / "facetalk" / "resources.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if literal.search(line)
    ]
    assert not offenders, "use facetalk.resources (default_config, PACKAGED_CONFIGS, PACKAGED_WEB_PAGE):\n" + "\n".join(
        offenders
    )
