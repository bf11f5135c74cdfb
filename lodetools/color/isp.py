"""The image signal processing of ReLoBlur's post-processing: RAW -> display RGB.

Order as in the paper ("ISP Operations"): Menon demosaicing, white
balance, colour mapping (camera RGB -> linear sRGB), gamma.

- Demosaicing: DDFAPD of Menon, Andriani and Calvagno (2007) through
  ``colour_demosaicing.demosaicing_CFA_Bayer_Menon2007`` (the paper cites
  the 2006 conference version of the same method).
- White balance gains ``g_c = G / c`` of a white reference: the scene's
  whiteboard when there is one (after colour correction), else the camera's
  ``AsShotNeutral``, else the gray world of the image.
- Colour matrix: white-balanced camera RGB -> linear sRGB (libraw's
  ``color_matrix`` for DNGs, or ``camera_to_srgb`` of ``rig.toml``);
  identity when neither is known.
- Gamma: the sRGB curve (IEC 61966-2-1) or a pure power 1/2.2.

References
----------
.. [1] D. Menon, S. Andriani, G. Calvagno, "Demosaicing With Directional
   Filtering and a posteriori Decision", IEEE TIP 16(1), 2007.
.. [2] H. Li et al., "Real-World Deep Local Motion Deblurring", AAAI 2023,
   section "ISP Operations".
"""

from __future__ import annotations

import numpy as np

from lodetools.color.crf import CRF
from lodetools.errors import BadConfig
from lodetools.io.bayer import channel_map, pattern_indices


def _import_colour():
    """Import colour-science without importing its plotting package until something uses it.

    ``import colour`` imports ``colour.plotting`` and with it matplotlib
    (0.7 s of the 1.2 s that ``import colour`` costs, measured with
    ``python -X importtime``); demosaicing needs neither. A module object
    stands in for ``colour.plotting`` and imports the real package on the
    first attribute asked of it, so code that plots with colour still works.
    """
    import importlib
    import sys
    import types

    if "colour" in sys.modules:
        return sys.modules["colour"]

    class _LazyPlotting(types.ModuleType):
        def __getattr__(self, name):
            # dunders, and the dtype constants colour's set_default_float_dtype probes on every module
            if name.startswith("__") or name.startswith("DTYPE_"):
                raise AttributeError(name)
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
            setattr(sys.modules["colour"], "plotting", real)
            return getattr(real, name)

    sys.modules["colour.plotting"] = _LazyPlotting("colour.plotting")
    try:
        with np.printoptions():  # colour-science sets numpy's legacy print mode on import: keep the user's
            import colour
    except BaseException:
        sys.modules.pop("colour.plotting", None)
        raise
    return colour


def demosaic(bayer: np.ndarray, pattern: str, *, refining_step: bool = True,
             method: str = "menon", float32: bool = True) -> np.ndarray:
    """Demosaic a Bayer image.

    Parameters
    ----------
    bayer : ndarray (H, W)
    pattern : str
    refining_step : bool
        Menon's refining step (about 2.5x slower).
    method : {'menon', 'bilinear'}
        ``bilinear`` (colour-demosaicing's) is for quick previews only.
    float32 : bool
        Compute in float32 (colour-science's default is float64; the results
        differ by ~3e-7 and float32 is about 2.5x faster). Menon in float32
        runs :func:`lodetools.color._menon_numba.menon`, colour-demosaicing's
        float32 computation step for step as compiled loops (equal to it bit
        for bit, about 4x faster, and without the GIL); ``float32=False``
        calls colour-demosaicing in float64. Bilinear in float32 is
        :func:`lodetools.color._menon_numba.bilinear`, equal to
        colour-demosaicing's bit for bit.

    Returns
    -------
    ndarray float32 (H, W, 3), not clipped.
    """
    idx = pattern_indices(pattern)
    if method not in ("menon", "bilinear"):
        raise BadConfig(f"unknown demosaicing method {method!r}: expected menon or bilinear")
    if float32:  # without colour-science (its import alone costs about 1 s)
        from lodetools.color import _menon_numba

        cfa = np.ascontiguousarray(bayer, np.float32)
        cm = np.asarray(idx, np.int64).reshape(2, 2)
        if method == "bilinear":
            return _menon_numba.bilinear(cfa, cm)
        return _menon_numba.menon(cfa, cm, bool(refining_step))
    _import_colour()
    with np.printoptions():  # as colour-science, colour-demosaicing sets numpy's print mode on import
        from colour_demosaicing import demosaicing_CFA_Bayer_bilinear, demosaicing_CFA_Bayer_Menon2007

    cfa = np.asarray(bayer, np.float64)
    if method == "menon":
        rgb = demosaicing_CFA_Bayer_Menon2007(cfa, pattern.upper(), refining_step=refining_step)
    else:
        rgb = demosaicing_CFA_Bayer_bilinear(cfa, pattern.upper())
    return np.asarray(rgb, np.float32)


