"""``lodetools eval``: PSNR, SSIM, weighted and aligned metrics of predictions."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lodetools.commands._dataset_options import layout_option, masks_option
from lodetools.errors import EXIT_PARTIAL


@click.command("eval")
@click.option("--pred", "pred_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of predicted (deblurred) images, named by pair id (see below).")
@click.option("--input-baseline", is_flag=True,
              help="Score the dataset's own blurred images instead of predictions (the 'blurry input' row "
                   "of results tables); needs --out.")
@click.option("--gt", "gt_root", required=True, type=click.Path(path_type=Path),
              help="Dataset holding the ground truth (and masks): lodetools' own or a published one as "
                   "downloaded (GoPro, REDS, RealBlur, HIDE, ReLoBlur, BladeNet, plain blur/+sharp/).")
@layout_option
@masks_option
@click.option("--split", default="test", show_default=True,
              help="Split to evaluate; 'all' for every split.")
@click.option("--metrics", default="psnr,ssim,psnrw,ssimw", show_default=True,
              help="Comma-separated: psnr, ssim, psnrw, ssimw (need masks), psnra, ssima (aligned; slow).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where metrics.csv and summary.json go [default: the --pred folder].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def command(pred_dir, input_baseline, gt_root, layout, masks, split, metrics, out_dir, quiet):
    """Score predictions against a paired dataset, each metric in one stated convention.

    Predictions are matched by id: PRED/<split>/<scene>/<id>.png (what
    `lodetools deblur` writes), PRED/<scene>/<id>.png, PRED/<scene>_<id>.png or
    PRED/<id>.png. Missing and extra predictions are listed (exit code 3 when
    some are missing); a size mismatch is an error. Conventions: PSNR/SSIM as
    BasicSR (8-bit rounding, float64, SSIM with an 11x11 gaussian window,
    sigma 1.5, valid region); weighted PSNR/SSIM as ReLoBlur's code, over the
    dataset's masks; aligned PSNR/SSIM by the RealBlur protocol (ECC homography).
    Identical images give PSNR = inf: shown in the CSV, left out of the means
    and counted in summary.json. Static reference pairs are not scored.

    Writes metrics.csv (per image) and summary.json, and prints a table.
    Nothing is written inside the dataset.

    Examples:

      lodetools eval --pred runs/lbag/deblurred --gt demo-out/reloblur --split test

      lodetools eval --input-baseline --gt GOPRO_Large --split test --out scores/gopro-input
    """
    import os

    from lodetools.commands._options import params_from_click
    from lodetools.pipelines.evaluate import EvalInputs, EvalParams, format_table, parse_metrics, run
    from lodetools.runner import RunOptions

    from lodetools.errors import BadConfig

    if input_baseline and out_dir is None:
        raise BadConfig("--input-baseline needs --out DIR for metrics.csv and summary.json "
                        "(nothing is written inside the dataset)")
    values = dict(pred=pred_dir, gt=gt_root, split=None if split == "all" else split,
                  metrics=parse_metrics(metrics), layout=layout, masks=masks, input_baseline=input_baseline)
    summary = run(params_from_click(EvalInputs, values), params_from_click(EvalParams, values),
                  RunOptions(out=out_dir or pred_dir, quiet=quiet))
    result = summary.info
    click.echo(f"{result['count']} images scored ({gt_root}, split {split})")
    click.echo(format_table(result, result["metrics"]))
    click.echo(f"wrote {os.fspath(result['csv'])} and {os.fspath(result['json'])}")
    for key in result["missing"]:
        click.echo(f"  missing prediction: {key}", err=True)
    for rel in result["extra"]:
        click.echo(f"  extra prediction (no ground truth): {rel}", err=True)
    if result["missing"]:
        click.echo(f"{len(result['missing'])} prediction(s) missing", err=True)
        sys.exit(EXIT_PARTIAL)
