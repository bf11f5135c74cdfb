"""Dense optical flow between two images, and warping with it.

Convention (every backend): ``flow = estimate_flow(ref, moving)`` is a float32
array of shape (H, W, 2) holding ``(dx, dy)`` in pixels such that

    moving(x + dx(x, y), y + dy(x, y)) ~= ref(x, y)

i.e. a *backward* flow: :func:`lodetools.flow.warp.warp_image` ``(moving, flow)``
samples ``moving`` at ``x + flow`` and yields an image aligned to ``ref``. This
is OpenCV's ``calc(I0=ref, I1=moving)`` and pyflow's ``(u, v)`` for
``im1 = ref, im2 = moving``. Pixel centres are at integer coordinates.

Backends (``method``):

* ``'c2f'``: our implementation of Ce Liu's coarse-to-fine variational flow,
  the method pyflow wraps (:mod:`lodetools.flow.c2f`): torch tensors on CUDA,
  the same steps as compiled numba kernels on the CPU, or as numpy code
  (the same bytes as numba's) for small images, where numba's start-up
  would cost more than the flow.
* ``'pyflow'``: the original module, only if it is importable and is Ce Liu's
  (:mod:`lodetools.flow.pyflow_backend`); never installed by us.
* ``'dis'``, ``'deepflow'``, ``'tvl1'``: OpenCV (:mod:`lodetools.flow.opencv`).
"""

from __future__ import annotations

import numpy as np

from lodetools.errors import BadConfig, BadInput

METHODS = ("c2f", "pyflow", "dis", "deepflow", "tvl1")


def _check_pair(ref: np.ndarray, moving: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(ref)
    moving = np.asarray(moving)
    for name, img in (("reference image", ref), ("moving image", moving)):
        if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3)):
            raise BadInput(f"{name} must be (H, W) or (H, W, 3), got shape {img.shape}")
        if img.shape[0] < 2 or img.shape[1] < 2:
            raise BadInput(f"{name} is too small for optical flow: {img.shape[1]}x{img.shape[0]}")
    if ref.shape != moving.shape:
        raise BadInput(f"image sizes differ: {ref.shape} vs {moving.shape}")
    if np.issubdtype(ref.dtype, np.integer):
        scale = float(np.iinfo(ref.dtype).max)
        ref, moving = ref.astype(np.float32) / scale, moving.astype(np.float32) / scale
    ref = ref.astype(np.float32, copy=False)
    moving = moving.astype(np.float32, copy=False)
    if not (np.isfinite(ref).all() and np.isfinite(moving).all()):
        raise BadInput("images contain NaN or infinite values")
    if ref.ndim == 3 and ref.shape[2] == 1:
        ref, moving = ref[..., 0], moving[..., 0]
    return ref, moving


def available_methods() -> list[str]:
    """The backends usable here (``pyflow`` only when Ce Liu's module is importable)."""
    from lodetools.flow.pyflow_backend import load_pyflow

    return [m for m in METHODS if m != "pyflow" or load_pyflow() is not None]


def estimate_flow(ref: np.ndarray, moving: np.ndarray, method: str = "c2f", **options) -> np.ndarray:
    """Dense flow from ``ref`` to ``moving``: ``moving(x + flow(x)) ~= ref(x)``.

    Parameters
    ----------
    ref, moving : ndarray
        Same-size images, (H, W, 3) RGB or (H, W) gray; float in [0, 1] or
        integer (scaled by the dtype's maximum).
    method : {'c2f', 'pyflow', 'dis', 'deepflow', 'tvl1'}
        Backend (see the module docstring).
    **options
        Passed to the backend: for ``c2f`` see
        :func:`lodetools.flow.c2f.coarse2fine_flow` (``alpha``, ``ratio``,
        ``min_width``, ``outer_iterations``, ``inner_iterations``,
        ``sor_iterations``, ``device``, ``threads``, ``engine``, ...); ``dis`` takes ``preset``.

    Returns
    -------
    ndarray
        float32 (H, W, 2): ``(dx, dy)`` per pixel of ``ref``.

    Raises
    ------
    BadInput
        Images of different sizes, wrong shapes, too small, or not finite.
    BadConfig
        Unknown method, or ``pyflow`` requested but not importable.

    Examples
    --------
    A smooth random image moved 2 pixels to the right (DIS here: no compilation;
    the default ``c2f`` gives the same median):

    >>> import cv2
    >>> rng = np.random.default_rng(0)
    >>> img = cv2.GaussianBlur(rng.random((48, 64)).astype(np.float32), (0, 0), 2)
    >>> img = (img - img.min()) / (img.max() - img.min())
    >>> flow = estimate_flow(img, np.roll(img, 2, axis=1), method="dis")
    >>> (np.median(flow[8:-8, 8:-8], axis=(0, 1)).round(2) + 0.0).tolist()
    [2.0, 0.0]
    """
    ref, moving = _check_pair(ref, moving)
    if method == "c2f":
        from lodetools.flow.c2f import coarse2fine_flow

        return coarse2fine_flow(ref, moving, **options)
    if method == "pyflow":
        from lodetools.flow.pyflow_backend import load_pyflow, pyflow_flow

        if load_pyflow() is None:
            raise BadConfig("flow method 'pyflow' needs Ce Liu's pyflow module (coarse2fine_flow), "
                            "which is not importable; use 'c2f', our implementation of the same method")
        return pyflow_flow(ref, moving, **options)
    if method in ("dis", "deepflow", "tvl1"):
        from lodetools.flow import opencv

        return getattr(opencv, f"{method}_flow")(ref, moving, **options)
    raise BadConfig(f"unknown flow method {method!r} (choose from {', '.join(METHODS)})")


def endpoint_error(flow: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean end-point error ``mean |flow - truth|_2`` over ``valid`` pixels (all when None)."""
    err = np.sqrt(((np.asarray(flow, np.float64) - np.asarray(truth, np.float64)) ** 2).sum(-1))
    if valid is not None:
        err = err[np.asarray(valid, bool)]
    return float(err.mean()) if err.size else float("nan")


__all__ = ["METHODS", "available_methods", "estimate_flow", "endpoint_error"]