def white_balance_from_patch(bayer: np.ndarray, pattern: str, *, border: float = 0.1) -> np.ndarray:
    """Gains ``(G/R, 1, G/B)`` from a Bayer image of a white board (central region)."""
    h, w = bayer.shape
    y0, x0 = int(h * border) // 2 * 2, int(w * border) // 2 * 2  # even: keep the CFA phase
    crop = np.asarray(bayer[y0:h - y0, x0:w - x0], np.float64)
    cmap = channel_map(crop.shape, pattern)
    means = np.array([crop[cmap == c].mean() for c in range(3)])
    if np.any(means <= 1e-6):
        raise BadConfig("white reference is black in a channel")
    return means[1] / means


def gray_world(rgb: np.ndarray) -> np.ndarray:
    """Gains ``(G/R, 1, G/B)`` making the image's mean gray.

    Examples
    --------
    >>> gray_world(np.ones((2, 2, 3)) * [0.2, 0.4, 0.8]).tolist()
    [2.0, 1.0, 0.5]
    """
    m = np.asarray(rgb, np.float64).reshape(-1, 3).mean(0)
    return m[1] / np.maximum(m, 1e-12)


def apply_matrix(rgb: np.ndarray, matrix) -> np.ndarray:
    """``out[..., i] = sum_j matrix[i, j] * rgb[..., j]`` (OpenCV's transform: 25x numpy's matmul)."""
    import cv2

    return cv2.transform(np.ascontiguousarray(rgb, np.float32), np.asarray(matrix, np.float32))


#: the ``gamma`` choices of :func:`encode_gamma` -> the curve applied (:data:`lodetools.color.crf.CRFS`)
GAMMAS = {"srgb": CRF("srgb", name="srgb"), "2.2": CRF("gamma", gamma=2.2, name="gamma:2.2"),
          "linear": CRF("linear", name="linear")}


def encode_gamma(linear: np.ndarray, gamma: str = "srgb") -> np.ndarray:
    """Linear values in [0, 1] -> display values (sRGB curve, power 1/2.2, or none).

    Examples
    --------
    >>> encode_gamma(np.array([0.0, 0.002, 0.214, 1.5]), "srgb").astype(float).round(4).tolist()
    [0.0, 0.0258, 0.5, 1.0]
    """
    curve = GAMMAS.get(str(gamma))
    if curve is None:
        raise BadConfig(f"unknown gamma {gamma!r}: expected srgb, 2.2 or linear")
    x = np.clip(np.asarray(linear, np.float32), 0.0, 1.0)
    return curve.encode(x, out=x)


def render(bayer: np.ndarray, pattern: str, *, wb_gains, camera_to_srgb=None, gamma: str = "srgb",
           refining_step: bool = True, method: str = "menon", timings: dict | None = None) -> np.ndarray:
    """Bayer RAW -> display RGB: demosaic, white balance, colour matrix, gamma.

    Parameters
    ----------
    bayer : ndarray (H, W)
        Black-subtracted, white-normalised (and corrected) Bayer RAW.
    pattern : str
    wb_gains : array_like (3,)
        Per-channel gains applied after demosaicing.
    camera_to_srgb : array_like (3, 3), optional
        White-balanced camera RGB -> linear sRGB (identity if None).
    gamma : {'srgb', '2.2', 'linear'}
    refining_step : bool
    method : {'menon', 'bilinear'}
    timings : dict, optional
        Receives seconds spent in ``demosaic`` and ``colour``.

    Returns
    -------
    ndarray float32 (H, W, 3) in [0, 1]
    """
    import time

    t0 = time.perf_counter()
    rgb = demosaic(bayer, pattern, refining_step=refining_step, method=method)
    t1 = time.perf_counter()
    m = np.diag(np.asarray(wb_gains, np.float64))
    if camera_to_srgb is not None:
        m = np.asarray(camera_to_srgb, np.float64) @ m
    out = apply_matrix(rgb, m)
    out = encode_gamma(out, gamma)
    if timings is not None:
        timings["demosaic"] = timings.get("demosaic", 0.0) + t1 - t0
        timings["colour"] = timings.get("colour", 0.0) + time.perf_counter() - t1
    return out
