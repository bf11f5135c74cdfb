"""A click group whose subcommands live in sibling modules, imported on use."""

from __future__ import annotations

import importlib
import importlib.util

import click


def lazy_group(name: str, subcommands: dict, help: str):
    """Make a click group ``name`` whose subcommand ``s`` is ``lodetools.commands.<module>.command``.

    Parameters
    ----------
    name : str
    subcommands : dict
        subcommand name -> module name under ``lodetools.commands``.
    help : str
    """

    class _Group(click.Group):
        def list_commands(self, ctx):
            return [s for s, m in subcommands.items()
                    if importlib.util.find_spec(f"lodetools.commands.{m}") is not None]

        def get_command(self, ctx, sub):
            m = subcommands.get(sub)
            if m is None or importlib.util.find_spec(f"lodetools.commands.{m}") is None:
                return None
            return importlib.import_module(f"lodetools.commands.{m}").command

    return _Group(name=name, help=help)
