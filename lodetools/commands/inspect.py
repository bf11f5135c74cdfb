"""``lodetools inspect``: the layout, splits, scenes and pairs of a dataset root, and what is odd."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lodetools.commands._dataset_options import layout_option, masks_option
from lodetools.errors import EXIT_PARTIAL


@click.command("inspect", epilog="""\b
Layouts (read in place, as downloaded; nothing is written):
  lodetools  <root>/dataset.json + manifest.jsonl (what lodetools writes)
  gopro      [GOPRO_Large/]{train,test}/GOPRnnnn_nn_nn/{blur,blur_gamma,sharp}/NNNNNN.png
  reds       [REDS/][{split}/]{split}_blur[_comp|_jpeg]/CCC/FFFFFFFF.png + {split}_sharp/
  realblur   RealBlur_{J,R}_{train,test}_list.txt ('<gt> <blur>' per line) + the folders they name
  hide       [HIDE_dataset/]{train/, test/test-close-ups/, test/test-long-shot/, GT/}
  reloblur   dataset/{train,test}/<scene>/<seq>/<k>_{blur,sharp}.png + masks/<split>/<scene>/<seq>/<k>.png
  bladenet   [<split>/]{blur,sharp}/ paired by sorted name + a folder of .npy masks
  plain      any folder holding blur/ (or input/) and sharp/ (gt/, GT/, target/) [+ mask/]
\b
Examples:
  lodetools inspect GOPRO_Large
  lodetools inspect RealBlur --layout realblur:J
""")
@click.argument("root", type=click.Path(path_type=Path))
@layout_option
@masks_option
@click.option("--no-sizes", is_flag=True, help="Skip comparing blurred and sharp image sizes (headers only).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(root, layout, masks, no_sizes, as_json):
    """Show the detected layout of ROOT, its splits, scenes and pair counts, which pairs have masks,
    and anything odd (unpaired files, missing partners, size mismatches).

    Exit code 3 when problems are listed (a reader would stop at the first one
    that concerns it), 0 otherwise.
    """
    from lodetools.commands._options import params_from_click
    from lodetools.pipelines.inspect import InspectInputs, InspectParams, run

    values = dict(root=root, masks=masks, layout=layout, sizes=not no_sizes)
    summary = run(params_from_click(InspectInputs, values), params_from_click(InspectParams, values))
    info = summary.info
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        variant = f" (variant {info['variant']})" if info["variant"] else ""
        click.echo(f"{root}: {info['layout']} layout{variant}, from {info['base']}")
        click.echo(f"{'split':<10}{'pairs':>7}{'scenes':>8}{'sharp':>7}{'masks':>7}")
        for split, c in info["splits"].items():
            click.echo(f"{split:<10}{c['pairs']:>7}{c['scenes']:>8}{c['with_sharp']:>7}{c['with_mask']:>7}")
        for msg in info["problems"]:
            click.echo(f"  problem: {msg}")
        for msg in info["notes"]:
            click.echo(f"  note: {msg}")
    if info["problems"]:
        click.echo(f"{len(info['problems'])} problem(s)", err=True)
        sys.exit(EXIT_PARTIAL)
