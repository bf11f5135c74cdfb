"""Options shared by ``lodetools train <net>`` commands, and the code that runs them.

A network's command module is three lines (see ``train_lbag.py``)::

    @click.command("foo", help=...)
    @train_options
    @click.pass_context
    def command(ctx, **params):
        run_train_command("foo", ctx)
"""

from __future__ import annotations

from pathlib import Path

import click

from lodetools.errors import BadConfig


def parse_kv(text: str | None, what: str) -> dict:
    """``"a=1,b=0.5,c=x"`` -> ``{'a': 1, 'b': 0.5, 'c': 'x'}`` (ints, floats, booleans, strings).

    Raises
    ------
    BadConfig
    """
    out = {}
    if not text:
        return out
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise BadConfig(f"{what}: expected name=value, got {item!r}")
        k, v = (s.strip() for s in item.split("=", 1))
        low = v.lower()
        if low in ("true", "false"):
            out[k] = low == "true"
            continue
        for cast in (int, float):
            try:
                out[k] = cast(v)
                break
            except ValueError:
                pass
        else:
            out[k] = v
    return out


def parse_floats(text: str | None, what: str) -> tuple:
    """``"0.5,0.75"`` -> ``(0.5, 0.75)``."""
    if not text:
        return ()
    try:
        return tuple(float(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        raise BadConfig(f"{what}: expected comma-separated numbers, got {text!r}") from None


def train_options(f):
    """Add the options every ``lodetools train <net>`` command has."""
    P = click.Path(path_type=Path)
    opts = [
        click.option("--data", required=True, type=P,
                     help="Paired dataset (lodetools layout) to train on; its 'train' split, with masks "
                          "for the local-blur losses."),
        click.option("--global-data", multiple=True, type=P,
                     help="Global-blur paired dataset(s) for alternating passes (BladeNet); repeatable."),
        click.option("--val-data", type=P, default=None,
                     help="Dataset for validation (default: --data); its --val-split is used."),
        click.option("--train-split", default="train", show_default=True, help="Split trained on."),
        click.option("--val-split", default="val", show_default=True,
                     help="Split validated on (skipped when the dataset has none)."),
        click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Run folder: checkpoints/, model.pt, config.json, train_log.csv, val_log.csv."),
        click.option("--recipe", type=str, default=None,
                     help="TOML recipe (file or shipped name, e.g. 'lbag'); flags override it."),
        click.option("--iters", type=click.IntRange(min=1), default=1000, show_default=True,
                     help="Total training iterations (all stages)."),
        click.option("--batch", type=click.IntRange(min=1), default=12, show_default=True,
                     help="Batch size per process."),
        click.option("--crop", type=click.IntRange(min=16), default=256, show_default=True,
                     help="Training crop side in pixels (multiple of the network's multiple)."),
        click.option("--lr", type=float, default=None, help="Learning rate (default: the network's)."),
        click.option("--lr-gamma", type=float, default=0.5, show_default=True,
                     help="LR factor at each milestone."),
        click.option("--lr-milestones", type=str, default="",
                     help="Comma-separated milestones: fractions of --iters (< 1) or iteration numbers."),
        click.option("--lr-step", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Also multiply the LR by --lr-gamma every N iterations (0: off)."),
        click.option("--augment", type=click.Choice(["none", "flip", "dihedral"]),
                     default="flip", show_default=True,
                     help="flip: horizontal flips (ReLoBlur); dihedral: 8 flip/rotation modes (LODE)."),
        click.option("--bapc-p", type=click.FloatRange(0, 1), default=0.5, show_default=True,
                     help="Blur-aware patch cropping probability (ReLoBlur; 0 disables)."),
        click.option("--bapc-min-fraction", type=click.FloatRange(0, 1), default=0.05, show_default=True,
                     help="Blur-centred crops only if the mask's blurred fraction exceeds this."),
        click.option("--net-opts", type=str, default="",
                     help="Network options name=value,... (e.g. 'base=8,num_res=2' for a small LBAG)."),
        click.option("--loss", type=str, default="",
                     help="Loss weights name=value,... overriding the network's defaults."),
        click.option("--stages", type=str, default="",
                     help="Stage fractions of --iters, name=fraction,... (BladeNet: lbp, deblur, joint)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of weights and data."),
        click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
                     help="Data-loading worker processes."),
        click.option("--val-every", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Validate every N iterations (0: never)."),
        click.option("--val-images", type=click.IntRange(min=1), default=10, show_default=True,
                     help="Validation images (whole, tiled)."),
        click.option("--val-tile", type=click.IntRange(min=0), default=512, show_default=True,
                     help="Tile side for validation inference (0: whole images)."),
        click.option("--ckpt-every", type=click.IntRange(min=1), default=1000, show_default=True,
                     help="Checkpoint every N iterations (and at the end of each stage and run)."),
        click.option("--device", type=str, default="auto", show_default=True,
                     help="auto (cuda > mps > cpu), or a torch device such as cuda:1."),
        click.option("--amp/--no-amp", default=True, show_default=True, help="Mixed precision on CUDA."),
        click.option("--channels-last/--no-channels-last", default=True, show_default=True,
                     help="channels_last memory format on CUDA."),
        click.option("--cache", is_flag=True, help="Keep decoded images in memory (small datasets)."),
        click.option("--resume", is_flag=True, help="Continue the run in --out from checkpoints/last.pt."),
        click.option("--stop-at", type=click.IntRange(min=1), default=None,
                     help="Stop after this iteration (with a checkpoint), e.g. before a job's time limit."),
        click.option("--overwrite", is_flag=True, help="Start afresh even if --out holds a run."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


#: options that are not part of the training configuration
RUN_ONLY = ("recipe", "resume", "stop_at", "overwrite", "quiet")


def config_from(net: str, params: dict):
    """A :class:`lodetools.train.trainer.TrainConfig` from a command's effective parameters."""
    from lodetools.train.trainer import TrainConfig
    return TrainConfig(
        net=net, data=str(params["data"]), out=str(params["out"]), iters=params["iters"],
        global_data=tuple(str(p) for p in params["global_data"]),
        val_data=str(params["val_data"]) if params["val_data"] else None,
        train_split=params["train_split"], val_split=params["val_split"], val_tile=params["val_tile"],
        net_opts=parse_kv(params["net_opts"], "--net-opts"), loss=parse_kv(params["loss"], "--loss"),
        stages=parse_kv(params["stages"], "--stages"), batch=params["batch"], crop=params["crop"],
        lr=params["lr"], lr_gamma=params["lr_gamma"],
        lr_milestones=parse_floats(params["lr_milestones"], "--lr-milestones"), lr_step=params["lr_step"],
        augmentation=params["augment"], bapc_p=params["bapc_p"],
        bapc_min_fraction=params["bapc_min_fraction"], seed=params["seed"], workers=params["workers"],
        val_every=params["val_every"], val_images=params["val_images"], ckpt_every=params["ckpt_every"],
        device=params["device"], amp=params["amp"], channels_last=params["channels_last"],
        cache=params["cache"])


def run_train_command(net: str, ctx: click.Context) -> None:
    """Resolve recipe + flags, train ``net``, print where the results are."""
    from lodetools.recipe import resolve_params
    from lodetools.train.trainer import Trainer
    params, recipe = resolve_params(ctx, section=f"train.{net}")
    cfg = config_from(net, params)
    trainer = Trainer(cfg, resume=params["resume"], overwrite=params["overwrite"],
                      quiet=params["quiet"], stop_at=params["stop_at"])
    hist = trainer.run()
    if trainer.dist.main:
        last = f", last loss {hist[-1][1]:.5g}" if hist else ""
        done = "model.pt" if (Path(cfg.out) / "model.pt").exists() and hist and hist[-1][0] >= cfg.iters \
            else "checkpoints/last.pt"
        click.echo(f"trained {net} to iteration {hist[-1][0] if hist else 0}{last}; "
                   f"weights in {Path(cfg.out) / done}", err=True)
