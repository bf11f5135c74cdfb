"""Camera response functions (CRF): display-referred <-> linear.

A CRF ``g`` maps linear irradiance to display values; blurred images are
synthesised as ``g(mean(g^-1(frames)))`` (LODE Eqs. (6)-(7)). Supported:

- ``gamma:G``  ``g(x) = x**(1/G)`` (GoPro/LODE use G = 2.2)
- ``srgb``     the IEC 61966-2-1 transfer function
- ``linear``   identity (plain averaging)
- a table      ``(256, 3)`` inverse CRF: linear value per 8-bit code and channel
  (REDS style), made with :func:`table_crf`

References
----------
.. [1] Nah et al., "Deep Multi-Scale CNN for Dynamic Scene Deblurring", CVPR 2017.
.. [2] LODE: Li et al., "Real-World Deep Local Motion Deblurring", AAAI 2023, Eqs. (6)-(7).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lodetools.errors import BadConfig


@dataclass(frozen=True)
class CRF:
    """A camera response function.

    Attributes
    ----------
    kind : {'gamma', 'srgb', 'linear', 'table'}
    gamma : float
        Exponent for ``kind == 'gamma'``.
    table : ndarray or None
        ``(256, 3)`` float64 inverse CRF (code -> linear in [0, 1]) for ``'table'``;
        increasing per channel.
    name : str
        How the CRF was specified (recorded in provenance).
    """

    kind: str
    gamma: float = 2.2
    table: np.ndarray | None = field(default=None, compare=False, repr=False)
    name: str = ""

    def to_linear(self, display: np.ndarray) -> np.ndarray:
        """``g^-1``: display-referred values in ``[0, 1]`` to linear (float32)."""
        x = np.asarray(display, dtype=np.float32)
        if self.kind == "linear":
            return x.copy()
        if self.kind == "gamma":
            return np.power(np.clip(x, 0, None), np.float32(self.gamma))
        if self.kind == "srgb":
            return np.where(x <= 0.04045, x / 12.92,
                            np.power((np.clip(x, 0, None) + 0.055) / 1.055, 2.4)).astype(np.float32)
        return _table_apply(self.table, x, inverse=True)

    def to_display(self, linear: np.ndarray) -> np.ndarray:
        """``g``: linear values to display-referred values in ``[0, 1]`` (float32)."""
        x = np.clip(np.asarray(linear, dtype=np.float32), 0.0, None)
        if self.kind == "linear":
            return np.minimum(x, 1.0)
        if self.kind == "gamma":
            return np.minimum(np.power(x, np.float32(1.0 / self.gamma)), 1.0)
        if self.kind == "srgb":
            return np.minimum(np.where(x <= 0.0031308, 12.92 * x,
                                       1.055 * np.power(x, 1 / 2.4) - 0.055), 1.0).astype(np.float32)
        return _table_apply(self.table, x, inverse=False)


def _table_apply(table: np.ndarray, x: np.ndarray, *, inverse: bool) -> np.ndarray:
    codes = np.linspace(0.0, 1.0, table.shape[0])
    out = np.empty(x.shape, dtype=np.float32)
    chans = x.shape[-1] if x.ndim == 3 else 1
    for c in range(chans):
        col = table[:, min(c, table.shape[1] - 1)]
        xc = x[..., c] if x.ndim == 3 else x
        res = np.interp(xc, codes, col) if inverse else np.interp(xc, col, codes)
        if x.ndim == 3:
            out[..., c] = res
        else:
            out[...] = res
    return out


def table_crf(table, name: str = "table") -> CRF:
    """A CRF from a ``(256, C)`` inverse-CRF table (code -> linear).

    Raises
    ------
    BadConfig
        If the table has the wrong shape or is not increasing.
    """
    t = np.asarray(table, dtype=np.float64)
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2 or t.shape[0] != 256 or t.shape[1] not in (1, 3):
        raise BadConfig(f"inverse CRF table must be 256 x 1 or 256 x 3, got {t.shape}", name)
    if not np.all(np.diff(t, axis=0) > 0):
        raise BadConfig("inverse CRF table must be strictly increasing", name)
    t = (t - t[0]) / (t[-1] - t[0])
    return CRF("table", table=t, name=name)


def parse_crf(spec: str) -> CRF:
    """Parse a ``--crf`` value: ``gamma:2.2``, ``srgb``, ``linear`` or a table file.

    A table file is text (``.txt``/``.csv``: 256 rows of 1 or 3 numbers) or
    ``.npy`` holding the inverse CRF (code -> linear).
    """
    s = str(spec).strip()
    low = s.lower()
    if low == "linear":
        return CRF("linear", name="linear")
    if low == "srgb":
        return CRF("srgb", name="srgb")
    if low.startswith("gamma"):
        try:
            g = float(low.split(":", 1)[1]) if ":" in low else 2.2
        except ValueError:
            raise BadConfig(f"bad CRF {spec!r}: expected gamma:<number>") from None
        if not g > 0:
            raise BadConfig(f"bad CRF {spec!r}: gamma must be positive")
        return CRF("gamma", gamma=g, name=f"gamma:{g:g}")
    from pathlib import Path

    p = Path(s)
    if not p.is_file():
        raise BadConfig("CRF must be gamma:<G>, srgb, linear or an existing table file", s)
    try:
        table = np.load(p) if p.suffix == ".npy" else np.loadtxt(p, delimiter="," if p.suffix == ".csv" else None)
    except Exception as exc:
        raise BadConfig(f"cannot read inverse CRF table: {exc}", p) from None
    return table_crf(table, name=str(p))
