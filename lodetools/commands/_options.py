"""Options shared by the data pipelines' commands, and the mapping of click values onto typed parameters."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import click

from lodetools.errors import BadConfig
from lodetools.runner import RunOptions, parse_shard


def _shard(ctx, param, value):
    try:
        parse_shard(value)
    except Exception as exc:  # BadConfig -> a click usage error naming the option
        raise click.BadParameter(str(getattr(exc, "what", exc))) from None
    return value


def run_options(f):
    """Add ``--out --recipe --seed --workers --shard --on-error --overwrite --quiet``."""
    opts = [
        click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Output folder (created; a rerun resumes where it stopped)."),
        click.option("--recipe", type=str, default=None,
                     help="TOML recipe (a file, or a shipped name such as 'lode'); flags override it."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed; every item's randomness comes from (seed, item id)."),
        click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Local worker processes."),
        click.option("--shard", type=str, default=None, callback=_shard,
                     help="Process only shard K of N (K/N, 1-based), e.g. one SLURM array task."),
        click.option("--on-error", type=click.Choice(["stop", "skip"]), default="stop", show_default=True,
                     help="On a bad item: stop, or skip it, go on and list it at the end."),
        click.option("--overwrite", is_flag=True,
                     help="Redo every item even if the output folder already holds results."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def png_option(f):
    """Add ``--png-compression`` (how hard the written PNGs are compressed; the pixels do not change)."""
    from lodetools.io.images import PNG_COMPRESSIONS

    return click.option(
        "--png-compression", type=click.Choice(PNG_COMPRESSIONS), default="fast", show_default=True,
        help="PNG encoding effort: fast (Sub filter, libdeflate level 1; OpenCV's zlib level 1 where "
             "libdeflate is not installed) or a zlib level 0-9 through OpenCV (3: about 1-2 % smaller "
             "files for 6x the encoding time; see docs/performance.md). Lossless either way: recorded, "
             "not compared on resume.")(f)


def run_options_from(values: dict, desc: str = "", *, recipe: str | None = None,
                     device: str | None = None) -> RunOptions:
    """A :class:`RunOptions` from a command's effective option values."""
    from lodetools.io.images import png_compression_level

    return RunOptions(out=Path(values["out"]), seed=int(values.get("seed") or 0),
                      workers=int(values.get("workers") or 1), shard=parse_shard(values.get("shard")),
                      on_error=values.get("on_error") or "stop", overwrite=bool(values.get("overwrite")),
                      quiet=bool(values.get("quiet")), desc=desc, recipe=recipe, device=device,
                      png_compression=png_compression_level(values.get("png_compression")))


def _convert(value, hint, name: str):
    """``value`` (a click value: str, list, ...) as type ``hint`` of a dataclass field."""
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        return _convert(value, kinds[0], name) if len(kinds) == 1 else value
    if origin is typing.Literal:
        for choice in args:
            if value == choice or str(value) == str(choice):
                return choice
        raise BadConfig(f"bad {name} {value!r}: expected one of {', '.join(map(str, args))}")
    if origin is tuple:
        items = [value] if isinstance(value, (str, Path)) else list(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], name) for v in items)
        if args and len(items) != len(args):
            raise BadConfig(f"bad {name} {value!r}: expected {len(args)} values")
        return tuple(_convert(v, a, name) for v, a in zip(items, args)) if args else tuple(items)
    if hint is Path:
        return Path(value)
    if hint in (int, float, str):
        try:
            return hint(value)
        except (TypeError, ValueError):
            raise BadConfig(f"bad {name} {value!r}: expected {hint.__name__}") from None
    if hint is bool:
        return bool(value)
    return value


def params_from_click(cls, values: dict, **overrides):
    """Typed parameters from a command's option values, by :func:`dataclasses.fields`.

    Each field of ``cls`` takes the value of the option of the same name
    (``values``: what :func:`lodetools.recipe.resolve_params` returns, so
    recipe values come first and flags given on the command line override
    them), converted to the field's type (``'8'`` -> ``8`` for a
    ``Literal[8, 16]``, lists -> tuples, strings -> paths); a field that is
    itself a dataclass is filled the same way from the same values; a field
    without an option keeps its default. ``overrides`` (field name -> value)
    win over ``values``: for options whose meaning differs from the field's
    (``--no-color-matrix`` -> ``color_matrix``). Values that match no field
    are ignored (they are run options or inputs).

    Raises
    ------
    BadConfig
        A value the field's type rejects.
    """
    source = {**values, **overrides}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if f.name in source:
            kwargs[f.name] = _convert(source[f.name], hint, f.name.replace("_", "-"))
        elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[f.name] = params_from_click(hint, source)
    return cls(**kwargs)

