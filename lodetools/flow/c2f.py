"""Coarse-to-fine variational optical flow (Ce Liu's method, the one pyflow wraps).

The pyramid, the features and the level upsampling are numpy and OpenCV
code in this module, shared by three engines that solve each pyramid level
with the same steps (``engine=``):

* ``'numba'``: compiled CPU kernels (:mod:`lodetools.flow._c2f_numba`) that
  fuse each step into loops over rows, on several threads;
* ``'numpy'``: the same arithmetic as whole-array numpy operations
  (:mod:`lodetools.flow._c2f_numpy`), equal to the numba kernels bit for bit.
  It exists for start-up: numba's first kernel in a process costs about
  0.65 s (its import and the loading of its compiler's registries, even
  with the compiled kernels cached), more than the numpy engine needs for a
  small image;
* ``'torch'``: tensor code on any torch device (:mod:`lodetools.flow._c2f_torch`),
  for CUDA; it agrees with the others to float32 rounding.

``engine='auto'`` (the default) runs torch on a GPU, and on the CPU numpy
for images of at most :data:`NUMPY_MAX_PIXELS` pixels (unless numba has
already started in the process: :func:`lodetools.parallel.numba_started`)
and numba above; numpy and numba
give the same bytes, so the choice changes only the time. torch is imported
only for the torch engine or to ask whether a GPU is there (not on a
machine without GPU device files, :func:`lodetools.device.gpu_possible`).

The energy is Brox et al.'s (2004) robust data + robust smoothness energy,
minimised as in Ce Liu's ``OpticalFlow::Coarse2FineFlow`` (the C++ code that
``pyflow`` wraps, used by ReLoBlur for geometric alignment):

* a Gaussian pyramid built exactly as Liu's ``GaussianPyramid::ConstructPyramid``
  (:func:`pyramid_plan`): ratio 0.75, ``int(log(min_width / width) / log(ratio))``
  levels, blur sigma ``(1/ratio - 1) * i`` with the integer half-width
  ``int(3 sigma)`` (so level 1 is not blurred), level sizes truncated
  (``int(width * ratio ** i)``), bilinear resampling at ``x = (j + 1) / rate - 1``
  (Liu's ``ImageProcessing::ResizeImage``, not at pixel centres);
* between levels the flow is resized the same way to the finer level's size and
  multiplied by ``1 / ratio`` (``Coarse2FineFlow``: ``vx.imresize(width, height);
  vx.Multiplywith(1/ratio)``);
* per pixel features: gray (0.299 R + 0.587 G + 0.114 B), its x and y
  derivatives (5-tap ``[1, -8, 0, 8, -1] / 12``), G - R and G - B;
* at each level, ``outer_iterations + level`` fixed-point warping iterations:
  warp the moving features with the current flow (bilinear; samples outside the
  frame take the reference's value), derivatives of the 0.4/0.6 blend of the
  two slightly smoothed images, then ``inner_iterations`` IRLS steps with the
  robust penalty weights ``phi = 0.5 / sqrt(s + 0.001^2)`` (smoothness) and
  ``psi = 0.5 / sqrt(r^2 + 0.001^2)`` (data, per feature channel), each solving
  the linearised normal equations for the increment (du, dv) with
  ``sor_iterations + 3 * level`` SOR sweeps, omega 1.8, smoothness weight
  ``alpha`` = 0.012 and the small extra diagonal ``0.05 * alpha``;
* the data term averages the feature channels (Liu's ``DImage::collapse``
  default, ``collapse_average``: with a sum the flow breaks into outliers);
  samples outside the frame take the reference's value in the warp (Liu's
  ``warpFL``, so their temporal derivative is 0) and, as in Liu's code, the
  in-image mask is not applied to the data term.

The pyramid and level-upsampling conventions are Liu's: with them the flow of
the Middlebury motorcycle pair is within 0.025 px (mean) of the original
program's (tests/flow/test_pyflow_agreement.py); with pixel-centre sampling, rounded sizes,
a blurred first level and the exact size ratio as flow scale it differed by 0.32 px
(mean) and 1.04 px (95th percentile), with the same accuracy against the ground truth
(end-point error 3.30 px either way), so those conventions are not kept.

Deviations from the C++ code (solver details, which change the numbers only by
float32 rounding and the convergence of the SOR sweeps):

* **Red-black ordering, block (2x2) updates.** Liu sweeps the grid
  lexicographically and updates du then dv at each pixel. A lexicographic sweep
  is sequential, so here the pixels are split into the two colours of a
  checkerboard (the 4 sub-lattices of a 2x2 pixel-unshuffle) and each colour is
  updated at once by solving the pixel's coupled 2x2 system for (du, dv) exactly.
  Red-black SOR is the standard parallel SOR; for these symmetric positive
  definite systems it converges for any omega in (0, 2) and, with the
  checkerboard being a consistent ordering, at the same asymptotic rate as the
  lexicographic sweep. It runs on CPU and CUDA alike.
* **Iteration budget.** ``max_level_iterations`` (default ``None``: no cap)
  can cap the iteration growth at coarse levels; the defaults follow Liu's code.
* float32 instead of float64.
* The CPU engine runs the SOR sweeps of a level as a pipelined wavefront over
  the rows (several sweeps in flight, sweep groups on separate threads); every
  update sees the same values as in the plain red-black order, so the numbers
  are those of the plain order, whatever the thread count.

Flow convention: ``flow[y, x] = (dx, dy)`` such that
``moving(x + dx, y + dy) ~= ref(x, y)`` (pyflow's ``(u, v)`` for ``im1 = ref``,
``im2 = moving``).

References
----------
.. [1] C. Liu, "Beyond Pixels: Exploring New Representations and Applications
   for Motion Analysis", PhD thesis, MIT, 2009 (Appendix A), and the
   ``OpticalFlow.cpp`` code released with it (wrapped by pyflow, Pathak 2017).
.. [2] T. Brox, A. Bruhn, N. Papenberg, J. Weickert, "High accuracy optical flow
   estimation based on a theory for warping", ECCV 2004.
.. [3] ReLoBlur (Li et al., AAAI 2023), "Geometrical Alignment": flow computed
   with pyflow on each scene's static reference pair.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from lodetools.parallel import numba_started

#: Liu's 5-tap derivative filter (``DImage::dx(.., advanced=true)``).
DERIV = (1.0 / 12, -8.0 / 12, 0.0, 8.0 / 12, -1.0 / 12)
#: Liu's smoothing filter applied before the derivatives (``getDxs``).
SMOOTH = (0.02, 0.11, 0.74, 0.11, 0.02)
#: epsilon^2 of both robust penalties (Liu's ``SmoothFlowSOR``: 0.001)
EPS2 = 0.001 ** 2
#: CPU images up to this many pixels run the numpy engine under ``engine='auto'``
#: (see :func:`coarse2fine_flow`)
NUMPY_MAX_PIXELS = 30_000
#: levels with at least this many pixels may run the numba kernels on several threads
PARALLEL_PIXELS = 15_000
ENGINES = ("auto", "numba", "numpy", "torch")


# --------------------------------------------------------------------------- filters
def correlate5(x: np.ndarray, taps, axis: int) -> np.ndarray:
    """5-tap correlation of ``x`` (..., H, W) float32 along x (``axis=-1``) or y (``-2``), replicated borders.

    Accumulated left to right in float32 (``t0 x[-2] + t1 x[-1] + ... + t4 x[+2]``)
    as the compiled kernels do, so that every engine computes the same numbers.
    """
    if axis not in (-1, -2):
        raise ValueError(f"axis must be -1 or -2, got {axis}")
    n = x.shape[axis]
    if axis == -1:
        first, last = x[..., :1], x[..., -1:]
    else:
        first, last = x[..., :1, :], x[..., -1:, :]
    p = np.concatenate((first, first, x, last, last), axis)    # replicated border (np.pad is slower)
    t = np.asarray(taps, np.float32)
    taps_in = [p[..., i:i + n] if axis == -1 else p[..., i:i + n, :] for i in range(5)]
    out = t[0] * taps_in[0]
    for i in range(1, 5):
        out += t[i] * taps_in[i]
    return out


def _gaussian_taps(sigma: float, radius: int):
    """Liu's ``Image::GaussianSmoothing`` taps: ``exp(-i^2 / (2 sigma^2))``, ``|i| <= radius``, normalised."""
    t = np.exp(-(np.arange(-radius, radius + 1, dtype=np.float64) ** 2) / (2 * sigma * sigma))
    return t / t.sum()


