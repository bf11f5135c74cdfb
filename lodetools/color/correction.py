"""Location-dependent colour-cast correction on Bayer RAW (ReLoBlur Eqs. (3)-(5)).

A beam-splitter rig gives each camera a colour cast that depends on the pixel
location. ReLoBlur models the per-channel correction coefficient as a cubic
polynomial of the pixel coordinates (Eqs. (4)-(5)), with the ten terms::

    x^3, x^2 y, x y^2, y^3, x^2, x y, y^2, x, y, 1

(the order of Eq. (5)), calibrated from a RAW frame of a uniform lightbox.

Direction of the correction (Eq. (3) taken literally would double the cast,
see docs/commands/develop.md, "Direction of the correction"). During
calibration the paper sets ``alpha_k = P'_k / P_k`` with
``P'`` the patch mean and ``P`` the central patch mean, i.e. alpha is the
*cast* ``local / centre``; applying Eq. (3) ``P' = alpha * P`` with that alpha
would double the cast instead of removing it. Here the polynomial fitted by
:func:`fit_cast` is the cast ``g(x, y) = local / centre`` exactly as the paper
calibrates it, and the correction applied by :func:`correct_bayer` is the
one that flattens the lightbox: ``corrected = raw * centre / local = raw /
g(x, y)``, i.e. the correction coefficient of Eq. (3) is ``alpha = 1 / g``.

Coordinates are normalised to ``[-1, 1]``: ``xn = (x - cx) / sx`` with
``cx = (W - 1) / 2``, ``sx = (W - 1) / 2`` (and the same for y), where x is
the column and y the row of the full-resolution Bayer image.

References
----------
.. [1] H. Li et al., "Real-World Deep Local Motion Deblurring", AAAI 2023,
   section "Paired Image Post-processing", Eqs. (3)-(5).
"""

from __future__ import annotations

import threading

import numpy as np

from lodetools.errors import BadConfig, BadInput
from lodetools.io.bayer import channel_map, pattern_indices
# the calibration record and its term order are the file format's (io); the fit fills them
from lodetools.io.calibration import CHANNELS, TERMS, CastFit  # noqa: F401


def normalisation(shape: tuple[int, int]) -> dict:
    """The coordinate normalisation for an image of ``shape = (H, W)``.

    Returns
    -------
    dict
        ``cx, cy, sx, sy``: ``xn = (x - cx) / sx``, ``yn = (y - cy) / sy``.
    """
    h, w = shape
    return {"cx": (w - 1) / 2.0, "cy": (h - 1) / 2.0,
            "sx": max((w - 1) / 2.0, 1.0), "sy": max((h - 1) / 2.0, 1.0)}


def design_matrix(xn, yn) -> np.ndarray:
    """The matrix Z of ReLoBlur Eq. (5): one row of the ten cubic terms per point.

    Parameters
    ----------
    xn, yn : array_like
        Normalised coordinates (same shape).

    Returns
    -------
    ndarray, shape (N, 10)
        Columns in the order of :data:`TERMS`.
    """
    x = np.asarray(xn, dtype=np.float64).ravel()
    y = np.asarray(yn, dtype=np.float64).ravel()
    return np.stack([x ** 3, x * x * y, x * y * y, y ** 3, x * x, x * y, y * y, x, y,
                     np.ones_like(x)], axis=1)


def eval_poly(coeffs, xn, yn) -> np.ndarray:
    """Evaluate a cubic location polynomial (ReLoBlur Eq. (4)) at normalised points.

    Parameters
    ----------
    coeffs : array_like, shape (10,)
        ``a0 .. a9`` in the order of :data:`TERMS`.
    xn, yn : array_like
        Normalised coordinates, broadcastable to one shape.

    Returns
    -------
    ndarray of float64, shape of ``xn`` and ``yn`` broadcast.

    Examples
    --------
    >>> a = np.zeros(10); a[4], a[9] = 1.0, 2.0  # x^2 + 2
    >>> float(eval_poly(a, 0.5, -1.0))
    2.25
    """
    xn, yn = np.broadcast_arrays(np.asarray(xn, np.float64), np.asarray(yn, np.float64))
    return (design_matrix(xn, yn) @ np.asarray(coeffs, np.float64)).reshape(xn.shape)


