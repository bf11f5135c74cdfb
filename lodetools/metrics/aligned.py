"""Aligned PSNR/SSIM by the RealBlur protocol.

The prediction is scaled in intensity to the ground truth, registered to it
with an ECC homography, and PSNR/SSIM are computed over the pixels the warp
covers. ReLoBlur reports this as PSNRa, because the sharp image is not exactly
at the temporal centre of a moving object's track.

References
----------
.. [1] Rim et al., "Real-World Blur Dataset for Learning and Benchmarking
   Deblurring Algorithms", ECCV 2020 (and its ``evaluation`` code).
"""

from __future__ import annotations

import cv2
import numpy as np

from lodetools.metrics.psnr_ssim import SSIM_BORDER, ssim_map, to_eval_scale


def ecc_homography(gt: np.ndarray, pred: np.ndarray, *, iterations: int = 100,
                   gauss_filt_size: int = 5) -> tuple[np.ndarray, bool]:
    """ECC homography taking ``gt`` coordinates to ``pred`` coordinates.

    ``cv2.findTransformECC`` (MOTION_HOMOGRAPHY, 100 iterations, eps 0,
    gaussFiltSize 5) on grayscale, as RealBlur.

    Returns
    -------
    warp : ndarray float32 (3, 3)
    converged : bool
        False if ECC failed (the identity is returned).
    """
    g1 = cv2.cvtColor(gt.astype(np.float32), cv2.COLOR_RGB2GRAY)
    g2 = cv2.cvtColor(pred.astype(np.float32), cv2.COLOR_RGB2GRAY)
    warp = np.eye(3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, 0)
    try:
        _, warp = cv2.findTransformECC(g1, g2, warp, cv2.MOTION_HOMOGRAPHY, criteria, None, gauss_filt_size)
        return warp, True
    except cv2.error:
        return np.eye(3, dtype=np.float32), False


def aligned_metrics(pred: np.ndarray, gt: np.ndarray, *, mode: str = "8bit") -> dict:
    """Aligned PSNR and SSIM (RealBlur protocol).

    1. ``pred`` is scaled by ``sum(gt * pred) / sum(pred^2)`` (intensity matching);
    2. an ECC homography registers it to ``gt`` (:func:`ecc_homography`);
    3. it is warped with INTER_CUBIC + WARP_INVERSE_MAP, BORDER_REFLECT, and a
       validity mask is the warp of ones (INTER_NEAREST, zero border);
    4. PSNR = 10 log10(1 / (sum(mask * d^2) / sum(mask))) on ``[0, 1]`` over
       channels, SSIM = mean of the SSIM map over the (5 px cropped) mask.

    Parameters
    ----------
    pred, gt : ndarray float (H, W, 3) in [0, 1]
    mode : {'8bit', 'float'}
        Rounding of both images before alignment (see
        :func:`lodetools.metrics.psnr_ssim.to_eval_scale`).

    Returns
    -------
    dict
        ``psnr``, ``ssim``, ``homography`` (3x3 list), ``converged``.
    """
    x = to_eval_scale(gt, mode).astype(np.float32) / 255.0
    z = to_eval_scale(pred, mode).astype(np.float32) / 255.0
    den = float(np.sum(z * z))
    zs = (float(np.sum(x * z)) / den) * z if den > 0 else z
    warp, ok = ecc_homography(x, zs)
    h, w = x.shape[:2]
    zr = cv2.warpPerspective(zs, warp, (w, h), flags=cv2.INTER_CUBIC + cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REFLECT)
    cr = cv2.warpPerspective(np.ones_like(zs), warp, (w, h), flags=cv2.INTER_NEAREST + cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    zr = np.clip(zr, 0, 1) * cr
    xr = x * cr
    err = np.sum((xr.astype(np.float64) - zr) ** 2) / np.sum(cr)
    p = float("inf") if err == 0 else float(10 * np.log10(1.0 / err))
    smap = ssim_map(zr, xr, mode="float")
    m = cr[:, :, 0] if cr.ndim == 3 else cr
    r = SSIM_BORDER
    mc = m[r:-r, r:-r]
    s = float(np.sum(smap * mc) / mc.sum()) if mc.sum() else float("nan")
    return {"psnr": p, "ssim": s, "homography": warp.tolist(), "converged": ok}
