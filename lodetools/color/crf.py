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
from typing import Callable, NamedTuple

import numpy as np

from lodetools.errors import BadConfig


# ----------------------------------------------------------------------------- the curves
# Each curve is a pair of functions on float arrays that keep the dtype (float32
# stays float32, float64 stays float64) and write into ``out`` when given
# (``out`` may be ``x`` itself): ``encode`` is g (linear -> display), ``decode``
# is g^-1 (display -> linear). Negative inputs are treated as 0; values above 1
# are not clipped here (:meth:`CRF.to_display` clips).
def _float(x) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def linear_encode(x, out=None) -> np.ndarray:
    """Identity (plain averaging): ``g(x) = x``."""
    return np.positive(_float(x), out=out)


linear_decode = linear_encode


def _power(x, exponent: float, out) -> np.ndarray:
    y = np.maximum(_float(x), 0, out=out)
    return np.power(y, y.dtype.type(exponent), out=y)


def gamma_encode(x, gamma: float = 2.2, out=None) -> np.ndarray:
    """``g(x) = x ** (1 / gamma)`` (GoPro, LODE Eq. (7) with ``gamma = 2.2``).

    Examples
    --------
    >>> gamma_encode(np.array([0.0, 0.218, 1.0]), 2.2).astype(float).round(4).tolist()
    [0.0, 0.5004, 1.0]
    """
    return _power(x, 1.0 / gamma, out)


def gamma_decode(x, gamma: float = 2.2, out=None) -> np.ndarray:
    """``g^-1(y) = y ** gamma``.

    Examples
    --------
    >>> gamma_decode(np.array([0.0, 0.5, 1.0]), 2.2).astype(float).round(4).tolist()
    [0.0, 0.2176, 1.0]
    """
    return _power(x, gamma, out)


def srgb_encode(x, out=None) -> np.ndarray:
    """The sRGB transfer function (IEC 61966-2-1), linear -> display.

    ``12.92 x`` for ``x <= 0.0031308``, else ``1.055 x ** (1 / 2.4) - 0.055``.

    Examples
    --------
    >>> srgb_encode(np.array([0.0, 0.002, 0.2140, 1.0])).astype(float).round(4).tolist()
    [0.0, 0.0258, 0.5, 1.0]
    """
    x = _float(x)
    low = x <= 0.0031308
    lin = np.maximum(x[low], 0) * 12.92  # taken before ``out`` (possibly ``x``) is written
    y = np.maximum(x, 0, out=out)
    np.power(y, y.dtype.type(1 / 2.4), out=y)
    y *= 1.055
    y -= 0.055
    y[low] = lin
    return y


def srgb_decode(x, out=None) -> np.ndarray:
    """The inverse sRGB transfer function (IEC 61966-2-1), display -> linear.

    ``y / 12.92`` for ``y <= 0.04045``, else ``((y + 0.055) / 1.055) ** 2.4``.

    Examples
    --------
    >>> srgb_decode(np.array([0.0, 0.02, 0.5, 1.0])).astype(float).round(4).tolist()
    [0.0, 0.0015, 0.214, 1.0]
    """
    x = _float(x)
    low = x <= 0.04045
    lin = np.maximum(x[low], 0) / 12.92  # taken before ``out`` (possibly ``x``) is written
    y = np.maximum(x, 0, out=out)
    y += 0.055
    y /= 1.055
    np.power(y, y.dtype.type(2.4), out=y)
    y[low] = lin
    return y


def _table_apply(table: np.ndarray, x: np.ndarray, out, *, decode: bool) -> np.ndarray:
    """Piecewise-linear table lookup per channel (the last axis of an ``(H, W, C)`` array)."""
    x = _float(x)
    # node positions k / (n - 1) computed as callers compute code values, so a code hits its entry exactly
    codes = np.arange(table.shape[0], dtype=np.float64) / (table.shape[0] - 1)
    res = np.empty(x.shape, x.dtype) if out is None else out
    for c in range(x.shape[-1] if x.ndim == 3 else 1):
        col = table[:, min(c, table.shape[1] - 1)]
        sel = (..., c) if x.ndim == 3 else ...
        res[sel] = np.interp(x[sel], codes, col) if decode else np.interp(x[sel], col, codes)
    return res


