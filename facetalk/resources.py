"""The files FaceTalk ships, where commands look for configs, and the user's cache.

FaceTalk ships the default personas (YAML and portrait), the default pipeline
and the built web page. The repository's top-level ``configs/`` and
``web/dist/`` are their one source: ``pyproject.toml`` maps them into the wheel
as ``facetalk/configs/`` and ``facetalk/webpage/dist/``. A source checkout
(the editable install of ``make setup``) has no such folders inside the
package, because setuptools' editable finder exposes Python packages, not data
folders; there they are read where they are, at the repository root.

Which config a command uses when none is given: ``./configs/<name>`` when the
current folder has that file (a project written by ``facetalk init``, or the
repository itself), and the packaged file otherwise. Command-line options and
``FACETALK_PERSONA`` / ``FACETALK_PIPELINE`` override both.

Everything FaceTalk downloads or builds (the face-mesh model, persona packs, a
``livekit-server`` binary) goes to the user's cache, never into the package:
``$FACETALK_CACHE``, else ``$XDG_CACHE_HOME/facetalk``, else ``~/.cache/facetalk``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import FaceTalkError

__all__ = [
    "LOCAL_CONFIGS",
    "PACKAGED_CONFIGS",
    "PACKAGED_WEB_PAGE",
    "cache_dir",
    "default_config",
    "init_project",
]

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent
"""The repository root when the package runs from a source checkout."""


def _shipped(in_package: str, in_checkout: str) -> Path:
    """Where a shipped folder is: inside an installed wheel, or in the source checkout."""
    packaged = _PACKAGE / in_package
    if packaged.exists() or not (_CHECKOUT / "pyproject.toml").is_file():
        return packaged
    return _CHECKOUT / in_checkout


PACKAGED_CONFIGS = _shipped("configs", "configs")
"""The default personas (``persona.yaml``, ``nova.yaml``, ``portraits/``) and ``pipeline.yaml``."""

PACKAGED_WEB_PAGE = _shipped("webpage/dist", "web/dist")
"""The browser page bundled by ``npm run build`` (``scripts/setup.sh`` runs it before a wheel is built)."""

LOCAL_CONFIGS = Path("configs")
"""A project's own configs, relative to the folder a command runs in."""

_PROJECT_FILES = ("*.yaml", "portraits/*")
"""What ``facetalk init`` copies: the same globs pyproject.toml ships."""


def default_config(name: str) -> Path:
    """``./configs/<name>`` if the current folder has it, else the packaged file of that name."""
    local = LOCAL_CONFIGS / name
    return local if local.is_file() else PACKAGED_CONFIGS / name


def cache_dir() -> Path:
    """FaceTalk's cache root: ``$FACETALK_CACHE``, ``$XDG_CACHE_HOME/facetalk`` or ``~/.cache/facetalk``."""
    if explicit := os.environ.get("FACETALK_CACHE"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative XDG_CACHE_HOME.
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "facetalk"


def init_project(folder: Path, *, force: bool = False) -> list[Path]:
    """Copy the packaged personas, portraits and pipeline into ``folder/configs``; return what was written.

    Nothing is written if any target exists, unless ``force``: a user's edited
    persona must not be replaced by a default one without asking.
    """
    sources = sorted(p for pattern in _PROJECT_FILES for p in PACKAGED_CONFIGS.glob(pattern) if p.is_file())
    if not sources:
        raise FaceTalkError(
            f"no packaged configs in {PACKAGED_CONFIGS}",
            hint="reinstall facetalk from a wheel built by 'pip wheel .' in the repository",
        )
    targets = [folder / LOCAL_CONFIGS / source.relative_to(PACKAGED_CONFIGS) for source in sources]
    existing = [target for target in targets if target.exists()]
    if existing and not force:
        raise FaceTalkError(
            f"{len(existing)} file(s) already exist: {', '.join(str(p) for p in existing)}",
            hint="pass --force to overwrite them with the defaults, or choose another folder",
        )
    for source, target in zip(sources, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return targets