def poly_image(coeffs, shape: tuple[int, int], norm: dict | None = None, *, xs=None, ys=None) -> np.ndarray:
    """A polynomial evaluated at every pixel of an ``(H, W)`` image (float64).

    ``xs``, ``ys`` (normalised column and row coordinates): evaluate on their
    grid instead (e.g. one CFA position's columns and rows).
    """
    h, w = shape
    norm = norm or normalisation(shape)
    x = (np.arange(w) - norm["cx"]) / norm["sx"] if xs is None else np.asarray(xs, np.float64)
    y = (np.arange(h) - norm["cy"]) / norm["sy"] if ys is None else np.asarray(ys, np.float64)
    # separable evaluation: each term is a product of a power of x and a power of y
    c = np.asarray(coeffs, np.float64)
    powers = ((3, 0), (2, 1), (1, 2), (0, 3), (2, 0), (1, 1), (0, 2), (1, 0), (0, 1), (0, 0))
    out = np.zeros((len(y), len(x)), np.float64)
    for a, (px, py) in zip(c, powers):
        if a != 0.0:
            out += a * np.outer(y ** py, x ** px)
    return out


def cast_bayer(coeffs_rgb, shape: tuple[int, int], pattern: str, norm: dict | None = None) -> np.ndarray:
    """The cast of each Bayer pixel, from the polynomial of the pixel's channel.

    Parameters
    ----------
    coeffs_rgb : array_like, shape (3, 10)
        Polynomials of R, G, B.
    shape : (H, W)
    pattern : str
    norm : dict, optional
        From :func:`normalisation` (default: that of ``shape``).

    Returns
    -------
    ndarray float64 (H, W)
    """
    coeffs_rgb = np.asarray(coeffs_rgb, np.float64)
    h, w = shape
    norm = norm or normalisation(shape)
    x = (np.arange(w) - norm["cx"]) / norm["sx"]
    y = (np.arange(h) - norm["cy"]) / norm["sy"]
    out = np.empty(shape, np.float64)
    # each CFA position's pixels from its channel's polynomial, evaluated on that position's
    # quarter grid only (the same products and sums, per pixel, as poly_image)
    for (i, j), c in np.ndenumerate(pattern_indices(pattern)):
        out[i::2, j::2] = poly_image(coeffs_rgb[c], shape, norm, xs=x[j::2], ys=y[i::2])
    return out


def _patch_edges(shape, patches):
    h, w = shape
    nx, ny = int(patches[0]), int(patches[1])
    if nx < 1 or ny < 1 or nx * 2 > w or ny * 2 > h:
        raise BadConfig(f"bad patch grid {nx}x{ny} for a {w}x{h} image")
    xe = np.linspace(0, w, nx + 1).round().astype(int)
    ye = np.linspace(0, h, ny + 1).round().astype(int)
    return xe, ye


def _patch_sums(img: np.ndarray, xe, ye) -> np.ndarray:
    return np.add.reduceat(np.add.reduceat(img, ye[:-1], axis=0), xe[:-1], axis=1)


def patch_means(bayer: np.ndarray, pattern: str, patches: tuple[int, int]):
    """Per-channel mean of each patch of a Bayer image on a ``cols x rows`` grid.

    Parameters
    ----------
    bayer : ndarray (H, W)
        Black-subtracted, normalised Bayer RAW.
    pattern : str
    patches : (cols, rows)
        Number of patches across and down (``16x12`` = 16 across, 12 down).

    Returns
    -------
    means : ndarray (3, rows, cols)
        Mean of the channel's pixels in each patch.
    xc, yc : ndarray (rows, cols)
        Patch centres in pixel coordinates (the paper's ``(x_k, y_k)``).
    """
    h, w = bayer.shape
    xe, ye = _patch_edges((h, w), patches)
    cmap = channel_map((h, w), pattern)
    means = np.zeros((3, len(ye) - 1, len(xe) - 1))
    for c in range(3):
        sel = (cmap == c).astype(np.float64)
        means[c] = _patch_sums(np.where(cmap == c, bayer, 0.0).astype(np.float64), xe, ye) / \
            np.maximum(_patch_sums(sel, xe, ye), 1)
    ny, nx = means.shape[1:]
    xc = ((xe[:-1] + xe[1:] - 1) / 2.0)[None, :].repeat(ny, 0)
    yc = ((ye[:-1] + ye[1:] - 1) / 2.0)[:, None].repeat(nx, 1)
    return means, xc, yc


