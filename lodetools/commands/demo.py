"""``lodetools demo``: the whole toolkit on the built-in synthetic world."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created).")
@click.option("--quick", is_flag=True,
              help="Tiny world and a few training iterations (about 2 minutes; what CI runs).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the world and every stage.")
def command(out, quick, seed):
    """Run every step of the toolkit on a synthetic capture world it makes itself.

    Stages: `sim all` (high-fps clips, a beam-splitter RAW rig in DNG, a mini
    PASCAL VOC, all with ground truth), `synthesize` and `stats blur-ratio`
    (LODE), `calibrate color`, `align` and `masks` (ReLoBlur), `lbs`
    (BladeNet's local blur synthesis), then a short CPU training run of LBAG,
    BladeNet, SimpleNet and ASPDC, `deblur` and `eval` of each, and `report`.
    Each stage's result is checked against the world's truth (e.g. mask IoU,
    alignment PSNR, averaging error) and its time recorded in OUT/demo.json.
    Open OUT/report.html afterwards.

    About 7 minutes on 2 CPU cores by default; --quick under a minute.

    Example: lodetools demo --out demo-out
    """
    from lodetools.pipelines.demo import DemoParams, run
    from lodetools.runner import RunOptions

    doc = run(None, DemoParams(preset="quick" if quick else "default"), RunOptions(out=out, seed=seed)).info
    failed = [b["name"] for b in doc.get("bounds", []) if not b["met"]]
    if failed:
        click.echo("figures outside their bounds: " + ", ".join(failed), err=True)
    click.echo(f"open {out / 'report.html'}")
