"""``--layout`` and ``--masks``: the options of every command that reads a paired dataset."""

from __future__ import annotations

from pathlib import Path

import click

LAYOUT_HELP = ("Dataset layout, detected when omitted: lodetools, gopro, reds, realblur, hide, reloblur, "
               "bladenet, plain; NAME:VARIANT for gopro:blur_gamma, reds:blur_comp, reds:blur_jpeg, "
               "realblur:J, realblur:R (`lodetools inspect ROOT` shows what is detected).")
MASKS_HELP = ("Folder of local-blur masks made outside a mask-free dataset (what `lodetools masks --data "
              "ROOT --out DIR` writes: DIR/<split>/<scene>/mask/<id>.png); they replace the dataset's own.")


def _layout(ctx, param, value):
    if value is None:
        return None
    from lodetools.io.datasets import parse_layout
    try:
        name, variant = parse_layout(value)
    except Exception as exc:  # BadConfig -> a click usage error naming the option
        raise click.BadParameter(str(getattr(exc, "what", exc))) from None
    return None if name is None else (f"{name}:{variant}" if variant else name)


def layout_option(f):
    """Add ``--layout NAME[:VARIANT]`` (value checked, ``None`` when detected)."""
    return click.option("--layout", type=str, default=None, callback=_layout, help=LAYOUT_HELP)(f)


def masks_option(f):
    """Add ``--masks DIR``."""
    return click.option("--masks", "masks", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help=MASKS_HELP)(f)