def patch_design(shape, pattern: str, patches: tuple[int, int], channel: int, norm: dict) -> np.ndarray:
    """The rows of Z (Eq. (5)) for patch means: each term averaged over the channel's pixels of a patch.

    The paper evaluates the terms at the patch centre ``(x_k, y_k)``; the mean
    of a polynomial over a patch differs from its value at the centre (and a
    Bayer channel's pixels are off-centre by half a pixel), so averaging the
    terms over exactly the pixels whose mean is fitted makes the fit exact for
    a polynomial cast. The fitted coefficients mean the same thing.

    Returns
    -------
    ndarray (rows * cols, 10)
    """
    h, w = shape
    xe, ye = _patch_edges(shape, patches)
    sel = channel_map(shape, pattern) == channel
    n = np.maximum(_patch_sums(sel.astype(np.float64), xe, ye), 1)
    x = (np.arange(w) - norm["cx"]) / norm["sx"]
    y = (np.arange(h) - norm["cy"]) / norm["sy"]
    powers = ((3, 0), (2, 1), (1, 2), (0, 3), (2, 0), (1, 1), (0, 2), (1, 0), (0, 1), (0, 0))
    cols = [(_patch_sums(np.where(sel, np.outer(y ** py, x ** px), 0.0), xe, ye) / n).ravel()
            for px, py in powers]
    return np.stack(cols, axis=1)


def nonuniformity(means: np.ndarray) -> np.ndarray:
    """``(max - min) / max`` of patch means per channel (the spread of appendix Fig. 2)."""
    m = means.reshape(means.shape[0], -1)
    return (m.max(1) - m.min(1)) / np.maximum(m.max(1), 1e-12)


