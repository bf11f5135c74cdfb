"""``lodetools align``: develop RAW pairs and align each blur image to its sharp partner with optical flow."""

from __future__ import annotations

import sys

import click

from lodetools.commands._options import png_option, run_options
from lodetools.flow import METHODS as FLOW_METHODS

#: options shared with ``lodetools develop`` (align develops every scene first)
DEVELOP_OPTIONS = ("raw_pairs", "calib_blur", "calib_sharp", "split", "beta_region", "white_balance",
                   "gamma", "bit_depth", "no_color_matrix", "no_refining_step", "no_color_correction",
                   "qa_sigma")


@click.command("align", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--flow", type=click.Choice(FLOW_METHODS), default="c2f", show_default=True,
              help="Optical flow: c2f = our implementation of Ce Liu's coarse-to-fine method "
                   "(what ReLoBlur's pyflow runs); pyflow = the original module if you built it; "
                   "dis/deepflow/tvl1 = OpenCV.")
@click.option("--flow-alpha", type=click.FloatRange(min=0, min_open=True), default=0.012, show_default=True,
              help="c2f smoothness weight (pyflow's default).")
@click.option("--device", type=str, default=None,
              help="torch device of c2f (cpu, cuda, cuda:1); default: CUDA when available, else the "
                   "compiled CPU engine (numpy below 30,000 pixels).")
@click.option("--no-densify", is_flag=True,
              help="Keep the raw flow: skip the edge-preserving re-interpolation of unreliable vectors.")
@click.option("--residual-threshold", type=click.FloatRange(min=0), default=0.1, show_default=True,
              help="A flow vector is unreliable where the warped reference blur differs from the "
                   "reference sharp by more than this (smoothed luminance, 0-1 scale).")
@run_options
@png_option
@click.pass_context
def command(ctx, **params):
    """Develop RAW pairs and align them geometrically (ReLoBlur post-processing, part 2).

    Per scene: develop every pair (as `lodetools develop`), estimate the
    optical flow between the two cameras ONCE on the static reference pair
    (blur(x + flow(x)) ~ sharp(x)), replace unreliable vectors by an
    edge-preserving interpolation, then warp every blur image of the
    scene (bicubic) and its optional <scene>/<id>_mask.png onto the sharp
    camera's grid. Writes <out>/<split>/<scene>/{blur,sharp,mask}/<id>.png,
    the reference pair (id `reference`, "static": true) included, the flow
    as <split>/<scene>/flow.npy, and per-scene QA in the reference record and
    <out>/qa.jsonl: static-pair PSNR/SSIM and Delta-L before/after alignment,
    flow magnitude statistics. A scene without a reference pair is an error
    naming it (--on-error skip goes on with the others).

    Example:

        lodetools align --raw-pairs rig --out aligned --recipe reloblur --calib-blur cal/blur.toml --calib-sharp cal/sharp.toml
    """
    from lodetools.commands.develop import develop_values
    from lodetools.pipelines.align import AlignParams, run
    from lodetools.runner import report

    inputs, params, opts = develop_values(ctx, "align", AlignParams)
    code = report(run(inputs, params, opts), what="scenes")
    if code:
        sys.exit(code)


def _share_develop_options(cmd: click.Command) -> None:
    """Give ``align`` the develop command's own options (one definition, same help and defaults)."""
    from lodetools.commands.develop import command as develop

    shared = [p for p in develop.params if p.name in DEVELOP_OPTIONS]
    cmd.params[0:0] = shared


_share_develop_options(command)
