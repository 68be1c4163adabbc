"""The personas a visitor may choose from: every ``kind: persona`` YAML in one folder.

A persona's id is its file stem. The web page sends the id as the user's
participant attribute ``facetalk.persona``, and the worker loads the file of
that stem beside its own default persona; so the page must list the folder
the worker loads from (both default to ``configs/``).

The folder is read on every call, so a persona added while ``facetalk web``
runs shows up on the next page load. A file that does not validate is left
out with a warning rather than breaking the page for the others.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError, PersonaConfig, load_config
from .errors import FaceTalkError

__all__ = ["PERSONA_ID_PATTERN", "PersonaCatalog", "PersonaEntry", "UnknownPersonaError"]

logger = logging.getLogger("facetalk.personas")

PERSONA_ID_PATTERN = r"[\w-]+"
"""What the worker accepts as a persona id (a file stem, never a path)."""


class UnknownPersonaError(FaceTalkError):
    """An id that names no valid persona in the folder."""


@dataclass(frozen=True)
class PersonaEntry:
    """One choosable persona: its id (file stem) and validated config."""

    id: str
    config: PersonaConfig

    def thumbnail_jpeg(self, size: int = 192) -> bytes:
        """The portrait, centre-cropped to a square of ``size`` px, as JPEG bytes.

        Portraits are full-resolution PNGs (hundreds of KB); a picker needs a
        few KB each.
        """
        import cv2

        image = cv2.imread(str(self.config.portrait), cv2.IMREAD_COLOR)
        if image is None:
            raise UnknownPersonaError(f"persona {self.id!r}: cannot read {self.config.portrait}")
        height, width = image.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = cv2.resize(image[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA)
        ok, encoded = cv2.imencode(".jpg", square, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            raise UnknownPersonaError(f"persona {self.id!r}: cannot encode its thumbnail")
        return encoded.tobytes()


@dataclass(frozen=True)
class PersonaCatalog:
    """The persona files of ``folder``; ``default_id`` is listed first."""

    folder: Path
    default_id: str = "persona"

    def entries(self) -> list[PersonaEntry]:
        """Every valid persona in the folder, the default first, then by id."""
        found: list[PersonaEntry] = []
        for path in sorted(self.folder.glob("*.yaml")):
            if not re.fullmatch(PERSONA_ID_PATTERN, path.stem):
                continue
            try:
                config = load_config(path)
            except ConfigError as e:
                logger.warning("leaving out %s: %s", path, e)
                continue
            if isinstance(config, PersonaConfig):
                found.append(PersonaEntry(path.stem, config))
        return sorted(found, key=lambda entry: (entry.id != self.default_id, entry.id))

    def get(self, persona_id: str) -> PersonaEntry:
        """The persona with this id, or :class:`UnknownPersonaError`."""
        entries = self.entries()
        for entry in entries:
            if entry.id == persona_id:
                return entry
        known = ", ".join(entry.id for entry in entries) or "none"
        raise UnknownPersonaError(
            f"unknown persona {persona_id!r} (known: {known})",
            hint=f"add {persona_id}.yaml with 'kind: persona' to {self.folder}",
        )
