"""Which persona a user talks to: the persona files of one folder, and each user's choice.

A persona's id is its file stem. The web page sends the id as the user's
participant attribute :data:`~.protocol.PERSONA_ATTRIBUTE`, and the worker
loads the file of that stem beside its own default persona; so the page must
list the folder the worker loads from (both default to ``configs/``). Both
sides go through :class:`PersonaCatalog`, so they accept the same ids
(:data:`PERSONA_ID_PATTERN`: a file stem, never a path).

The folder is read on every call, so a persona added while ``facetalk web``
runs shows up on the next page load. A file that does not validate is left
out with a warning rather than breaking the page for the others.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError, PersonaConfig, load_config, load_persona
from ..errors import FaceTalkError
from .protocol import PERSONA_ATTRIBUTE

__all__ = ["PERSONA_ID_PATTERN", "PersonaCatalog", "PersonaChoice", "PersonaEntry", "UnknownPersonaError"]

logger = logging.getLogger(__name__)

PERSONA_ID_PATTERN = r"[\w-]+"
"""What the worker and the page accept as a persona id (a file stem, never a path)."""


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
        found = [
            entry
            for path in sorted(self.folder.glob("*.yaml"))
            if re.fullmatch(PERSONA_ID_PATTERN, path.stem) and (entry := self._read(path)) is not None
        ]
        return sorted(found, key=lambda entry: (entry.id != self.default_id, entry.id))

    def get(self, persona_id: str) -> PersonaEntry:
        """The persona with this id, read now, or :class:`UnknownPersonaError`."""
        path = self.folder / f"{persona_id}.yaml"
        if re.fullmatch(PERSONA_ID_PATTERN, persona_id) and path.is_file():
            if (entry := self._read(path)) is not None:
                return entry
        known = ", ".join(entry.id for entry in self.entries()) or "none"
        raise UnknownPersonaError(
            f"unknown persona {persona_id!r} (known: {known})",
            hint=f"add {persona_id}.yaml with 'kind: persona' to {self.folder}",
        )

    @staticmethod
    def _read(path: Path) -> PersonaEntry | None:
        """The persona in ``path``; None (with a warning) if it is invalid or another kind."""
        try:
            config = load_config(path)
        except ConfigError as e:
            logger.warning("leaving out %s: %s", path, e)
            return None
        return PersonaEntry(path.stem, config) if isinstance(config, PersonaConfig) else None


@dataclass(frozen=True)
class PersonaChoice:
    """The persona each user of a worker gets: the one they chose, else the worker's default.

    Built once per worker process; each choice reads the chosen file, so a
    persona added beside the default needs no restart.
    """

    default: PersonaConfig
    catalog: PersonaCatalog

    @classmethod
    def load(cls, default_path: str | Path) -> PersonaChoice:
        """The default persona at ``default_path``, its folder offering the others.

        Raises :class:`~facetalk.config.ConfigError` if the default is invalid.
        """
        path = Path(default_path)
        return cls(load_persona(path), PersonaCatalog(path.parent, default_id=path.stem))

    def persona_for(self, attributes: Mapping[str, str]) -> PersonaConfig:
        """The persona named by a participant's :data:`~.protocol.PERSONA_ATTRIBUTE`.

        An unknown, invalid or path-like id falls back to the default (logged):
        a user must never be left without an avatar.
        """
        chosen = attributes.get(PERSONA_ATTRIBUTE, "")
        if not chosen or chosen == self.catalog.default_id:
            return self.default
        try:
            return self.catalog.get(chosen).config
        except UnknownPersonaError as e:
            logger.warning("%s; using %s", e.message, self.default.name)
            return self.default