def table_encode(x, table, out=None) -> np.ndarray:
    """``g`` of a tabulated inverse CRF: the piecewise-linear inverse of ``table``.

    Parameters
    ----------
    x : ndarray
        Linear values; ``(H, W, C)`` arrays use column ``c`` of the table for
        channel ``c`` (a one-column table serves every channel), other shapes
        column 0.
    table : ndarray, shape (N, 1 or C)
        Increasing linear value of each of ``N`` equally spaced codes in ``[0, 1]``.
    """
    return _table_apply(np.asarray(table, np.float64), x, out, decode=False)


def table_decode(x, table, out=None) -> np.ndarray:
    """``g^-1`` of a tabulated inverse CRF: linear interpolation of ``table`` (see :func:`table_encode`).

    Examples
    --------
    >>> t = np.array([0.0, 0.1, 0.4, 1.0])  # codes 0, 1/3, 2/3, 1
    >>> table_decode(np.array([1 / 3, 0.5, 1.0]), t[:, None]).astype(float).round(4).tolist()
    [0.1, 0.25, 1.0]
    """
    return _table_apply(np.asarray(table, np.float64), x, out, decode=True)


class CRFFunctions(NamedTuple):
    """A camera response as functions: ``encode`` is g, ``decode`` is g^-1.

    ``params`` names the :class:`CRF` attributes passed to both as keywords.
    """

    encode: Callable
    decode: Callable
    params: tuple = ()


#: CRF name -> its functions, as colour-science's ``CCTF_ENCODINGS`` / ``CCTF_DECODINGS``
CRFS = {
    "linear": CRFFunctions(linear_encode, linear_decode),
    "gamma": CRFFunctions(gamma_encode, gamma_decode, ("gamma",)),
    "srgb": CRFFunctions(srgb_encode, srgb_decode),
    "table": CRFFunctions(table_encode, table_decode, ("table",)),
}


@dataclass(frozen=True)
class CRF:
    """A camera response function.

    Attributes
    ----------
    kind : {'gamma', 'srgb', 'linear', 'table'}
        A key of :data:`CRFS`.
    gamma : float
        Exponent of ``'gamma'``.
    table : ndarray or None
        ``(256, 3)`` float64 inverse CRF (code -> linear in [0, 1]) of ``'table'``;
        increasing per channel.
    name : str
        How the CRF was specified (recorded in provenance).

    Examples
    --------
    >>> crf = CRF("gamma", gamma=2.2)
    >>> crf.to_display(np.array([0.25, 2.0])).astype(float).round(4).tolist()
    [0.5325, 1.0]
    >>> crf.to_linear(np.array([0.5])).astype(float).round(4).tolist()
    [0.2176]
    """

    kind: str
    gamma: float = 2.2
    table: np.ndarray | None = field(default=None, compare=False, repr=False)
    name: str = ""

    def __post_init__(self):
        if self.kind not in CRFS:
            raise BadConfig(f"unknown CRF kind {self.kind!r}: expected one of {', '.join(CRFS)}")

    def _kwargs(self) -> dict:
        return {p: getattr(self, p) for p in CRFS[self.kind].params}

    def encode(self, linear: np.ndarray, out=None) -> np.ndarray:
        """``g`` in the input's float dtype, not clipped above (into ``out`` when given)."""
        return CRFS[self.kind].encode(linear, out=out, **self._kwargs())

    def decode(self, display: np.ndarray, out=None) -> np.ndarray:
        """``g^-1`` in the input's float dtype (into ``out`` when given)."""
        return CRFS[self.kind].decode(display, out=out, **self._kwargs())

    def to_linear(self, display: np.ndarray) -> np.ndarray:
        """``g^-1``: display-referred values in ``[0, 1]`` to linear (a new float32 array)."""
        x = np.array(display, dtype=np.float32)
        return self.decode(x, out=x)

    def to_display(self, linear: np.ndarray) -> np.ndarray:
        """``g``: linear values to display-referred values in ``[0, 1]`` (a new float32 array)."""
        x = np.clip(np.asarray(linear, dtype=np.float32), 0.0, None)
        return np.minimum(self.encode(x, out=x), 1.0, out=x)


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
    if low in CRFS and not CRFS[low].params:  # linear, srgb
        return CRF(low, name=low)
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