def _liu_coords(n_dst: int, n_src: int, rate: float):
    """Liu's ``ResizeImage`` sampling along one axis: ``x_j = (j + 1) / rate - 1``.

    Returns the two source indices and the weight of the second (float32): Liu's
    ``BilinearInterpolate`` truncates ``x`` toward zero, clips the fraction to
    [0, 1] and clamps both indices to the image (``EnforceRange``).
    """
    x = (np.arange(n_dst, dtype=np.float64) + 1) / rate - 1
    x0 = np.trunc(x)
    frac = np.clip(x - x0, 0.0, 1.0)
    x0 = x0.astype(np.int64)
    return np.clip(x0, 0, n_src - 1), np.clip(x0 + 1, 0, n_src - 1), frac.astype(np.float32)


def liu_resize(x: np.ndarray, size, rate_y: float, rate_x: float) -> np.ndarray:
    """Bilinear resize with Liu's sampling (``ImageProcessing::ResizeImage``). x: (C, H, W) -> (C, h, w).

    Output pixel ``(i, j)`` samples the input at ``((j + 1) / rate_x - 1, (i + 1) / rate_y - 1)``
    (not at pixel centres: ``cv2.resize`` samples at ``(j + 0.5) / rate - 0.5``),
    with the input clamped at its borders. Bilinear interpolation is separable,
    so it is done along x, then along y (float32).

    Examples
    --------
    Halving samples at 1, 3, 5 (not at the pixel-centre positions 0.5, 2.5, 4.5):

    >>> liu_resize(np.arange(6, dtype=np.float32).reshape(1, 1, 6), (1, 3), 1.0, 0.5)[0, 0].tolist()
    [1.0, 3.0, 5.0]
    """
    h, w = size
    i0, i1, a = _liu_coords(w, x.shape[-1], rate_x)
    lo, hi = x[..., i0], x[..., i1]
    x = lo + a * (hi - lo)
    i0, i1, a = _liu_coords(h, x.shape[-2], rate_y)
    lo, hi = x[..., i0, :], x[..., i1, :]
    return lo + a[:, None] * (hi - lo)


