"""Options shared by the data pipelines' commands."""

from __future__ import annotations

from pathlib import Path

import click

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


def run_options_from(params: dict, desc: str = "") -> RunOptions:
    """A :class:`RunOptions` from a command's effective parameters."""
    return RunOptions(out=Path(params["out"]), seed=int(params["seed"]), workers=int(params["workers"]),
                      shard=parse_shard(params.get("shard")), on_error=params["on_error"],
                      overwrite=bool(params["overwrite"]), quiet=bool(params["quiet"]), desc=desc)


#: option names that describe how a run runs, not what it computes (kept out of
#: the parameter comparison that decides whether an output folder can be resumed)
RUN_ONLY = ("out", "recipe", "workers", "shard", "on_error", "overwrite", "quiet")


def computed_params(params: dict) -> dict:
    """The parameters that determine the outputs (JSON-friendly)."""
    out = {}
    for k, v in params.items():
        if k in RUN_ONLY:
            continue
        if isinstance(v, Path):
            v = str(v)
        elif isinstance(v, tuple):
            v = [str(x) if isinstance(x, Path) else x for x in v]
        out[k] = v
    return out
