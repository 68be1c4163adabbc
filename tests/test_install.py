"""The wheel works outside the repository, as a new user installs it.

The module builds the sdist and, from it, the wheel of this checkout once,
installs the wheel with its core dependencies (no extras) into a fresh
virtualenv in a temporary folder, and runs the user's first commands there:
``facetalk init``, ``facetalk config check``, ``facetalk models fetch`` and
``facetalk persona prepare``. The dependencies are pinned to this
environment's versions and come from the uv cache that ``make setup`` filled
(the registry only if the cache lacks one).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = pytest.mark.install

SHIPPED_DATA = [
    "facetalk/configs/persona.yaml",
    "facetalk/configs/nova.yaml",
    "facetalk/configs/pipeline.yaml",
    "facetalk/configs/portraits/astronaut.png",
    "facetalk/webpage/dist/index.html",
]


@dataclass(frozen=True)
class Installation:
    """A wheel installed into a virtualenv, and a scratch folder beside it."""

    wheel: Path
    venv: Path
    root: Path

    def run(self, *args: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a program of the virtualenv in ``cwd``, with no trace of this checkout in the environment."""
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "FACETALK_PERSONA",
                                                                  "FACETALK_PIPELINE")}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        result = subprocess.run([str(self.venv / "bin" / args[0]), *args[1:]], cwd=cwd, env=env,
                                capture_output=True, text=True, timeout=300)  # fmt: skip
        if ok:
            assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
        return result


def _uv() -> str:
    """The uv that ``make setup`` used: on PATH, or installed into this virtualenv."""
    return shutil.which("uv") or str(Path(sys.executable).with_name("uv"))


def _pinned_versions(folder: Path) -> Path:
    """This environment's exact versions as a constraints file, so the install reuses cached wheels."""
    freeze = subprocess.run([_uv(), "pip", "freeze", "--python", sys.executable],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    constraints = folder / "constraints.txt"
    constraints.write_text("".join(line + "\n" for line in freeze.splitlines() if "==" in line))
    return constraints


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installation:
    """The wheel of this checkout, installed with core dependencies into a fresh virtualenv outside it."""
    root = tmp_path_factory.mktemp("install")
    assert not root.resolve().is_relative_to(REPO)
    # The sdist first, then the wheel from it in a clean folder: a stale build/lib of the checkout (a module
    # moved away since) cannot leak into it, and the sdist is checked to be complete.
    subprocess.run([_uv(), "build", "--quiet", "--out-dir", str(root / "dist"), str(REPO)], check=True, timeout=300)
    (wheel,) = (root / "dist").glob("facetalk-*.whl")
    venv = root / "venv"
    subprocess.run([_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=120)
    install = [_uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
               "--constraint", str(_pinned_versions(root)), str(wheel)]  # fmt: skip
    if subprocess.run([*install, "--offline"], timeout=300).returncode != 0:
        subprocess.run(install, check=True, timeout=600)  # a dependency missing from the cache
    return Installation(wheel=wheel, venv=venv, root=root)


def test_the_wheel_ships_every_package_and_the_data(installed: Installation) -> None:
    """Configs, portrait and web page are inside, and so is every Python package of the source tree."""
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    missing_data = [name for name in SHIPPED_DATA if name not in names]
    assert not missing_data, f"not in the wheel: {missing_data} (web/dist is built by 'make setup')"
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    expected = {
        (Path(package.replace(".", "/")) / init.relative_to(REPO / folder)).as_posix()
        for package, folder in setuptools["package-dir"].items()
        if (REPO / folder / "__init__.py").is_file()  # not the data-only configs/ and web/
        for init in (REPO / folder).rglob("__init__.py")
    }
    missing_packages = sorted(expected - names)
    assert not missing_packages, f"add these to [tool.setuptools] packages/package-dir: {missing_packages}"


def test_init_writes_configs_that_check(installed: Installation) -> None:
    """'facetalk init' makes a project whose configs validate, and will not overwrite it without --force."""
    installed.run("facetalk", "init", "project", cwd=installed.root)
    project = installed.root / "project"
    yamls = sorted(p.name for p in (project / "configs").glob("*.yaml"))
    assert yamls == ["nova.yaml", "persona.yaml", "pipeline.yaml"]
    assert (project / "configs" / "portraits" / "astronaut.png").is_file()
    checked = installed.run("facetalk", "config", "check", *(f"configs/{name}" for name in yamls), cwd=project)
    assert checked.stdout.count("✓") == 3, checked.stdout

    again = installed.run("facetalk", "init", "project", cwd=installed.root, ok=False)
    assert again.returncode == 1
    assert "already exist" in again.stderr and "--force" in again.stderr


def test_defaults_come_from_the_package_outside_a_project(installed: Installation) -> None:
    """'import facetalk' works; in an empty folder the default persona, pipeline and page are the packaged ones."""
    empty = installed.root / "empty"
    empty.mkdir()
    probe = (
        "import json, facetalk, facetalk.cli as cli, facetalk.web as web; "
        "print(json.dumps({'module': facetalk.__file__, 'persona': str(cli.DEFAULT_PERSONA), "
        "'pipeline': str(cli.DEFAULT_PIPELINE), 'page': str(web.PAGE_DIR / 'index.html')}))"
    )
    paths = json.loads(installed.run("python", "-c", probe, cwd=empty).stdout)
    site_packages = Path(paths["module"]).resolve().parent.parent
    assert site_packages.is_relative_to(installed.venv.resolve())
    for key in ("persona", "pipeline", "page"):
        path = Path(paths[key]).resolve()
        assert path.is_file() and path.is_relative_to(site_packages), (key, path)


def test_the_avatar_plugin_imports_from_the_core_install(installed: Installation) -> None:
    """``facetalk.AvatarSession``, what a livekit-agents agent adds, needs no extra."""
    installed.run("python", "-c", "import facetalk; facetalk.AvatarSession", cwd=installed.root)


def test_persona_prepare_on_the_bundled_portrait(installed: Installation) -> None:
    """The face-mesh model comes from the user cache and the bundled portrait becomes a persona pack."""
    installed.run("facetalk", "models", "fetch", cwd=installed.root)
    portrait = installed.run(
        "python", "-c", "from facetalk.resources import PACKAGED_CONFIGS as c; print(c / 'portraits/astronaut.png')",
        cwd=installed.root,
    ).stdout.strip()
    out = installed.root / "pack"
    prepared = installed.run("facetalk", "persona", "prepare", portrait, "--resolution", "384", "--out", str(out),
                             cwd=installed.root)  # fmt: skip
    assert "persona pack" in prepared.stdout
    assert json.loads((out / "meta.json").read_text())["resolution"] == 384


def test_a_missing_portrait_names_the_problem_and_the_fix(installed: Installation) -> None:
    """A portrait that does not exist, passed directly or named in a persona, says so and how to fix it."""
    direct = installed.run("facetalk", "persona", "prepare", "me.png", cwd=installed.root, ok=False)
    assert direct.returncode == 1
    assert "me.png: portrait not found" in direct.stderr and "fix:" in direct.stderr
    assert "Traceback" not in direct.stderr

    persona = installed.root / "mine.yaml"
    persona.write_text("kind: persona\nname: Me\nportrait: portraits/me.png\nsystem_prompt: Be brief.\n")
    checked = installed.run("facetalk", "config", "check", str(persona), cwd=installed.root, ok=False)
    assert checked.returncode == 1
    assert "portrait: file not found" in checked.stderr
    assert str(installed.root / "portraits" / "me.png") in checked.stderr  # resolved against the YAML's folder
    assert "fix:" in checked.stderr
