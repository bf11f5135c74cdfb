"""Options shared by ``lodetools train <net>`` commands, and the code that runs them.

The training options are generated from :data:`lodetools.train.options.FIELDS`
(one table: name, type, default, help); this module adds the options that
steer a run but are not part of its configuration (``--recipe``,
``--resume``, ...). A network's command module is three lines (see
``train_lbag.py``)::

    @click.command("foo", help=...)
    @train_options
    @click.pass_context
    def command(ctx, **params):
        run_train_command("foo", ctx)
"""

from __future__ import annotations

from pathlib import Path

import click

from lodetools.train.options import FIELDS

#: options of a run that are not part of its configuration
RUN_OPTIONS = (
    click.option("--recipe", type=str, default=None,
                 help="TOML recipe (file or shipped name, e.g. 'lbag'); flags override it."),
    click.option("--resume", is_flag=True, help="Continue the run in --out from checkpoints/last.pt."),
    click.option("--stop-at", type=click.IntRange(min=1), default=None,
                 help="Stop after this iteration (with a checkpoint), e.g. before a job's time limit."),
    click.option("--overwrite", is_flag=True, help="Start afresh even if --out holds a run."),
    click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
)
RUN_ONLY = ("recipe", "resume", "stop_at", "overwrite", "quiet")


def _click_option(f):
    """The click option of one :class:`lodetools.train.options.Field`."""
    decls = [f.flag] + ([f.short] if f.short else [])
    kw = {"help": f.help}
    if f.required:
        kw["required"] = True
    elif f.type == "kv":
        kw["default"] = ""
    elif f.type == "floats":
        kw["default"] = ""
    elif f.type != "paths":
        kw["default"] = f.default
        kw["show_default"] = f.default not in (None, "")
    if f.type == bool:
        if f.default:
            decls = [f"{f.flag}/--no-{f.flag[2:]}"]
        else:
            kw.update(is_flag=True, show_default=False)
    elif f.type in ("path", "paths"):
        kw["type"] = click.Path(path_type=Path, file_okay=f.name != "out")
        kw["multiple"] = f.type == "paths"
    elif isinstance(f.type, tuple):
        kw["type"] = click.Choice(list(f.type))
    elif f.type in (int, float) and (f.min is not None or f.max is not None):
        rng = click.IntRange if f.type is int else click.FloatRange
        kw["type"] = rng(min=f.min, max=f.max)
    elif f.type in (int, float, str):
        kw["type"] = f.type
    else:                                   # text parsed into a dict/tuple by the field
        kw["type"] = str
    return click.option(*decls, **kw)


def train_options(f):
    """Add the options every ``lodetools train <net>`` command has: :data:`FIELDS`, then the run options."""
    for opt in reversed([_click_option(fl) for fl in FIELDS] + list(RUN_OPTIONS)):
        f = opt(f)
    return f


def run_train_command(net: str, ctx: click.Context) -> None:
    """Resolve recipe + flags, train ``net``, print where the results are."""
    from lodetools.recipe import resolve_params
    from lodetools.train.options import config_from
    from lodetools.train.trainer import Trainer
    params, recipe = resolve_params(ctx, section=f"train.{net}")
    cfg = config_from(net, {k: v for k, v in params.items() if k not in RUN_ONLY})
    trainer = Trainer(cfg, resume=params["resume"], overwrite=params["overwrite"],
                      quiet=params["quiet"], stop_at=params["stop_at"])
    hist = trainer.run()
    if trainer.dist.main:
        last = f", last loss {hist[-1][1]:.5g}" if hist else ""
        done = "model.pt" if (Path(cfg.out) / "model.pt").exists() and trainer.iteration >= cfg.iters \
            else "checkpoints/last.pt"
        click.echo(f"trained {net} to iteration {trainer.iteration}{last}; "
                   f"weights in {Path(cfg.out) / done}", err=True)