def pyramid_plan(height: int, width: int, ratio: float = 0.75, min_width: int = 20):
    """How Liu's ``GaussianPyramid::ConstructPyramid`` (the "fast way") builds each level.

    Returns, finest first, one tuple ``((h, w), source, sigma, radius, rate)`` per
    level: level ``i`` is level ``source`` blurred with a Gaussian of ``sigma`` and
    integer half-width ``radius`` then resized by ``rate`` (:func:`liu_resize`).
    As in Liu's code (all in double precision):

    * ``int(log(min_width / width) / log(ratio))`` levels (at least one);
    * levels ``i <= n = int(log(0.25) / log(ratio))`` (4 for ratio 0.75) come from
      the full image, ``sigma = (1 / ratio - 1) * i``, ``rate = ratio ** i``;
      coarser ones from level ``i - n``, ``sigma = (1 / ratio - 1) * n``,
      ``rate = ratio ** i * width / width(i - n)``;
    * ``radius = int(3 sigma)`` (truncated: 0 at level 1 for ratio 0.75, i.e. no blur);
    * sizes truncated: ``int(w_src * rate)``, ``int(h_src * rate)`` (555x375 for 741x500, not 556x375),
      and at least 1 (Liu's code would make an empty level of a 2-pixel-high image).
    """
    n_levels = int(math.log(min_width / width) / math.log(ratio)) if width > min_width else 1
    n_levels = max(1, n_levels)
    base = 1.0 / ratio - 1.0
    n = int(math.log(0.25) / math.log(ratio))
    plan = [((height, width), 0, 0.0, 0, 1.0)]
    for i in range(1, n_levels):
        if i <= n:
            source, sigma = 0, base * i
            rate = math.pow(ratio, i)
        else:
            source, sigma = i - n, base * n
            rate = math.pow(ratio, i) * width / plan[source][0][1]
        sh, sw = plan[source][0]
        plan.append(((max(1, int(sh * rate)), max(1, int(sw * rate))), source, sigma, int(sigma * 3), rate))
    return plan


