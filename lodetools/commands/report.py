"""``lodetools report``: a self-contained HTML report of a run folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="HTML file to write [default: RUN_DIR/report.html].")
def command(run_dir, out_file):
    """Write RUN_DIR/report.html: one self-contained page (images embedded).

    It shows what it finds in RUN_DIR: stage timings and accuracy against the
    synthetic truth (demo.json), sample pairs of every dataset with the blur
    mask overlaid, the per-scene alignment table (qa.jsonl) with difference
    images, blurred-area-ratio curves (blur_ratio.csv, LODE Figure 3 style),
    training curves (train_log.csv, val_log.csv) and the metrics table of every
    evaluated network (summary.json) with one test image restored by each.

    Example: lodetools report demo-out
    """
    from lodetools.errors import MissingInput
    from lodetools.io.atomic import atomic_write_text
    from lodetools.report import build_report

    if not run_dir.is_dir():
        raise MissingInput("run folder not found", run_dir)
    out_file = out_file or run_dir / "report.html"
    atomic_write_text(out_file, build_report(run_dir))
    click.echo(f"wrote {out_file}")
