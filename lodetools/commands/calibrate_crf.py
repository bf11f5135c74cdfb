"""``lodetools calibrate crf``: an inverse camera response table from an exposure bracket."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import click


def _parse_time(text: str, where) -> float:
    from lodetools.errors import BadConfig

    try:
        v = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise BadConfig(f"bad exposure time {text!r} (expected e.g. 0.01 or 1/60)", where) from None
    if v <= 0:
        raise BadConfig(f"exposure time {text!r} must be positive", where)
    return v


def _exif_time(path: Path):
    try:
        from PIL import Image

        with Image.open(path) as im:
            v = im.getexif().get_ifd(0x8769).get(33434)  # Exif IFD, ExposureTime
        return float(v) if v else None
    except Exception:
        return None


def exposure_times(files, times: str | None, folder: Path) -> list[float]:
    """Exposure time per image: ``--times``, else ``times.txt``, else EXIF ExposureTime.

    Raises
    ------
    BadConfig, MissingInput
    """
    from lodetools.errors import BadConfig, MissingInput

    if times:
        vals = [_parse_time(t, "--times") for t in times.split(",") if t.strip()]
        if len(vals) != len(files):
            raise BadConfig(f"--times has {len(vals)} values for {len(files)} images", folder)
        return vals
    tfile = folder / "times.txt"
    if tfile.is_file():
        table = {}
        for ln in tfile.read_text(encoding="utf-8").splitlines():
            ln = ln.split("#", 1)[0].strip()
            if not ln:
                continue
            parts = ln.split()
            if len(parts) != 2:
                raise BadConfig(f"bad line {ln!r}: expected '<file name> <exposure time>'", tfile)
            table[parts[0]] = _parse_time(parts[1], tfile)
        missing = [f.name for f in files if f.name not in table]
        if missing:
            raise BadConfig(f"no exposure time for {', '.join(missing[:3])}", tfile)
        return [table[f.name] for f in files]
    vals = [_exif_time(f) for f in files]
    if any(v is None for v in vals):
        raise MissingInput("no exposure times: give --times, a times.txt ('<file> <seconds>' lines) "
                           "or images with EXIF ExposureTime", folder)
    return vals


@click.command(name="crf")
@click.option("--images", "-i", required=True, type=click.Path(path_type=Path),
              help="Folder of 8-bit images of one static scene at different exposures (tripod).")
@click.option("--times", default=None,
              help="Exposure times in the images' natural file order, comma-separated (1/60,1/30,...). "
                   "Default: <images>/times.txt ('<file> <seconds>' per line), else EXIF ExposureTime.")
@click.option("--method", type=click.Choice(["robertson", "debevec"]), default="robertson",
              show_default=True, help="OpenCV calibration (REDS used Robertson).")
@click.option("--extrapolate-from", type=int, default=250, show_default=True,
              help="Codes above this are extrapolated linearly from the slope here (REDS: 250); "
                   "-1 keeps OpenCV's values.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Table to write (.txt or .csv: 256 rows x 3 channels; .npy), for --crf of synthesize.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw the curves (PNG), with gamma 2.2 for comparison.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
def command(images, times, method, extrapolate_from, out, plot, overwrite):
    """Estimate an inverse camera response (CRF) table from an exposure bracket.

    OpenCV's Robertson (or Debevec) calibration on images of one static scene
    taken at several exposure times, with REDS' linear extrapolation of the top
    codes; the table (linear value per 8-bit code and channel, 0 to 1) is what
    `lodetools synthesize --crf FILE` and `lbs` read.

    \b
    Example:
        lodetools calibrate crf --images bracket/ --times 1/250,1/125,1/60,1/30 --out crf.txt
    """
    import numpy as np

    from lodetools.color.crf import calibrate_inverse_crf, save_table
    from lodetools.errors import BadInput, OutputConflict
    from lodetools.io.images import list_images, read_image_native

    if out.exists() and not overwrite:
        raise OutputConflict("output exists; use --overwrite", out)
    files = list_images(images)
    if len(files) < 2:
        raise BadInput(f"need at least two exposures, found {len(files)} images", images)
    tvals = exposure_times(files, times, Path(images))
    imgs = []
    for f in files:
        im = read_image_native(f)
        if im.dtype != np.uint8 or im.ndim != 3:
            raise BadInput("calibration needs 8-bit RGB images", f)
        if imgs and im.shape != imgs[0].shape:
            raise BadInput(f"size {im.shape[1]}x{im.shape[0]} differs from the first image's "
                           f"{imgs[0].shape[1]}x{imgs[0].shape[0]}", f)
        imgs.append(im)
    table = calibrate_inverse_crf(imgs, tvals, method=method,
                                  extrapolate_from=None if extrapolate_from < 0 else extrapolate_from)
    header = (f"inverse CRF (linear value per 8-bit code; columns R G B), lodetools calibrate crf, "
              f"method {method}, top extrapolated from {extrapolate_from}, "
              f"{len(files)} exposures {', '.join(f'{t:g}' for t in tvals)}")
    if out.suffix.lower() == ".npy":
        import io

        from lodetools.io.atomic import atomic_write_bytes

        buf = io.BytesIO()
        np.save(buf, table)
        atomic_write_bytes(out, buf.getvalue())
    else:
        save_table(out, table, header=header) if out.suffix.lower() != ".csv" else \
            _save_csv(out, table, header)
    if plot:
        _plot(plot, table, method)
    click.echo(f"wrote {out} (256 x 3 inverse CRF, {method}, {len(files)} exposures)", err=True)


def _save_csv(path, table, header):
    from lodetools.io.atomic import atomic_write_text

    rows = "\n".join(",".join(f"{v:.10g}" for v in r) for r in table)
    atomic_write_text(path, rows + "\n")


def _plot(path, table, method):
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from lodetools.io.atomic import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    codes = np.arange(256)
    for c, col in enumerate("rgb"):
        ax.plot(codes, table[:, c], color=col, label=f"{'RGB'[c]} ({method})")
    ax.plot(codes, (codes / 255.0) ** 2.2, "k--", lw=1, label="gamma 2.2")
    ax.set_xlabel("8-bit code")
    ax.set_ylabel("linear value (inverse CRF)")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
