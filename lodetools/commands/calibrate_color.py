"""``lodetools calibrate color``: a camera's location-dependent colour cast from a lightbox RAW."""

from __future__ import annotations

from pathlib import Path

import click


def _patches(ctx, param, value):
    try:
        cols, rows = (int(v) for v in str(value).lower().split("x"))
        if cols < 2 or rows < 2:
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected COLSxROWS, e.g. 16x12") from None
    return cols, rows


@click.command("color", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--lightbox", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="RAW frame of a uniform lightbox taken by this camera (DNG/CR2/NEF/... or a "
                   "Bayer TIFF/NPY next to a rig.toml).")
@click.option("--camera", required=True, help="Camera name written into the calibration file.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Calibration TOML to write, e.g. calibration/cam-b.toml.")
@click.option("--patches", default="16x12", show_default=True, callback=_patches,
              help="Patch grid COLSxROWS the lightbox is split into (the paper's K patches).")
@click.option("--overwrite", is_flag=True, help="Replace an existing calibration file.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors (no summary line).")
def command(lightbox, camera, out, patches, overwrite, quiet):
    """Calibrate a camera's colour cast (ReLoBlur Eqs. (3)-(5)) from a lightbox RAW.

    The lightbox frame is split into COLSxROWS patches; per colour channel
    each patch's mean is divided by the central patch's mean, and the ten
    coefficients of a cubic polynomial in normalised pixel coordinates are
    fitted by least squares. The file records the coefficients per channel,
    the coordinate normalisation, the image size, the CFA pattern, the fit
    residual and the lightbox non-uniformity ((max-min)/max of the patch
    means) before and after correction. `lodetools develop` then divides
    each RAW pixel by the polynomial of its channel (corrected = raw x
    centre / local; the paper's Eq. (3) wording is inverted, see
    docs/commands/develop.md).

    \b
    Example:
      lodetools calibrate color --lightbox rig/lightbox_blur.dng \\
          --camera cam-b --out calibration/cam-b.toml
    """
    from lodetools.commands._options import params_from_click
    from lodetools.pipelines.calibrate_color import CalibrateColorParams, run
    from lodetools.runner import RunOptions

    summary = run(lightbox, params_from_click(CalibrateColorParams, dict(camera=camera, patches=patches)),
                  RunOptions(out=out, overwrite=overwrite, quiet=quiet))
    if quiet:
        return
    fit = summary.info["fit"]
    pct = lambda v: "/".join(f"{100 * x:.2f}" for x in v)  # noqa: E731
    click.echo(f"{camera}: {fit.shape[1]}x{fit.shape[0]} {fit.pattern}, {patches[0]}x{patches[1]} patches; "
               f"non-uniformity R/G/B {pct(fit.nonuniformity_before)} % -> {pct(fit.nonuniformity_after)} %; "
               f"fit residual {pct(fit.residual)} %; wrote {out}")
