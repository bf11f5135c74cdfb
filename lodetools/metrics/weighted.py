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

from lodetools.metrics.psnr_ssim import (SSIM_BORDER, psnr_scaled, ssim_map, ssim_map_scaled,
                                         to_eval_scale)


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
    return weighted_psnr_scaled(to_eval_scale(pred, mode), to_eval_scale(gt, mode), m)


def weighted_psnr_scaled(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
    """:func:`weighted_psnr` of images on the 0..255 scale and a float 0/1 mask with ``sum(m) > 0``."""
    d2 = ((a - b) / 255.0) ** 2
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
    if m[SSIM_BORDER:-SSIM_BORDER, SSIM_BORDER:-SSIM_BORDER].sum() == 0:
        return float("nan")
    return weighted_ssim_of_map(ssim_map(pred, gt, mode=mode), m)


def weighted_ssim_of_map(smap: np.ndarray, m: np.ndarray) -> float:
    """:func:`weighted_ssim` from the SSIM map (:func:`ssim_map`) and the float 0/1 mask (``nan`` if empty)."""
    r = SSIM_BORDER
    mc = m[r:-r, r:-r]
    den = mc.sum()
    return float(np.sum(smap * mc) / den) if den else float("nan")


def image_scores(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None,
                 metrics=("psnr", "ssim", "psnrw", "ssimw"), *, mode: str = "8bit") -> dict:
    """PSNR, SSIM and their mask-weighted forms of one image, each image quantised once, one SSIM map.

    The values equal :func:`~lodetools.metrics.psnr`,
    :func:`~lodetools.metrics.ssim`, :func:`weighted_psnr` and
    :func:`weighted_ssim` called one by one (same conventions, same
    arithmetic), at the cost of one quantisation and one SSIM map.

    Parameters
    ----------
    pred, gt : ndarray
        ``(H, W, 3)`` float in ``[0, 1]`` or uint8 (see
        :func:`~lodetools.metrics.psnr_ssim.to_eval_scale`).
    mask : ndarray, optional
        The local-blur mask ``(H, W)`` for the weighted metrics (``nan``
        without one).
    metrics : sequence of {'psnr', 'ssim', 'psnrw', 'ssimw'}
    mode : {'8bit', 'float'}

    Returns
    -------
    dict
        metric name -> float.

    Examples
    --------
    >>> gt = np.full((16, 16, 3), 0.5, np.float32)
    >>> pred = gt.copy(); pred[:8] += 0.1
    >>> mask = np.zeros((16, 16), bool); mask[:8] = True
    >>> {k: round(v, 2) for k, v in image_scores(pred, gt, mask, ("psnr", "psnrw")).items()}
    {'psnr': 23.18, 'psnrw': 20.17}
    """
    unknown = set(metrics) - {"psnr", "ssim", "psnrw", "ssimw"}
    if unknown:
        raise ValueError(f"unknown metric(s) {sorted(unknown)}")
    if pred.shape != gt.shape:
        raise ValueError(f"shape mismatch {pred.shape} vs {gt.shape}")
    a, b = to_eval_scale(pred, mode), to_eval_scale(gt, mode)
    m = _mask01(mask, pred.shape) if mask is not None else None
    out = {}
    smap = ssim_map_scaled(a, b) if {"ssim", "ssimw"} & set(metrics) else None
    for name in metrics:
        if name == "psnr":
            out[name] = psnr_scaled(a, b)
        elif name == "ssim":
            out[name] = float(np.mean(smap))
        elif m is None or m.sum() == 0:
            out[name] = float("nan")
        elif name == "psnrw":
            out[name] = weighted_psnr_scaled(a, b, m)
        else:
            out[name] = weighted_ssim_of_map(smap, m)
    return out
