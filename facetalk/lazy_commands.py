"""Command groups whose members are imported only when one of them is needed.

Every ``python -m facetalk ...`` process (each worker, each test's subprocess)
imports the CLI first. Registering the avatar's and training's commands the
usual way would import their modules, and with them OpenCV, the avatar package
and livekit-agents, seconds before the one command that runs. This is click's
documented pattern for lazily loaded subcommands ("Lazily Loading Subcommands"
in click's docs) on typer's group class: a command named in :attr:`lazy` is
imported on first use, and ``--help`` imports them to list them.
"""

from __future__ import annotations

import importlib
from typing import ClassVar

import click
import typer
from typer.core import TyperGroup

__all__ = ["LazyCommands"]


class LazyCommands(TyperGroup):
    """A typer group whose commands in :attr:`lazy` are imported on first use.

    Subclass it with ``lazy = {"name": "module:attribute"}``, where the
    attribute is a :class:`typer.Typer` (a command group) or a command
    function, and pass the subclass as ``typer.Typer(cls=...)``.
    """

    lazy: ClassVar[dict[str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *self.lazy]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = self.lazy[cmd_name].split(":")
        target = getattr(importlib.import_module(module_name), attribute)
        if isinstance(target, typer.Typer):
            group = typer.main.get_group(target)
            group.name = cmd_name  # a Typer added by name has none of its own
            return group
        single = typer.Typer()
        single.command(cmd_name)(target)
        return typer.main.get_command(single)
