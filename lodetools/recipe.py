"""Recipes: TOML files holding a paper's defaults for a command.

A recipe is read with :mod:`tomllib`. Values for command ``X`` come from the
table ``[X]`` when the file has one (``[train.lbag]`` style dotted names work
too), else from the file's top-level keys; the optional keys ``description``
and ``source`` are documentation. Option names use underscores
(``val_fraction`` for ``--val-fraction``). A flag given on the command line
overrides the recipe; the effective values are written into ``dataset.json``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import click

from lodetools.errors import BadConfig, MissingInput
from lodetools.resources import RECIPES, find_shipped, shipped_names

_DOC_KEYS = {"description", "source", "paper"}
#: subfolders of ``lodetools/recipes`` searched for a recipe name
_RECIPE_SUBFOLDERS = ("", "train")


def find_recipe(spec):
    """A recipe: an existing file, or the name of a recipe shipped in ``lodetools/recipes`` (``lode``).

    Shipped recipes are package data (``lodetools/recipes/*.toml`` and
    ``recipes/train/*.toml``), found with :mod:`importlib.resources`.

    Returns
    -------
    pathlib.Path or importlib.resources.abc.Traversable
        Has ``read_text``; ``str()`` of it is recorded as the recipe's path.

    Raises
    ------
    MissingInput
    """
    p = Path(spec)
    if p.is_file():
        return p
    found = find_shipped(RECIPES, spec, subfolders=_RECIPE_SUBFOLDERS)
    if found is None:
        names = ", ".join(shipped_names(RECIPES, subfolders=_RECIPE_SUBFOLDERS))
        raise MissingInput(f"recipe not found; shipped recipes: {names}", spec)
    return found


def load_recipe(spec, section: str) -> tuple[Path, dict]:
    """Read the values a recipe holds for ``section`` (a command name).

    Returns
    -------
    path : pathlib.Path or importlib.resources.abc.Traversable
        From :func:`find_recipe`.
    values : dict
        Option name -> value (documentation keys removed).

    Raises
    ------
    BadConfig
        If the file is not valid TOML.
    """
    path = find_recipe(spec)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadConfig(f"recipe is not valid TOML: {exc}", path) from None
    node = doc
    for part in section.split("."):
        if isinstance(node, dict) and isinstance(node.get(part), dict):
            node = node[part]
        else:
            node = None
            break
    if node is None:
        node = {k: v for k, v in doc.items() if not isinstance(v, dict)}
    return path, {k: v for k, v in node.items() if k not in _DOC_KEYS and not isinstance(v, dict)}


def resolve_params(ctx: click.Context, section: str | None = None, *,
                   exclude=("recipe",)) -> tuple[dict, str | None]:
    """Effective option values: command line > recipe > default.

    Parameters
    ----------
    ctx : click.Context
        The command's context (its ``params`` hold the parsed values).
    section : str, optional
        Recipe table to read (default: the command's name).
    exclude : iterable of str
        Options never taken from a recipe.

    Returns
    -------
    params : dict
        Option name -> effective value (converted by the option's click type).
    recipe_path : str or None

    Raises
    ------
    BadConfig
        For a recipe key that is not an option of the command, or a value
        the option's type rejects.
    """
    params = dict(ctx.params)
    spec = params.get("recipe")
    if not spec:
        return params, None
    path, values = load_recipe(spec, section or ctx.command.name)
    by_name = {p.name: p for p in ctx.command.params if p.name not in exclude}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in by_name:
            raise BadConfig(f"unknown recipe key {key!r} for '{ctx.command_path}'", path)
        src = ctx.get_parameter_source(name)
        if src in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT):
            continue
        param = by_name[name]
        try:
            if param.multiple and not isinstance(value, (list, tuple)):
                value = [value]
            params[name] = param.type_cast_value(ctx, value)
        except click.BadParameter as exc:
            raise BadConfig(f"bad recipe value {key} = {value!r}: {exc.message}", path) from None
    return params, str(path)
