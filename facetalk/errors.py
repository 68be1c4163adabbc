"""The one error type FaceTalk shows to users.

Every failure a user can fix (a bad file, a missing binary, a model that is not
installed) is raised as a :class:`FaceTalkError` whose message says what is
wrong and whose ``hint`` says how to fix it. The CLI prints both and exits
non-zero; library callers can catch the one type.
"""

from __future__ import annotations

__all__ = ["FaceTalkError"]


class FaceTalkError(Exception):
    """A problem the user can fix, with a hint that says how."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.hint}" if self.hint else self.message
