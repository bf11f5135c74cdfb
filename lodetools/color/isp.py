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

import sys
import threading
import time

import numpy as np

from lodetools.color.crf import CRF
from lodetools.errors import BadConfig
from lodetools.io.bayer import channel_map, pattern_indices
from lodetools.parallel import numba_started


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


#: ``engine='auto'`` runs numpy up to this many pixels: 8 numpy demosaics of 800x600 (6 Menon with the
#: refining step and 2 bilinear, what ``develop`` makes of a scene of 3 pairs) take 0.50 s, about numba's
#: first call in a process alone (0.44-0.59 s), and 0.3 s less than numba's total (figures in :func:`demosaic`)
AUTO_NUMPY_MAX_PIXELS = 500_000
#: ``engine='auto'`` stops choosing numpy once its demosaics in this process took this long (seconds):
#: numba's first-call cost, so a long run of small images spends at most that much more than numba would
AUTO_NUMPY_BUDGET_S = 0.5
_numpy_spent = [0.0]
_numpy_lock = threading.Lock()


def _pick_engine(engine: str, npix: int) -> str:
    if engine != "auto":
        return engine
    if numba_started() or npix > AUTO_NUMPY_MAX_PIXELS or _numpy_spent[0] >= AUTO_NUMPY_BUDGET_S:
        return "numba"
    return "numpy"


def demosaic(bayer: np.ndarray, pattern: str, *, refining_step: bool = True,
             method: str = "menon", float32: bool = True, engine: str = "auto") -> np.ndarray:
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
        differ by ~3e-7 and float32 is about 2.5x faster). In float32, Menon
        and bilinear are colour-demosaicing's float32 computations step for
        step, equal to them bit for bit, in one of two engines (``engine``);
        ``float32=False`` calls colour-demosaicing in float64.
    engine : {'auto', 'numba', 'numpy'}
        The float32 engine; both give the same result bit for bit, so the
        choice changes only the speed. ``numba``
        (:mod:`lodetools.color._menon_numba`) runs compiled loops, about 4x
        faster than colour-demosaicing and without the GIL, but its first
        call in a process costs 0.44-0.59 s (``import numba`` 0.15-0.2 s,
        then numba's first load of a cached kernel 0.28-0.39 s). ``numpy``
        (:mod:`lodetools.color._menon_numpy`) imports nothing more and takes
        about twice numba's time per image. ``auto`` takes numba once numba
        has run any kernel in this process; before that it takes numpy for
        images of at most :data:`AUTO_NUMPY_MAX_PIXELS` pixels while the
        numpy demosaics of this process have taken less than
        :data:`AUTO_NUMPY_BUDGET_S` seconds (numba's first-call cost: a long
        run of small images then moves to numba), and numba otherwise.
        Measured on the 2-core development machine (best of 3-5, warm
        numba; Menon with the refining step / bilinear, ms):

        ==========  =============  =============
        size        numpy          numba
        ==========  =============  =============
        96x64       1.2 / 0.3      0.4 / 0.4
        320x240     9.3 / 4.5      5.6 / 4.9
        640x480     44 / 25        26 / 20
        800x600     70 / 40        42 / 31
        1000x700    90 / 48        54 / 46
        2152x1436   478 / 329      255 / 216
        ==========  =============  =============

        ``develop`` makes 8 demosaics of a scene of 3 pairs (6 Menon, 2
        bilinear): 0.50 s in numpy at 800x600 (the threshold), about
        numba's first call alone, against 0.33 s plus that first call in
        numba.

    Returns
    -------
    ndarray float32 (H, W, 3), not clipped.

    Raises
    ------
    BadConfig
        For an unknown ``method``, ``engine`` or Bayer ``pattern``.

    References
    ----------
    .. [1] D. Menon, S. Andriani, G. Calvagno, "Demosaicing With Directional
       Filtering and a posteriori Decision", IEEE TIP 16(1), 2007.
    .. [2] colour-demosaicing, ``demosaicing_CFA_Bayer_Menon2007`` and
       ``demosaicing_CFA_Bayer_bilinear``
       (https://github.com/colour-science/colour-demosaicing).

    Examples
    --------
    >>> cfa = np.random.default_rng(0).random((6, 8)).astype(np.float32)
    >>> a, b = demosaic(cfa, "RGGB", engine="numpy"), demosaic(cfa, "RGGB", engine="numba")
    >>> a.shape, bool(np.array_equal(a, b))
    ((6, 8, 3), True)
    """
    idx = pattern_indices(pattern)
    if method not in ("menon", "bilinear"):
        raise BadConfig(f"unknown demosaicing method {method!r}: expected menon or bilinear")
    if engine not in ("auto", "numba", "numpy"):
        raise BadConfig(f"unknown demosaicing engine {engine!r}: expected auto, numba or numpy")
    if float32:  # without colour-science (its import alone costs about 1 s)
        cfa = np.ascontiguousarray(bayer, np.float32)
        cm = np.asarray(idx, np.int64).reshape(2, 2)
        chosen = _pick_engine(engine, cfa.size)
        if chosen == "numba":
            from lodetools.color import _menon_numba as kernels
        else:
            from lodetools.color import _menon_numpy as kernels
        t0 = time.perf_counter()
        rgb = kernels.bilinear(cfa, cm) if method == "bilinear" else kernels.menon(cfa, cm, bool(refining_step))
        if chosen == "numpy" and engine == "auto":
            with _numpy_lock:
                _numpy_spent[0] += time.perf_counter() - t0
        return rgb
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
