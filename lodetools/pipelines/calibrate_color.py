"""The ``calibrate color`` pipeline: a camera's location-dependent colour cast from a lightbox RAW.

ReLoBlur Eqs. (3)-(5): the lightbox frame is split into patches; per colour
channel each patch's mean is divided by the central patch's mean and a cubic
polynomial in normalised pixel coordinates is fitted by least squares
(:func:`lodetools.color.correction.fit_cast`). The calibration file
(:func:`lodetools.io.calibration.write_calibration`) is what ``develop`` and
``align`` read.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

from lodetools import __version__
from lodetools.errors import BadConfig, OutputConflict
from lodetools.runner import RunOptions, RunSummary


@dataclass(frozen=True)
class CalibrateColorParams:
    """What ``calibrate color`` computes.

    Attributes
    ----------
    camera : str
        Camera name written into the calibration file.
    patches : tuple of int
        Patch grid ``(cols, rows)`` the lightbox is split into (the paper's K
        patches; ReLoBlur Eq. (4)), at least 2 x 2.
    """

    camera: str
    patches: tuple[int, int] = (16, 12)


def run(lightbox, params: CalibrateColorParams, opts: RunOptions) -> RunSummary:
    """Fit the cast of the camera that took ``lightbox``; write the calibration TOML ``opts.out``.

    Returns
    -------
    RunSummary
        ``info['fit']``: the :class:`~lodetools.io.calibration.CastFit`
        (coefficients, residual, non-uniformity before/after).

    Raises
    ------
    OutputConflict
        The file exists (without ``opts.overwrite``).
    BadConfig
        The file name does not end in ``.toml``, or a bad patch grid.
    """
    from lodetools.color.correction import fit_cast
    from lodetools.io.calibration import write_calibration
    from lodetools.io.manifest import sha256_file
    from lodetools.io.raw import read_raw

    out = Path(opts.out)
    if out.exists() and not opts.overwrite:
        raise OutputConflict("calibration file exists; use --overwrite", out)
    if out.suffix.lower() != ".toml":
        raise BadConfig("the calibration file must end in .toml", out)
    cols, rows = params.patches
    if cols < 2 or rows < 2:
        raise BadConfig(f"bad patch grid {cols}x{rows}: at least 2x2")
    frame = read_raw(lightbox)
    fit = fit_cast(frame.bayer, frame.pattern, (cols, rows))
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_calibration(out, fit, camera=params.camera, provenance={
        "lightbox": str(lightbox), "sha256": sha256_file(lightbox),
        "tool": f"lodetools {__version__}", "command": "calibrate color", "created": now})
    return RunSummary(done=[params.camera], out=out, info={"fit": fit})
