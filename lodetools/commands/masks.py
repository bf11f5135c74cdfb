"""``lodetools masks``: LBFMG local-blur masks (ReLoBlur Algorithm 1) and blur statistics."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lodetools.commands._dataset_options import layout_option
from lodetools.commands._options import params_from_click, png_option, run_options, run_options_from
from lodetools.pipelines.masks import MasksParams

#: the options' defaults: MasksParams' (tuned on the synthetic world, docs/commands/masks.md;
#: lodetools/recipes/reloblur.toml [masks] holds the same)
DEFAULTS = dict(MasksParams.lbfmg.to_dict(), mixtures=MasksParams.lbfmg.n_mixtures)


def _optional_out(f):
    """Make ``--out`` optional: without it the dataset is updated in place."""
    for p in getattr(f, "__click_params__", []):
        if p.name == "out":
            p.required = False
            p.help = ("Write a new dataset (a copy with the masks added) here; default: "
                      "update --data in place.")
        elif p.name == "overwrite":
            p.help = ("Redo every mask, replacing masks the dataset already has (also true masks "
                      "from synthesize) and LBFMG masks made with other parameters.")
    return f


@click.command("masks")
@click.option("--data", "-d", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Paired dataset to make masks for: a lodetools one (from align, synthesize, develop), "
                   "or a published one in any layout `lodetools inspect` reads (then give --out elsewhere).")
@_optional_out
@run_options
@click.option("--split", type=str, default=None, help="Only this split (train/val/test).")
@layout_option
@click.option("--no-static", type=click.Choice(["error", "median"]), default=MasksParams.no_static,
              show_default=True,
              help="A scene without a static pair: stop with an error, or start the background "
                   "models from the per-pixel median of the scene's other images (not in ReLoBlur; "
                   "recorded in each mask's provenance).")
@click.option("--history", type=click.IntRange(min=1), default=DEFAULTS["history"], show_default=True,
              help="MOG2 history (auto learning rate 1/min(2n, history)).")
@click.option("--var-threshold", type=click.FloatRange(min=0, min_open=True), default=DEFAULTS["var_threshold"],
              show_default=True, help="MOG2 varThreshold (squared Mahalanobis distance).")
@click.option("--background-ratio", type=click.FloatRange(0, 1, min_open=True),
              default=DEFAULTS["background_ratio"], show_default=True, help="MOG2 backgroundRatio.")
@click.option("--mixtures", type=click.IntRange(min=1), default=DEFAULTS["mixtures"], show_default=True,
              help="MOG2 Gaussians per pixel.")
@click.option("--detect-shadows/--no-detect-shadows", default=DEFAULTS["detect_shadows"], show_default=True,
              help="MOG2 shadow detection (label 127).")
@click.option("--shadow-threshold", type=click.FloatRange(0, 1), default=DEFAULTS["shadow_threshold"],
              show_default=True, help="MOG2 shadowThreshold.")
@click.option("--var-init", type=click.FloatRange(min=0, min_open=True), default=DEFAULTS["var_init"],
              show_default=True, help="MOG2 varInit: variance of a new Gaussian.")
@click.option("--var-min", type=click.FloatRange(min=0, min_open=True), default=DEFAULTS["var_min"],
              show_default=True, help="MOG2 varMin: variance floor (noise tolerance when a scene has few pairs).")
@click.option("--shadows", type=click.Choice(["foreground", "background"]), default=DEFAULTS["shadows"],
              show_default=True, help="MOG2 shadow pixels (127) count as foreground (the paper's fg > 1) "
                                      "or background (fg > 127).")
@click.option("--init-frames", type=click.IntRange(min=1), default=DEFAULTS["init_frames"], show_default=True,
              help="Times the static pair is fed to initialise the models.")
@click.option("--learning-rate", type=float, default=DEFAULTS["learning_rate"], show_default=True,
              help="MOG2 learning rate of the updates with the scene's other pairs (-1: automatic).")
@click.option("--match-exposure/--no-match-exposure", default=DEFAULTS["match_exposure"], show_default=True,
              help="Scale each image per channel to the static image's brightness (median ratio over "
                   "well-exposed pixels) before MOG2; not in ReLoBlur, needed when captures differ in exposure.")
@click.option("--shift-tolerance", type=click.IntRange(0, 3), default=DEFAULTS["shift_tolerance"],
              show_default=True, help="Pixels: foreground only where every shift of the target by up to this "
                                      "is foreground (tolerates per-pair alignment error; 0: off, the paper).")
@click.option("--erode", type=click.IntRange(min=0), default=DEFAULTS["erode"], show_default=True,
              help="Erosion disk diameter in pixels (0: none).")
@click.option("--dilate", type=click.IntRange(min=0), default=DEFAULTS["dilate"], show_default=True,
              help="Dilation disk diameter in pixels, after the erosion (0: none).")
@click.option("--bins", type=click.IntRange(min=1), default=MasksParams.bins, show_default=True,
              help="Bins of the blurred-fraction histogram (mask_stats.png).")
@png_option
@click.pass_context
def command(ctx, **_):
    """Make local-blur masks with LBFMG (ReLoBlur Algorithm 1) and blur statistics.

    For each pair of a scene, two OpenCV MOG2 background models (sharp and
    blurred images) start from the scene's static pair (record "static": true,
    id 'reference' from align), learn from the scene's other pairs in order,
    and are applied to the pair with learning rate 0 (the pair never trains its
    own background); mask = (fg_sharp > 1) OR (fg_blur > 1), then erosion and
    dilation. Masks are 0/255 PNGs in <split>/<scene>/mask/<id>.png, recorded in
    the manifest. By default the dataset is updated in place: a rerun resumes;
    masks the dataset already has are kept unless --overwrite. Also writes
    mask_stats.json (blurred fraction per image, dataset mean; ReLoBlur: 11.75 %)
    and mask_stats.png (histogram) into the dataset.

    Example:

        lodetools masks --data aligned --recipe reloblur
    """
    from lodetools.pipelines.masks import run
    from lodetools.recipe import resolve_params
    from lodetools.runner import report

    values, recipe = resolve_params(ctx)
    if values.get("out") is None:
        values["out"] = values["data"]
    params = params_from_click(MasksParams, values, n_mixtures=values["mixtures"])
    summary = run(values["data"], params, run_options_from(values, desc="masks (scenes)", recipe=recipe))
    stats = summary.info["stats"]
    if not values["quiet"] and stats.get("mean") is not None:
        click.echo(f"blurred fraction: mean {100 * stats['mean']:.2f} % over {stats['count']} images "
                   f"(ReLoBlur: 11.75 %)", err=True)
    sys.exit(report(summary, what="scenes"))
