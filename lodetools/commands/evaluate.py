"""``lodetools eval``: PSNR, SSIM, weighted and aligned metrics of predictions."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lodetools.errors import EXIT_PARTIAL


@click.command("eval")
@click.option("--pred", "pred_dir", required=True, type=click.Path(path_type=Path),
              help="Folder of predicted (deblurred) images, named by pair id (see below).")
@click.option("--gt", "gt_root", required=True, type=click.Path(path_type=Path),
              help="Paired dataset holding the ground truth (sharp/) and masks (mask/).")
@click.option("--split", default="test", show_default=True,
              help="Split to evaluate; 'all' for every split.")
@click.option("--metrics", default="psnr,ssim,psnrw,ssimw", show_default=True,
              help="Comma-separated: psnr, ssim, psnrw, ssimw (need masks), psnra, ssima (aligned; slow).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where metrics.csv and summary.json go [default: the --pred folder].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def command(pred_dir, gt_root, split, metrics, out_dir, quiet):
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

    Example: lodetools eval --pred runs/lbag/deblurred --gt demo-out/reloblur --split test
    """
    import os

    from lodetools.commands._options import params_from_click
    from lodetools.pipelines.evaluate import EvalInputs, EvalParams, format_table, parse_metrics, run
    from lodetools.runner import RunOptions

    values = dict(pred=pred_dir, gt=gt_root, split=None if split == "all" else split,
                  metrics=parse_metrics(metrics))
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