def fit_cast(bayer: np.ndarray, pattern: str, patches: tuple[int, int] = (16, 12)) -> CastFit:
    """Calibrate the cast from a lightbox RAW frame (ReLoBlur Eqs. (3)-(5)).

    The frame is split into ``K = cols x rows`` patches; per channel each
    patch's coefficient is its mean divided by the central patch's mean
    (Eq. (3) as the paper calibrates it), and the ten coefficients of
    Eq. (4) are fitted by least squares (Eq. (5) with each term averaged over
    the patch's pixels of the channel, see :func:`patch_design`). See the
    module docstring for why the result is applied as a division.

    Parameters
    ----------
    bayer : ndarray (H, W)
        Black-subtracted, white-normalised lightbox Bayer RAW.
    pattern : str
    patches : (cols, rows)

    Returns
    -------
    CastFit

    Raises
    ------
    BadInput
        If a channel of the lightbox is dark or clipped at the centre.

    Examples
    --------
    A lightbox whose channels fall off towards the sides (a cast quadratic in x)
    is flattened by the fitted correction:

    >>> cast = np.zeros((3, 10)); cast[:, 9] = 1.0; cast[:, 4] = [-0.2, -0.1, -0.3]
    >>> lightbox = 0.5 * cast_bayer(cast, (48, 64), "RGGB")
    >>> fit = fit_cast(lightbox, "RGGB", (8, 6))
    >>> fit.nonuniformity_before.astype(float).round(3).tolist(), fit.nonuniformity_after.round(3).tolist()
    ([0.162, 0.078, 0.243], [0.0, 0.0, 0.0])
    >>> flat = correct_bayer(lightbox, fit)
    >>> round(float(flat.max() - flat.min()), 4)
    0.0021
    """
    bayer = np.asarray(bayer, np.float64)
    h, w = bayer.shape
    norm = normalisation((h, w))
    means, xc, yc = patch_means(bayer, pattern, patches)
    ny, nx = means.shape[1:]
    # the central patch: the one containing the image centre; with an even
    # count the centre lies on patch edges, so average the 2 or 4 middle patches
    rows = [ny // 2 - 1, ny // 2] if ny % 2 == 0 else [ny // 2]
    cols = [nx // 2 - 1, nx // 2] if nx % 2 == 0 else [nx // 2]
    centre = means[:, rows][:, :, cols].reshape(3, -1).mean(1)
    if np.any(centre <= 1e-4):
        raise BadInput("lightbox frame is dark in a channel at its centre")
    if np.any(means.reshape(3, -1).max(1) >= 0.999):
        raise BadInput("lightbox frame is clipped (patch means at the white level)")
    coeffs = np.zeros((3, 10))
    residual = np.zeros(3)
    after = np.zeros_like(means)
    for c in range(3):
        g = (means[c] / centre[c]).ravel()  # Eq. (3) during calibration: patch / centre
        Z = patch_design((h, w), pattern, patches, c, norm)  # Eq. (5), averaged over the patch
        coeffs[c], *_ = np.linalg.lstsq(Z, g, rcond=None)
        fit = Z @ coeffs[c]
        residual[c] = float(np.sqrt(np.mean((g / fit - 1.0) ** 2)))
        after[c] = means[c] / fit.reshape(ny, nx)
    return CastFit(coeffs=coeffs, shape=(h, w), pattern=str(pattern).upper(), norm=norm,
                   patches=(nx, ny), residual=residual,
                   nonuniformity_before=nonuniformity(means),
                   nonuniformity_after=nonuniformity(after))


def cast_image(fit: CastFit, shape: tuple[int, int], pattern: str | None = None) -> np.ndarray:
    """The calibrated cast ``g`` at every Bayer pixel (float32), checked against the image.

    Raises
    ------
    BadConfig
        If the calibration was made for another image size or CFA pattern.
    """
    shape = tuple(shape)
    if tuple(fit.shape) != shape:
        raise BadConfig(f"calibration is for {fit.shape[1]}x{fit.shape[0]} images, "
                        f"this image is {shape[1]}x{shape[0]}")
    if pattern is not None and pattern.upper() != fit.pattern:
        raise BadConfig(f"calibration is for CFA {fit.pattern}, this image is {pattern.upper()}")
    key = (np.asarray(fit.coeffs, np.float64).tobytes(), shape, fit.pattern,
           tuple(sorted((k, float(v)) for k, v in (fit.norm or {}).items())))
    with _CAST_LOCK:
        cast = _CAST_CACHE.pop(key, None)
    if cast is None:
        cast = cast_bayer(fit.coeffs, shape, fit.pattern, fit.norm).astype(np.float32)
        cast.flags.writeable = False  # shared between callers
    with _CAST_LOCK:  # most recently used last; a few calibrations x image sizes kept
        _CAST_CACHE[key] = cast
        while len(_CAST_CACHE) > 4:
            _CAST_CACHE.pop(next(iter(_CAST_CACHE)))
    return cast


#: cast images computed in this process (a run corrects every frame of a camera with the same one)
_CAST_CACHE: dict = {}
_CAST_LOCK = threading.Lock()


def correct_bayer(bayer: np.ndarray, fit: CastFit, pattern: str | None = None, *,
                  cast: np.ndarray | None = None) -> np.ndarray:
    """Remove the cast from a Bayer RAW, pixel by pixel (ReLoBlur Eq. (3), corrected).

    ``corrected = raw * centre / local = raw / g(x, y)`` with g the polynomial
    of the pixel's channel (see the module docstring for the direction).

    Parameters
    ----------
    bayer : ndarray (H, W)
        Black-subtracted, normalised Bayer RAW.
    fit : CastFit
        The camera's calibration.
    pattern : str, optional
        The image's pattern (default: the calibration's). Must equal it.
    cast : ndarray (H, W), optional
        ``cast_bayer(fit.coeffs, ...)`` computed once for many frames.

    Returns
    -------
    ndarray float32 (H, W)

    Raises
    ------
    BadConfig
        If the calibration was made for another image size or CFA pattern.
    """
    if cast is None or tuple(cast.shape) != tuple(bayer.shape) or tuple(fit.shape) != tuple(bayer.shape) \
            or (pattern is not None and pattern.upper() != fit.pattern):
        cast = cast_image(fit, bayer.shape, pattern)
    return np.asarray(bayer, np.float32) / cast
