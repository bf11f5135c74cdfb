"""``lodetools synthesize``: blurred/sharp pairs from high-frame-rate videos (GoPro/REDS/LODE)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lodetools.commands._options import params_from_click, png_option, run_options, run_options_from


@click.command(name="synthesize")
@click.option("--videos", "-i", multiple=True, type=click.Path(path_type=Path),
              help="A folder of videos (any ffmpeg format) and/or frame folders, a single video "
                   "or a single frame folder. Repeatable.")
@click.option("--fps", type=float, default=None,
              help="Frame rate of the input, recorded in provenance (default: the container's; "
                   "frame folders have none).")
@click.option("--m", "m", type=int, default=None,
              help="Fixed frames per blurred image (odd, >= 3); overrides --frames-min/--frames-max.")
@click.option("--frames-min", type=int, default=7, show_default=True,
              help="Smallest M (odd); M is drawn per window from the odd values in the range (LODE: 7).")
@click.option("--frames-max", type=int, default=13, show_default=True,
              help="Largest M (odd) (LODE: 13).")
@click.option("--windows-per-clip", type=int, default=1, show_default=True,
              help="Non-overlapping windows per clip (LODE: 1); 0 takes as many as fit, back to back "
                   "(GoPro).")
@click.option("--crf", default="gamma:2.2", show_default=True,
              help="Camera response: gamma:G, srgb, linear, or a file holding a 256 x 1|3 inverse CRF "
                   "table (see 'lodetools calibrate crf').")
@click.option("--val-count", type=int, default=None, help="Clips in the val split.")
@click.option("--val-fraction", type=float, default=None, help="Fraction of clips in the val split.")
@click.option("--test-count", type=int, default=None, help="Clips in the test split.")
@click.option("--test-fraction", type=float, default=None, help="Fraction of clips in the test split.")
@click.option("--bit-depth", type=click.Choice(["8", "16"]), default="8", show_default=True,
              help="PNG bit depth of the outputs.")
@click.option("--saturation/--no-saturation", default=False, show_default=True,
              help="Boost clipped pixels by a ~ U(min, max) in linear light before averaging, clip "
                   "after (RSBlur; beyond GoPro/LODE).")
@click.option("--saturation-min", type=float, default=0.25, show_default=True, help="Smallest boost a.")
@click.option("--saturation-max", type=float, default=1.75, show_default=True, help="Largest boost a.")
@click.option("--noise/--no-noise", default=False, show_default=True,
              help="Add Poisson-Gaussian noise to the blurred image in linear light (beyond GoPro/LODE).")
@click.option("--noise-shot", type=float, default=0.002, show_default=True,
              help="Shot-noise scale a: variance a * x.")
@click.option("--noise-read", type=float, default=0.002, show_default=True,
              help="Read-noise standard deviation b.")
@run_options
@png_option
@click.pass_context
def command(ctx, **_):
    """Average M consecutive frames of high-frame-rate videos into blurred images.

    Per clip, non-overlapping windows of M consecutive frames (M odd, drawn per
    window from [--frames-min, --frames-max]); blurred = g(mean(g^-1(frames)))
    with the camera response g of --crf (LODE Eqs. (6)-(7)); sharp = the middle
    frame, bit-exact. Frames are streamed: memory stays bounded by one window.
    Clips shorter than M are skipped and listed. Splits are by video: no clip
    feeds two splits. Output: <out>/<split>/<clip>/{blur,sharp}/<middle frame>.png,
    with manifest provenance (source, frames, M, CRF, seed, saturation, noise).

    \b
    Example:
        lodetools synthesize --videos clips/ --recipe lode --val-fraction 0.25 --out lode-like/
    """
    from lodetools.pipelines.synthesize import SynthesizeParams, run
    from lodetools.recipe import resolve_params
    from lodetools.runner import report

    values, recipe = resolve_params(ctx)
    summary = run(values["videos"], params_from_click(SynthesizeParams, values),
                  run_options_from(values, desc="clips", recipe=recipe))
    for name, why in summary.info["skipped_clips"].items():
        if f"clip {name}" not in summary.failed:  # bad clips are listed as failed
            click.echo(f"  skipped clip {name}: {why}", err=True)
    sys.exit(report(summary, what="clips"))
