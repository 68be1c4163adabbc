"""How every ``facetalk`` command reports a problem the user can fix.

Shared by the command modules of each area (``facetalk/cli.py``,
``avatar/cli.py``, ...), which is why it is not in ``facetalk/cli.py``: the
areas' modules would import the CLI that registers them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from .errors import FaceTalkError

__all__ = ["reports_errors"]

P = ParamSpec("P")
R = TypeVar("R")

_err_console = Console(stderr=True)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a :class:`FaceTalkError` into a readable message and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except FaceTalkError as e:
            _err_console.print("[bold red]error:[/]", end=" ")
            _err_console.print(str(e), highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper
