"""``lodetools stats blur-ratio``: blurred-area ratio curves (LODE section 5.1, Figure 3)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lodetools.commands._dataset_options import layout_option
from lodetools.commands._options import params_from_click, run_options, run_options_from


@click.command(name="blur-ratio")
@click.option("--videos", multiple=True, type=click.Path(path_type=Path),
              help="A dataset given as a folder of videos and/or frame folders. Repeatable.")
@click.option("--pairs", multiple=True, type=click.Path(path_type=Path),
              help="A dataset written by 'synthesize': frames are re-read from each pair's source "
                   "video, starting at its sharp frame. Repeatable.")
@click.option("--label", multiple=True,
              help="Dataset names for the plot, in order: the --videos folders, then the --pairs "
                   "folders (default: folder names). Repeatable.")
@click.option("--fps", type=float, default=None,
              help="Frame rate of every input (default: the container's, or the pairs' provenance; "
                   "3 frames when unknown).")
@click.option("--frames", type=int, default=None,
              help="Consecutive frames per measurement (default from fps: 2 at 120, 3 at 240/250 fps, "
                   "LODE section 5.1); flow from the first to the last.")
@layout_option
@run_options
@click.pass_context
def command(ctx, **_):
    """Blurred-area ratio curves: how much of each frame moves (LODE Figure 3).

    Per video, a random run of consecutive frames spanning about 1/120 s;
    OpenCV DeepFlow from its first to its last frame; the ratio of pixels whose
    flow norm exceeds t, for t = 0 to 5 px in steps of 0.1, averaged per
    dataset. Writes <out>/blur_ratio.csv (one column per dataset),
    blur_ratio_clips.csv (one row per video) and blur_ratio.png. Global-blur
    datasets (camera shake) keep a high ratio at large thresholds; local-blur
    datasets fall fast.

    \b
    Example:
        lodetools stats blur-ratio --videos lode_clips/ --videos gopro_clips/ --label LODE --label GoPro --out stats/
    """
    from lodetools.pipelines.blur_ratio import BlurRatioInputs, BlurRatioParams, run
    from lodetools.recipe import resolve_params
    from lodetools.runner import report

    values, recipe = resolve_params(ctx, "stats.blur-ratio")
    summary = run(params_from_click(BlurRatioInputs, values), params_from_click(BlurRatioParams, values),
                  run_options_from(values, desc="videos", recipe=recipe))
    skipped = summary.info["skipped_pairs"]
    for key, why in list(skipped.items())[:20]:
        click.echo(f"  skipped {key}: {why}", err=True)
    if len(skipped) > 20:
        click.echo(f"  ... and {len(skipped) - 20} more skipped pairs (see dataset.json)", err=True)
    for lab, c in summary.info["curves"].items():
        click.echo(f"{lab}: ratio {c[5]:.3f} at 0.5 px, {c[10]:.3f} at 1 px, {c[20]:.3f} at 2 px, "
                   f"{c[50]:.3f} at 5 px", err=True)
    sys.exit(report(summary, what="videos"))
