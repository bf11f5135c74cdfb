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


# ----------------------------------------------------------------------------- calibration
def extrapolate_top(table, start: int = 250) -> np.ndarray:
    """Replace codes above ``start`` by a line with the slope at ``start`` (REDS).

    The top codes of a calibrated response are poorly constrained (clipped
    pixels pile up there); REDS extrapolates ``t[k] = t[start] + (k - start)
    * (t[start] - t[start - 1])`` for ``k > start`` (reference notes: codes
    >= 251 from the slope at 250).

    Parameters
    ----------
    table : array_like, shape (256, C)
    start : int

    Returns
    -------
    ndarray of float64, shape (256, C)
    """
    t = np.array(table, dtype=np.float64, copy=True)
    if t.ndim == 1:
        t = t[:, None]
    if not 1 <= start < t.shape[0] - 1:
        return t
    k = np.arange(start + 1, t.shape[0], dtype=np.float64)[:, None]
    t[start + 1:] = t[start] + (k - start) * (t[start] - t[start - 1])
    return t


def _make_increasing(t: np.ndarray) -> np.ndarray:
    """Fill non-finite entries and force a strictly increasing table (per channel)."""
    t = t.copy()
    n = t.shape[0]
    idx = np.arange(n)
    for c in range(t.shape[1]):
        col = t[:, c]
        ok = np.isfinite(col)
        if ok.sum() < 2:
            raise ValueError("calibration gave fewer than two finite response values")
        good = idx[ok]
        col[~ok] = np.interp(idx[~ok], good, col[ok])  # inside: linear interpolation
        lo, hi = good[0], good[-1]
        if lo > 0:  # leading gap (OpenCV leaves code 0 undefined): extend the first slope, >= 0
            col[:lo] = np.maximum(col[lo] - (lo - idx[:lo]) * (col[good[1]] - col[lo]) / (good[1] - lo), 0.0)
        if hi < n - 1:  # trailing gap: extend the last slope
            col[hi + 1:] = col[hi] + (idx[hi + 1:] - hi) * (col[hi] - col[good[-2]]) / (hi - good[-2])
        eps = 1e-9 * max(abs(col).max(), 1e-12)
        t[:, c] = np.maximum.accumulate(col + eps * idx)
        t[:, c] += eps * idx  # strictly increasing
    return t


def calibrate_inverse_crf(images, exposure_times, *, method: str = "robertson",
                          extrapolate_from: int | None = 250) -> np.ndarray:
    """Estimate a camera's inverse CRF from an exposure bracket (OpenCV).

    Uses ``cv2.createCalibrateRobertson`` (Robertson et al. 2003, the
    calibration REDS used) or ``cv2.createCalibrateDebevec`` (Debevec & Malik
    1997), then REDS' top-end linear extrapolation (:func:`extrapolate_top`),
    and normalises each channel to ``[0, 1]`` so that :func:`table_crf` reads
    it unchanged.

    Parameters
    ----------
    images : sequence of ndarray
        8-bit ``(H, W, 3)`` images of one static scene, same size, different
        exposures.
    exposure_times : sequence of float
        Exposure time of each image (seconds; only ratios matter).
    method : {'robertson', 'debevec'}
    extrapolate_from : int or None
        Code above which the table is extrapolated (REDS: 250); ``None`` keeps
        OpenCV's values.

    Returns
    -------
    ndarray of float64, shape (256, 3)
        Inverse CRF: the linear value of each 8-bit code, per channel,
        strictly increasing from 0 to 1.

    Raises
    ------
    BadConfig
        Fewer than two images, times not positive or not distinct, a wrong
        method.
    BadInput
        Images not 8-bit RGB of one size.

    References
    ----------
    .. [1] Robertson, Borman, Stevenson, "Estimation-theoretic approach to
       dynamic range enhancement using multiple exposures", JEI 2003.
    .. [2] Debevec, Malik, "Recovering high dynamic range radiance maps from
       photographs", SIGGRAPH 1997.
    .. [3] Nah et al., "NTIRE 2019 challenge on video deblurring and
       super-resolution: dataset and study" (REDS), CVPRW 2019.
    """
    import cv2

    from lodetools.errors import BadInput

    imgs = [np.ascontiguousarray(np.asarray(i)) for i in images]
    times = np.asarray(exposure_times, dtype=np.float32).ravel()
    if len(imgs) < 2:
        raise BadConfig(f"need at least two exposures, got {len(imgs)}")
    if times.size != len(imgs):
        raise BadConfig(f"{times.size} exposure times for {len(imgs)} images")
    if not np.all(times > 0) or len(set(times.tolist())) < 2:
        raise BadConfig("exposure times must be positive and not all equal")
    for i, im in enumerate(imgs):
        if im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 3:
            raise BadInput(f"exposure {i} is not an 8-bit RGB image ({im.dtype}, shape {im.shape})")
        if im.shape != imgs[0].shape:
            raise BadInput(f"exposure {i} is {im.shape[1]}x{im.shape[0]}, exposure 0 is "
                           f"{imgs[0].shape[1]}x{imgs[0].shape[0]}")
    if method == "robertson":
        cal = cv2.createCalibrateRobertson()
    elif method == "debevec":
        cal = cv2.createCalibrateDebevec()
    else:
        raise BadConfig(f"unknown calibration method {method!r}: expected robertson or debevec")
    resp = cal.process(imgs, times).reshape(256, -1).astype(np.float64)
    t = _make_increasing(resp)
    if extrapolate_from is not None:
        t = _make_increasing(extrapolate_top(t, int(extrapolate_from)))
    t = (t - t[0]) / (t[-1] - t[0])
    return t


def save_table(path, table, *, header: str = "") -> None:
    """Write an inverse-CRF table as text (256 rows; ``#`` header lines), atomically.

    :func:`parse_crf` reads it back.
    """
    import io

    from lodetools.io.atomic import atomic_write_text

    buf = io.StringIO()
    np.savetxt(buf, np.asarray(table, dtype=np.float64), fmt="%.10g", header=header)
    atomic_write_text(path, buf.getvalue())
