"""PSNR and SSIM in the BasicSR / MATLAB convention.

References
----------
.. [1] Wang et al., "Image quality assessment: from error visibility to
   structural similarity", IEEE TIP 2004 (SSIM, Eq. (13)).
.. [2] BasicSR ``basicsr/metrics/psnr_ssim.py`` (the field's reference code).
"""

from __future__ import annotations

import cv2
import numpy as np

#: SSIM window: 11x11 gaussian, sigma 1.5 (Wang et al. 2004)
WIN_SIZE = 11
SIGMA = 1.5
#: pixels lost at each border by the valid-region SSIM
SSIM_BORDER = WIN_SIZE // 2


def to_eval_scale(img: np.ndarray, mode: str = "8bit") -> np.ndarray:
    """An image in ``[0, 1]`` as float64 on the 0..255 scale used by the metrics.

    Parameters
    ----------
    img : ndarray
        float in ``[0, 1]`` or uint8.
    mode : {'8bit', 'float'}
        ``'8bit'`` rounds to integers first (round half up, clip), as saved PNGs
        are; ``'float'`` keeps the float values.
    """
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img.astype(np.float64)
    x = np.asarray(img, dtype=np.float64) * 255.0
    if mode == "8bit":
        return np.floor(np.clip(x, 0, 255) + 0.5)
    if mode == "float":
        return x
    raise ValueError(f"mode must be '8bit' or 'float', got {mode!r}")


def _check(pred, gt):
    if pred.shape != gt.shape:
        raise ValueError(f"shape mismatch {pred.shape} vs {gt.shape}")


def psnr(pred: np.ndarray, gt: np.ndarray, *, mode: str = "8bit") -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels.

    ``PSNR = 10 log10(255^2 / mean((pred - gt)^2))`` on the 0..255 scale.

    Parameters
    ----------
    pred, gt : ndarray
        ``(H, W, 3)`` float in ``[0, 1]`` (or uint8).
    mode : {'8bit', 'float'}
        See :func:`to_eval_scale`.

    Returns
    -------
    float
        ``inf`` for identical images.

    Examples
    --------
    Half the pixels off by 25 codes (153 against 128): MSE 312.5, PSNR
    ``10 log10(255^2 / 312.5)``:

    >>> gt = np.full((16, 16, 3), 0.5, np.float32)
    >>> pred = gt.copy(); pred[:8] += 0.1
    >>> round(psnr(pred, gt), 2)
    23.18
    """
    _check(pred, gt)
    return psnr_scaled(to_eval_scale(pred, mode), to_eval_scale(gt, mode))


def psnr_scaled(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`psnr` of two images already on the 0..255 scale (:func:`to_eval_scale`)."""
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 ** 2 / mse))


def gaussian_window(size: int = WIN_SIZE, sigma: float = SIGMA) -> np.ndarray:
    """Normalised 2-D gaussian window (outer product), float64."""
    k = cv2.getGaussianKernel(size, sigma, cv2.CV_64F)
    return k @ k.T


def ssim_map(pred: np.ndarray, gt: np.ndarray, *, mode: str = "8bit") -> np.ndarray:
    """Per-pixel SSIM over the valid region, averaged over channels.

    Wang et al. 2004, Eq. (13), with an 11x11 gaussian window (sigma 1.5),
    ``c1 = (0.01 * 255)^2``, ``c2 = (0.03 * 255)^2``, population statistics.

    Returns
    -------
    ndarray of float64, shape (H - 10, W - 10)
    """
    _check(pred, gt)
    return ssim_map_scaled(to_eval_scale(pred, mode), to_eval_scale(gt, mode))


def ssim_map_scaled(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`ssim_map` of two images already on the 0..255 scale (:func:`to_eval_scale`).

    One channel at a time, in place: five separable gaussian filters
    (``cv2.sepFilter2D``, float64, reflected border, valid region kept) and
    the Eq. (13) arithmetic in the order ``((2 mx my + c1) (2 sxy + c2)) /
    ((mx^2 + my^2 + c1) (sxx + syy + c2))``, channels averaged as
    ``(m_0 + m_1 + m_2) / 3``.

    Parameters
    ----------
    a, b : ndarray of float64, (H, W, C) or (H, W)

    Returns
    -------
    ndarray of float64, shape (H - 10, W - 10)
    """
    if a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    if min(a.shape[:2]) < WIN_SIZE:
        raise ValueError(f"SSIM needs images of at least {WIN_SIZE}x{WIN_SIZE}, got {a.shape[:2]}")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(WIN_SIZE, SIGMA, cv2.CV_64F)  # separable: outer(k, k) is the window
    r = SSIM_BORDER

    def f(z):
        return cv2.sepFilter2D(z, -1, k, k, borderType=cv2.BORDER_REFLECT)[r:-r, r:-r]

    acc = None
    for c in range(a.shape[2]):
        x, y = np.ascontiguousarray(a[:, :, c]), np.ascontiguousarray(b[:, :, c])
        mx, my = f(x), f(y)
        sxx, syy, sxy = f(x * x), f(y * y), f(x * y)
        num = mx * my
        sxy -= num
        sxy *= 2
        sxy += c2  # 2 sxy + c2
        num *= 2
        num += c1
        num *= sxy  # (2 mx my + c1) (2 sxy + c2)
        mx *= mx
        my *= my
        sxx -= mx
        syy -= my
        sxx += syy
        sxx += c2  # sxx + syy + c2
        mx += my
        mx += c1
        mx *= sxx  # (mx^2 + my^2 + c1) (sxx + syy + c2)
        num /= mx
        if acc is None:
            acc = num
        else:
            acc += num
    return acc / a.shape[2]


def ssim(pred: np.ndarray, gt: np.ndarray, *, mode: str = "8bit") -> float:
    """Mean SSIM (MATLAB/BasicSR convention; see :func:`ssim_map`).

    Examples
    --------
    >>> x = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    >>> round(ssim(x, x), 4), round(ssim(np.clip(x + 0.05, 0, 1), x), 4)
    (1.0, 0.9952)
    """
    return float(np.mean(ssim_map(pred, gt, mode=mode)))
