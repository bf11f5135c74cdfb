"""``lodetools develop``: RAW blur/sharp pairs -> colour-corrected, photometrically aligned RGB pairs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lodetools.commands._options import params_from_click, png_option, run_options, run_options_from


@click.command("develop", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--raw-pairs", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Capture folder: <scene>/reference_*, whiteboard_*, <id>_blur/<id>_sharp RAW files "
                   "(+ optional rig.toml).")
@click.option("--calib-blur", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Calibration TOML of the blur camera (lodetools calibrate color), or a shipped "
                   "calibration's name (sim-blur, sim-sharp: the cameras of the demo rig, seed 0, 320x240); default: "
                   "[cameras.blur] calibration in rig.toml.")
@click.option("--calib-sharp", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Calibration TOML of the sharp camera, or a shipped calibration's name; default: "
                   "[cameras.sharp] calibration in rig.toml.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True,
              help="Split the pairs are written under.")
@click.option("--beta-region", type=click.Choice(["static", "full"]), default="static", show_default=True,
              help="Means of the brightness coefficient beta (ReLoBlur Eq. (6)): over the static "
                   "background (registered, moving objects left out; more accurate) or the whole "
                   "image (the paper).")
@click.option("--white-balance", type=click.Choice(["auto", "whiteboard", "metadata", "grayworld", "none"]),
              default="auto", show_default=True,
              help="auto = the scene's whiteboard pair, else camera metadata, else gray world.")
@click.option("--gamma", type=click.Choice(["srgb", "2.2", "linear"]), default="srgb", show_default=True,
              help="Output transfer curve.")
@click.option("--bit-depth", type=click.Choice(["8", "16"]), default="8", show_default=True,
              help="PNG bit depth of the developed images.")
@click.option("--no-color-matrix", is_flag=True,
              help="Skip the camera -> sRGB matrix (metadata or rig.toml camera_to_srgb).")
@click.option("--no-refining-step", is_flag=True, help="Menon demosaicing without its refining step (faster).")
@click.option("--no-color-correction", is_flag=True,
              help="Develop without calibration files (a rig with no lightbox capture): each camera's "
                   "colour cast stays in the images; dataset.json and every record's provenance say so.")
@click.option("--qa-sigma", type=click.FloatRange(min=0), default=1.5, show_default=True,
              help="Gaussian sigma (px) of the smoothed Delta-L of the QA record.")
@run_options
@png_option
@click.pass_context
def command(ctx, **params):
    """Develop RAW blur/sharp pairs into a paired RGB dataset (ReLoBlur post-processing, part 1).

    Per scene: colour correction of each camera's cast (ReLoBlur Eqs. (3)-(5),
    calibration from `lodetools calibrate color`), photometric alignment of
    the blur to the sharp image (beta, Eqs. (6)-(7)), then the ISP: Menon
    demosaicing, white balance, camera -> sRGB matrix, gamma. Every pair,
    including the static reference pair (id `reference`, "static": true in
    the manifest), is written to <out>/<split>/<scene>/{blur,sharp}/<id>.png.
    The reference pair's record carries the QA: Delta-L (appendix Eq. (1))
    before and after correction, also collected in <out>/qa.jsonl.
    Geometric alignment is `lodetools align`. A rig without a lightbox
    capture (no calibration files) develops with --no-color-correction.

    \b
    Example:
      lodetools develop --raw-pairs rig --out developed \\
          --calib-blur calibration/cam-b.toml --calib-sharp calibration/cam-s.toml
      lodetools develop --raw-pairs rig --out developed --no-color-correction
    """
    from lodetools.pipelines.develop import DevelopParams, run
    from lodetools.runner import report

    inputs, params, opts = develop_values(ctx, "develop", DevelopParams)
    code = report(run(inputs, params, opts), what="scenes")
    if code:
        sys.exit(code)


#: flags ``--no-X`` of develop and align that set the parameter ``X`` to false
NEGATIVE_FLAGS = ("no_color_matrix", "no_refining_step", "no_densify", "no_color_correction")


def develop_values(ctx: click.Context, section: str, params_cls):
    """Inputs, typed parameters and run options of ``develop`` or ``align`` (recipe, then flags).

    The negative flags map onto the parameters' positive fields
    (``--no-color-matrix`` -> ``color_matrix=False``).
    """
    from lodetools.pipelines.develop import RawInputs
    from lodetools.recipe import resolve_params

    values, recipe = resolve_params(ctx, section)
    params = params_from_click(params_cls, values,
                               **{f[3:]: not values[f] for f in NEGATIVE_FLAGS if f in values})
    opts = run_options_from(values, desc=section, recipe=recipe, device=values.get("device"))
    return params_from_click(RawInputs, values), params, opts