def pyramid_sizes(height: int, width: int, ratio: float = 0.75, min_width: int = 20):
    """Sizes (H, W) of the pyramid levels, finest first (:func:`pyramid_plan`)."""
    return [p[0] for p in pyramid_plan(height, width, ratio, min_width)]


def _blur(x: np.ndarray, sigma: float, radius: int) -> np.ndarray:
    """Separable Gaussian of (C, H, W) float32: Liu's taps, replicated borders (Liu's ``EnforceRange``)."""
    if radius == 0:
        return x
    k = _gaussian_taps(sigma, radius).astype(np.float32)
    return np.stack([cv2.sepFilter2D(c, -1, k, k, borderType=cv2.BORDER_REPLICATE) for c in x])


def build_pyramid(img: np.ndarray, ratio: float = 0.75, min_width: int = 20) -> list:
    """Gaussian pyramid of a (C, H, W) float32 image, finest first, exactly as Liu's :func:`pyramid_plan`."""
    levels = [np.asarray(img, np.float32)]
    for size, source, sigma, radius, rate in pyramid_plan(img.shape[1], img.shape[2], ratio, min_width)[1:]:
        levels.append(liu_resize(_blur(levels[source], sigma, radius), size, rate, rate))
    return levels


def upsample_flow(flow: np.ndarray, size, ratio: float) -> np.ndarray:
    """Liu's level step (``Coarse2FineFlow``): flow (2, h, w) resized to ``size`` and multiplied by ``1 / ratio``.

    The resize uses the per-axis rates ``W / w`` and ``H / h`` (``DImage::imresize(width, height)``,
    sampling at ``(j + 1) / rate - 1``), the vectors are scaled by ``1 / ratio`` in both axes
    (not by the exact size ratio, which differs slightly because the sizes are truncated).
    """
    h, w = size
    up = liu_resize(flow, size, h / flow.shape[1], w / flow.shape[2]) * np.float32(1.0 / ratio)
    return np.ascontiguousarray(up, np.float32)


def image_features(img: np.ndarray) -> np.ndarray:
    """Liu's ``im2feature``: (3, H, W) RGB -> (5, H, W) gray, dx, dy, G-R, G-B (float32).

    A single-channel image gives (3, H, W): gray, dx, dy.
    """
    img = np.asarray(img, np.float32)
    if img.shape[0] == 1:
        gray = img[0]
    else:
        r, g, b = img[0], img[1], img[2]
        gray = np.float32(0.299) * r + np.float32(0.587) * g + np.float32(0.114) * b
    feats = [gray, correlate5(gray, DERIV, -1), correlate5(gray, DERIV, -2)]
    if img.shape[0] == 3:
        feats += [g - r, g - b]
    return np.ascontiguousarray(np.stack(feats), np.float32)


