"""Weighted PSNR and SSIM over the local-blur mask (ReLoBlur).

The paper writes PSNRw/SSIMw as mask-weighted averages of per-pixel PSNR/SSIM
(ReLoBlur, "Experiments", weighted PSNR and SSIM); the official code computes
the mask-weighted mean squared error and the mask-weighted SSIM map, which is
what is implemented here (the per-pixel PSNR of the paper is undefined where
pixels agree).

References
----------
.. [1] Li et al., "Real-World Deep Local Motion Deblurring", AAAI 2023.
"""

from __future__ import annotations

import numpy as np

from lodetools.metrics.psnr_ssim import SSIM_BORDER, ssim_map, to_eval_scale


def _mask01(mask, shape):
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m.max(axis=2)
    m = (m > 0).astype(np.float64) if m.dtype == bool or m.max() > 1 else m.astype(np.float64)
    if m.shape != tuple(shape[:2]):
        raise ValueError(f"mask shape {m.shape} does not match image {shape[:2]}")
    return m


def weighted_psnr(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, *, mode: str = "8bit") -> float:
    """Mask-weighted PSNR (ReLoBlur official code).

    ``PSNRw = 10 log10(1 / (sum(m * d^2) / sum(m) / 3))`` with ``d`` the RGB
    difference on the ``[0, 1]`` scale (after 8-bit rounding in ``'8bit'`` mode)
    and ``m`` the 0/1 mask. With an all-ones mask this equals :func:`psnr`.

    Returns
    -------
    float
        ``inf`` if the masked pixels agree, ``nan`` for an empty mask.

    Examples
    --------
    Only the masked half, where every pixel is off by 25 codes, counts:

    >>> gt = np.full((16, 16, 3), 0.5, np.float32)
    >>> pred = gt.copy(); pred[:8] += 0.1
    >>> mask = np.zeros((16, 16), bool); mask[:8] = True
    >>> round(weighted_psnr(pred, gt, mask), 2)
    20.17
    """
    m = _mask01(mask, pred.shape)
    if m.sum() == 0:
        return float("nan")
    d2 = ((to_eval_scale(pred, mode) - to_eval_scale(gt, mode)) / 255.0) ** 2
    if d2.ndim == 2:
        d2 = d2[:, :, None]
    mse = np.sum(m[:, :, None] * d2) / m.sum() / d2.shape[2]
    return float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))


def weighted_ssim(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, *, mode: str = "8bit") -> float:
    """Mask-weighted SSIM (ReLoBlur official code).

    ``SSIMw = sum(ssim_map * m') / sum(m')`` where ``m'`` is the mask cropped
    by the 5-pixel valid-region border of the SSIM map.

    Returns
    -------
    float
        ``nan`` if the cropped mask is empty.
    """
    m = _mask01(mask, pred.shape)
    r = SSIM_BORDER
    mc = m[r:-r, r:-r]
    if mc.sum() == 0:
        return float("nan")
    return float(np.sum(ssim_map(pred, gt, mode=mode) * mc) / mc.sum())
