"""Colour calibration files (``<camera>.toml``) and a small TOML writer.

A calibration file holds one camera's location-dependent cast (ReLoBlur
Eqs. (3)-(5)) as written by ``lodetools calibrate color``::

    camera = "cam-b"
    model = "cast g = local / centre (cubic in normalised x, y); corrected = raw / g"
    terms = ["x^3", "x^2 y", ..., "1"]
    pattern = "RGGB"
    width = 2152
    height = 1436
    patches = [16, 12]

    [normalisation]        # xn = (x - cx) / sx, yn = (y - cy) / sy; x = column, y = row
    cx = 1075.5 ...

    [coefficients]         # one polynomial per colour channel, in the order of `terms`
    R = [...]
    G = [...]
    B = [...]

    [quality]              # fit residual (RMS, relative) and (max-min)/max of patch means
    residual = [...]
    nonuniformity_before = [...]
    nonuniformity_after = [...]

    [provenance]
    lightbox = "..."  sha256 = "..."  tool = "lodetools 0.1.0"  created = "..."

:class:`CastFit` is the file's content in memory; it is filled by
:func:`lodetools.color.correction.fit_cast` and applied by
:func:`lodetools.color.correction.correct_bayer`. The synthetic rig's two
cameras are shipped as package data (``lodetools/calibration/sim-blur.toml``,
``sim-sharp.toml``): :func:`find_calibration` takes their names.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lodetools.errors import BadConfig, MissingInput
from lodetools.io.atomic import atomic_write_text
from lodetools.resources import CALIBRATION, find_shipped, shipped_names

MODEL = "cast g = local / centre (cubic in normalised x, y); corrected = raw / g"
#: names of the ten cubic terms, in the order of ReLoBlur Eq. (5) (the order of the coefficients)
TERMS = ("x^3", "x^2 y", "x y^2", "y^3", "x^2", "x y", "y^2", "x", "y", "1")
#: colour channels of the polynomials (both greens of a Bayer quad share G)
CHANNELS = ("R", "G", "B")


@dataclass
class CastFit:
    """A fitted location-dependent cast (the content of a calibration file).

    Attributes
    ----------
    coeffs : ndarray (3, 10)
        Cast polynomial ``g = local / centre`` per channel R, G, B (ReLoBlur
        Eqs. (4)-(5)), in the order of :data:`TERMS`; the correction is ``raw / g``.
    shape : (H, W)
        Image size the calibration was made for.
    pattern : str
    norm : dict
        Coordinate normalisation ``cx, cy, sx, sy`` (``xn = (x - cx) / sx``).
    patches : (cols, rows)
    residual : ndarray (3,)
        RMS relative residual of the fit over the patches, per channel.
    nonuniformity_before, nonuniformity_after : ndarray (3,)
        ``(max - min) / max`` of the lightbox patch means per channel, before
        and after correction.
    """

    coeffs: np.ndarray
    shape: tuple
    pattern: str
    norm: dict
    patches: tuple = (16, 12)
    residual: np.ndarray = field(default_factory=lambda: np.zeros(3))
    nonuniformity_before: np.ndarray = field(default_factory=lambda: np.zeros(3))
    nonuniformity_after: np.ndarray = field(default_factory=lambda: np.zeros(3))


def toml_value(v) -> str:
    """A TOML literal for a bool, number, string or (nested) list."""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple, np.ndarray)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML literal for {type(v).__name__}")


def dump_toml(doc: dict, header: str = "") -> str:
    """TOML text of a dict of plain keys and one level of tables (``"a.b"`` names allowed)."""
    lines = [header] if header else []
    for k, v in doc.items():
        if not isinstance(v, dict):
            lines.append(f"{k} = {toml_value(v)}")
    for name, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"\n[{name}]")
            for k, v in table.items():
                lines.append(f"{k} = {toml_value(v)}")
    return "\n".join(lines) + "\n"


def write_calibration(path, fit: CastFit, *, camera: str, provenance: dict) -> None:
    """Write a calibration TOML atomically."""
    doc = {
        "camera": camera,
        "model": MODEL,
        "terms": list(TERMS),
        "pattern": fit.pattern,
        "width": int(fit.shape[1]),
        "height": int(fit.shape[0]),
        "patches": [int(v) for v in fit.patches],
        "normalisation": {k: float(v) for k, v in fit.norm.items()},
        "coefficients": {ch: [float(v) for v in fit.coeffs[i]] for i, ch in enumerate(CHANNELS)},
        "quality": {"residual": [float(v) for v in fit.residual],
                    "nonuniformity_before": [float(v) for v in fit.nonuniformity_before],
                    "nonuniformity_after": [float(v) for v in fit.nonuniformity_after]},
        "provenance": provenance,
    }
    atomic_write_text(path, dump_toml(doc, "# lodetools colour calibration (ReLoBlur Eqs. (3)-(5))"))


def find_calibration(spec):
    """A calibration file: an existing file, or the name of a shipped one (``sim-blur``).

    Shipped calibrations are package data (``lodetools/calibration/*.toml``),
    found with :mod:`importlib.resources`.

    Returns
    -------
    pathlib.Path or importlib.resources.abc.Traversable
        Has ``read_text``; ``str()`` of it names the file.

    Raises
    ------
    MissingInput
        Neither a file nor a shipped name.
    """
    path = Path(spec)
    if path.is_file():
        return path
    found = None if path.parent != Path(".") else find_shipped(CALIBRATION, str(spec))
    if found is None:
        raise MissingInput("calibration file not found; shipped calibrations: "
                           + ", ".join(shipped_names(CALIBRATION)), path)
    return found


def read_calibration(path) -> CastFit:
    """Read a calibration TOML written by :func:`write_calibration` (a path or a shipped name).

    Raises
    ------
    MissingInput
        No such file (see :func:`find_calibration`).
    BadConfig
        Not valid TOML, or missing/ill-shaped fields.
    """
    path = find_calibration(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        coeffs = np.array([doc["coefficients"][ch] for ch in CHANNELS], np.float64)
        norm = {k: float(doc["normalisation"][k]) for k in ("cx", "cy", "sx", "sy")}
        shape = (int(doc["height"]), int(doc["width"]))
        pattern = str(doc["pattern"]).upper()
        q = doc.get("quality", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadConfig(f"calibration is not valid TOML: {exc}", path) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise BadConfig(f"calibration file lacks or mangles {exc}", path) from None
    if coeffs.shape != (3, len(TERMS)):
        raise BadConfig(f"calibration coefficients must be 3 x {len(TERMS)}", path)
    if list(doc.get("terms", TERMS)) != list(TERMS):
        raise BadConfig("calibration uses another term order", path)
    return CastFit(coeffs=coeffs, shape=shape, pattern=pattern, norm=norm,
                   patches=tuple(doc.get("patches", (16, 12))),
                   residual=np.asarray(q.get("residual", [0, 0, 0])),
                   nonuniformity_before=np.asarray(q.get("nonuniformity_before", [0, 0, 0])),
                   nonuniformity_after=np.asarray(q.get("nonuniformity_after", [0, 0, 0])))