# --------------------------------------------------------------------------- engines
def choose_engine(engine: str, device, pixels: int):
    """``(engine, torch_device or None)`` for :func:`coarse2fine_flow` (see its ``engine``)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine in ("numba", "numpy"):
        return engine, None
    from lodetools.device import gpu_possible, resolve_device

    cpu_asked = device is not None and str(device) == "cpu"
    if engine == "auto" and (cpu_asked or (device in (None, "auto") and not gpu_possible())):
        dev = None           # no torch import: nothing but the CPU can run it
    else:
        dev = resolve_device(device)
        if engine == "torch" or dev.type != "cpu":
            return "torch", dev
    return ("numpy" if pixels <= NUMPY_MAX_PIXELS and not numba_started() else "numba"), None


def coarse2fine_flow(ref: np.ndarray, moving: np.ndarray, *, alpha: float = 0.012, ratio: float = 0.75,
                     min_width: int = 20, outer_iterations: int = 7, inner_iterations: int = 1,
                     sor_iterations: int = 30, omega: float = 1.8, level_growth: bool = True,
                     max_level_iterations: int | None = None, device=None,
                     threads: int | None = None, engine: str = "auto") -> np.ndarray:
    """Dense flow from ``ref`` to ``moving`` by Liu's coarse-to-fine method.

    Parameters
    ----------
    ref, moving : ndarray
        (H, W, 3) RGB or (H, W) gray images, float in [0, 1] (other ranges work but
        ``alpha`` is tuned for [0, 1]).
    alpha : float
        Smoothness weight (pyflow's default 0.012).
    ratio, min_width : float, int
        Pyramid downsampling ratio and the coarsest width bound.
    outer_iterations, inner_iterations, sor_iterations : int
        Fixed-point warping iterations, IRLS iterations, SOR sweeps at the finest
        level; with ``level_growth`` level ``k`` (0 = finest) uses ``outer + k``
        warping iterations and ``sor + 3 k`` sweeps as Liu's code does.
    omega : float
        Over-relaxation factor (0 < omega < 2).
    max_level_iterations : int, optional
        Cap on the level index used for the growth (None = no cap).
    device : str or torch.device, optional
        The torch engine's device. ``None`` picks CUDA when available; CUDA
        falls back to CPU when absent. ``"cpu"`` with ``engine='auto'`` runs
        the numpy or numba engine.
    threads : int, optional
        CPU threads during this call (settings are restored afterwards).
        ``None`` (default): the numba engine asks :func:`lodetools.parallel.cpu_threads`
        at each level: one thread below :data:`PARALLEL_PIXELS` pixels, in worker
        processes and when the machine's cores are busy, else the idle cores;
        the torch engine uses 1 thread on the CPU (its per-operation work is
        small: on a shared 2-core machine 2 threads took 50 s instead of 4.9 s
        on the 741x500 motorcycle pair); the numpy engine runs on the calling
        thread. The result does not depend on the number of threads (bit for bit).
    engine : {'auto', 'numba', 'numpy', 'torch'}
        How each pyramid level is solved. ``'numba'``: compiled kernels
        (:mod:`lodetools.flow._c2f_numba`), the fastest on a CPU.
        ``'numpy'``: the same arithmetic in numpy (:mod:`lodetools.flow._c2f_numpy`),
        equal to numba's bit for bit; it has no start-up cost (numba's first
        kernel in a process takes about 0.65 s to load even when cached) but
        is slower per pixel. ``'torch'``: tensor code on ``device``
        (:mod:`lodetools.flow._c2f_torch`), equal to the others to float32
        rounding. ``'auto'`` (default): torch on a GPU; on the CPU numpy up to
        :data:`NUMPY_MAX_PIXELS` pixels unless numba has already started in
        this process (any kernel), numba above.

    Returns
    -------
    ndarray
        float32 (H, W, 2) flow ``(dx, dy)`` with ``moving(x + dx, y + dy) ~= ref(x, y)``.

    References
    ----------
    See the module docstring (Liu 2009; Brox et al. 2004; ReLoBlur geometric alignment).

    Examples
    --------
    A smooth image moved one pixel down gives a flow of about (0, 1) inside:

    >>> y, x = np.mgrid[0:40, 0:56].astype(np.float32)
    >>> img = 0.5 + 0.25 * np.sin(x / 5) * np.cos(y / 6)
    >>> flow = coarse2fine_flow(img, np.roll(img, 1, axis=0), outer_iterations=4)
    >>> np.median(flow[8:-8, 8:-8], axis=(0, 1)).round(1).tolist()
    [0.0, 1.0]
    """
    a = np.asarray(ref, dtype=np.float32)
    m = np.asarray(moving, dtype=np.float32)
    if a.shape != m.shape:
        raise ValueError(f"ref {a.shape} and moving {m.shape} differ in shape")
    if a.ndim == 2:
        a, m = a[..., None], m[..., None]
    engine, dev = choose_engine(engine, device, a.shape[0] * a.shape[1])
    solve = _level_solver(engine, dev, threads)
    p1 = build_pyramid(np.ascontiguousarray(a.transpose(2, 0, 1)), ratio, min_width)
    p2 = build_pyramid(np.ascontiguousarray(m.transpose(2, 0, 1)), ratio, min_width)
    flow = None
    for k in range(len(p1) - 1, -1, -1):
        f1, f2 = image_features(p1[k]), image_features(p2[k])
        h, w = f1.shape[1:]
        flow = np.zeros((2, h, w), np.float32) if flow is None else upsample_flow(flow, (h, w), ratio)
        lv = k if level_growth else 0
        if max_level_iterations is not None:
            lv = min(lv, max_level_iterations)
        flow = solve(f1, f2, flow, alpha=alpha, outer=outer_iterations + lv, inner=inner_iterations,
                     sor=sor_iterations + 3 * lv, omega=omega)
    return np.ascontiguousarray(flow.transpose(1, 2, 0), np.float32)


def _level_solver(engine, dev, threads):
    """A function ``(f1, f2, flow, *, alpha, outer, inner, sor, omega) -> flow`` solving one level."""
    if engine == "numpy":
        from lodetools.flow import _c2f_numpy

        def solve(f1, f2, flow, *, alpha, outer, inner, sor, omega):
            return _c2f_numpy.level_flow(f1, f2, flow, alpha, outer, inner, sor, omega)
        return solve
    if engine == "numba":
        def solve(f1, f2, flow, **kw):
            _numba_level(f1, f2, flow, threads=threads, **kw)
            return flow
        return solve
    from lodetools.flow import _c2f_torch

    def solve(f1, f2, flow, **kw):
        # torch's thread count belongs to the process (align estimates a flow on a thread while
        # other work goes on): set for the call only, and only when torch solves on the CPU
        import torch

        old = torch.get_num_threads()
        if dev.type == "cpu":
            torch.set_num_threads(1 if threads is None else int(threads))
        try:
            with torch.no_grad():
                out = _c2f_torch.smooth_flow_sor(torch.from_numpy(f1)[None].to(dev), torch.from_numpy(f2)[None].to(dev),
                                                 torch.from_numpy(flow).to(dev), **kw)
            return np.ascontiguousarray(out.cpu().numpy(), np.float32)
        finally:
            torch.set_num_threads(old)
    return solve


def _numba_level(f1, f2, flow, *, alpha, outer, inner, sor, omega, threads):
    """One level with the numba kernels (:mod:`lodetools.flow._c2f_numba`); ``flow`` refined in place.

    The thread count comes from :func:`lodetools.parallel.cpu_threads`, decided per level.
    """
    import numba

    from lodetools import parallel
    from lodetools.flow import _c2f_numba as nbk

    parallel.use_numba_workqueue()
    n = parallel.cpu_threads(f1.shape[1] * f1.shape[2], min_work=PARALLEL_PIXELS, requested=threads)
    n = min(n, numba.config.NUMBA_NUM_THREADS)
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        nbk.level_flow(f1, f2, flow, float(alpha), int(outer), int(inner), int(sor), float(omega), nbk._NBR, n)
    finally:
        numba.set_num_threads(old)
