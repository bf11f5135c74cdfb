"""Photometric alignment of a blur RAW to its sharp partner (ReLoBlur Eqs. (6)-(7)).

``beta_c = mean(sharp_c) / mean(blur_c)`` per colour channel c (Eq. (6)) and
``blur'_c = beta_c * blur_c`` (Eq. (7)), on colour-corrected Bayer RAW.

The paper takes whole-image means (``region='full'``). Moving objects bias
them: the long exposure spreads an object over a larger area and uncovers
different background than the short one. ``region='static'`` takes the
means only over the static background, found where the two images agree:
both are binned per Bayer quad, the blur is registered to the sharp image
by a global affine map (OpenCV ECC; the two cameras are misaligned by a few
pixels, which biases whole-image means near the borders), both are
smoothed, and quads whose channel ratios depart from the current beta by
more than a robust threshold are dropped; beta and the mask are refined a
few times. On the synthetic rig the static
estimate is the more accurate one (see ``docs/commands/develop.md``), so it
is the default of ``lodetools develop``; ``full`` remains the paper's.

References
----------
.. [1] H. Li et al., "Real-World Deep Local Motion Deblurring", AAAI 2023,
   section "Photometrical Alignment", Eqs. (6)-(7).
"""

from __future__ import annotations

import cv2
import numpy as np

from lodetools.errors import BadConfig, BadInput
from lodetools.io.bayer import channel_map

REGIONS = ("static", "full")


def quad_channels(bayer: np.ndarray, pattern: str) -> np.ndarray:
    """Bin a Bayer image per 2x2 quad into ``(H/2, W/2, 3)`` R, G (mean of both), B."""
    h, w = bayer.shape
    h2, w2 = h // 2 * 2, w // 2 * 2
    b = np.asarray(bayer[:h2, :w2], np.float32)
    cmap = channel_map((2, 2), pattern)
    out = np.zeros((h2 // 2, w2 // 2, 3), np.float32)
    count = np.zeros(3, np.float32)
    for i in range(2):
        for j in range(2):
            c = cmap[i, j]
            out[:, :, c] += b[i::2, j::2]
            count[c] += 1
    return out / count


def register_quads(blur_q: np.ndarray, sharp_q: np.ndarray, *, iterations: int = 100) -> np.ndarray:
    """Global affine map between two quad-binned images (OpenCV ECC, MOTION_AFFINE).

    Used only to compare the two cameras' static backgrounds (beta, QA);
    the dense geometric alignment is ``lodetools align``'s job.

    Parameters
    ----------
    blur_q, sharp_q : ndarray (h, w, 3)
        From :func:`quad_channels`. ECC is insensitive to the brightness gain.

    Returns
    -------
    ndarray float32 (2, 3)
        ``W`` with ``blur(W q) ~ sharp(q)`` in quad coordinates (the phase
        correlation translation if ECC does not converge at all).
    """
    a = np.ascontiguousarray(sharp_q.mean(2), np.float32)
    b = np.ascontiguousarray(blur_q.mean(2), np.float32)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iterations, 1e-6)

    def ecc(w0, mask=None):
        try:
            return cv2.findTransformECC(a, b, np.asarray(w0, np.float32), cv2.MOTION_AFFINE, crit, mask, 5)[1]
        except cv2.error:
            return None

    w = ecc(np.eye(2, 3))  # converges for shifts of a few quads (the usual rig)
    # a phase-correlation translation checks it; when they disagree (a large
    # shift), restart ECC there, comparing only where the blur stays in frame
    win = cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(a, b, win)
    if w is not None and abs(w[0, 2] - dx) <= 2 and abs(w[1, 2] - dy) <= 2:
        return w
    init = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    m = int(np.ceil(max(abs(dx), abs(dy)))) + 4 + int(0.02 * max(a.shape))
    mask = np.zeros(a.shape, np.uint8)
    mask[m:a.shape[0] - m, m:a.shape[1] - m] = 1
    w = ecc(init, mask) if mask.any() else None
    return init if w is None else w


def warp_quads(img: np.ndarray, warp: np.ndarray) -> np.ndarray:
    """Resample ``img`` (h, w, C) at ``warp`` (from :func:`register_quads`) onto the sharp grid."""
    h, w = img.shape[:2]
    return cv2.warpAffine(np.asarray(img, np.float32), np.asarray(warp, np.float32), (w, h),
                          flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def quad_warp_to_pixels(warp: np.ndarray) -> np.ndarray:
    """The full-resolution pixel version of a quad-coordinate affine map.

    A quad ``q`` covers pixels ``2q .. 2q+1``, centred at ``p = 2q + 0.5``.
    """
    w = np.asarray(warp, np.float64)
    A = w[:, :2]
    t = 2.0 * w[:, 2] + 0.5 - A @ np.array([0.5, 0.5])
    return np.hstack([A, t[:, None]]).astype(np.float32)


def static_mask(blur_q: np.ndarray, sharp_q: np.ndarray, beta: np.ndarray, *,
                sigma: float = 1.5, k: float = 4.0) -> np.ndarray:
    """Quads where the beta-aligned blur agrees with the sharp image (the static background).

    Parameters
    ----------
    blur_q, sharp_q : ndarray (h, w, 3)
        Quad-binned, geometrically registered images.
    beta : ndarray (3,)
        Current estimate.
    sigma : float
        Gaussian smoothing (in quads) before comparing, against noise.
    k : float
        Threshold in robust standard deviations (1.4826 x MAD) of the log ratio.

    Returns
    -------
    ndarray bool (h, w)
    """
    return _agreement(*_log_smoothed(blur_q, sharp_q, sigma), beta, k)


def _log_smoothed(blur_q, sharp_q, sigma):
    """Logs of the smoothed quad images, and where both carry signal."""
    lb = cv2.GaussianBlur(np.asarray(blur_q, np.float32), (0, 0), sigma)
    ls = cv2.GaussianBlur(np.asarray(sharp_q, np.float32), (0, 0), sigma)
    floor = np.float32(max(1e-3, 0.02 * float(np.median(ls[::2, ::2]))))
    valid = (ls.min(2) > floor) & (lb.min(2) > floor)  # dark quads carry no signal
    return cv2.log(np.maximum(lb, floor)), cv2.log(np.maximum(ls, floor)), valid


def _agreement(log_b, log_s, valid, beta, k):
    d = log_b - log_s + np.log(np.asarray(beta, np.float32))
    mask = valid.copy()
    for c in range(3):
        dc = d[::2, ::2, c][mask[::2, ::2]] if mask[::2, ::2].any() else d[::2, ::2, c].ravel()
        med = np.median(dc)
        mad = 1.4826 * np.median(np.abs(dc - med)) + 1e-6
        mask &= np.abs(d[:, :, c] - med) <= k * mad
    return mask


def estimate_beta(blur: np.ndarray, sharp: np.ndarray, pattern: str, *, region: str = "static",
                  warp: np.ndarray | None = None, iterations: int = 3, saturated=None, margin: float = 0.04
                  ) -> tuple[np.ndarray, dict]:
    """The brightness correction coefficient beta per channel (ReLoBlur Eq. (6)).

    Parameters
    ----------
    blur, sharp : ndarray (H, W)
        Colour-corrected, black-subtracted Bayer RAW of one pair (same pattern).
    pattern : str
    region : {'static', 'full'}
        ``full``: whole-image channel means (the paper's Eq. (6)).
        ``static``: the blur is first registered to the sharp image (global
        affine, ``warp`` or ECC), then means are taken over the quads where
        the two agree, away from the borders (see the module docstring).
    warp : ndarray (2, 3), optional
        Quad-coordinate affine from :func:`register_quads` (e.g. estimated
        once per scene on its static reference pair); estimated when None.
    iterations : int
        Refinements of the static mask.
    saturated : ndarray bool (H, W), optional
        Clipped pixels of either image (excluded from the static region).
    margin : float
        Border fraction left out in ``static`` mode (misalignment).

    Returns
    -------
    beta : ndarray (3,)
        ``mean(sharp) / mean(blur)`` per channel R, G, B.
    info : dict
        ``static_fraction`` (of the image area used) and ``warp`` (static only).

    Examples
    --------
    A blur image 0.8 / 1.0 / 1.25 times as bright as the sharp one per channel
    gets the inverse gains:

    >>> rng = np.random.default_rng(0)
    >>> sharp = rng.uniform(0.2, 0.8, (32, 48)).astype(np.float32)
    >>> blur = apply_beta(sharp, [0.8, 1.0, 1.25], "RGGB")
    >>> beta, _ = estimate_beta(blur, sharp, "RGGB", region="full")
    >>> beta.astype(float).round(3).tolist()
    [1.25, 1.0, 0.8]
    """
    if region not in REGIONS:
        raise BadConfig(f"bad beta region {region!r}: expected static or full")
    if blur.shape != sharp.shape:
        raise BadInput("blur/sharp size mismatch while estimating beta")
    qb, qs = quad_channels(blur, pattern), quad_channels(sharp, pattern)
    beta = qs.reshape(-1, 3).mean(0, dtype=np.float64) / np.maximum(qb.reshape(-1, 3).mean(0, dtype=np.float64), 1e-12)
    if region == "full":
        return beta, {"static_fraction": 1.0}
    if warp is None:
        warp = register_quads(qb, qs)
    qbw = warp_quads(qb, warp)
    h, w = qs.shape[:2]
    m = max(2, int(round(margin * max(h, w))))
    keep = np.zeros((h, w), bool)
    keep[m:h - m, m:w - m] = True
    if saturated is not None:
        sat = quad_channels(saturated.astype(np.float64), pattern).max(2) > 0
        sat = cv2.dilate(sat.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        keep &= ~sat
    mask = keep
    logs = _log_smoothed(qbw, qs, 1.5)
    for _ in range(max(1, iterations)):
        mask = keep & _agreement(*logs, beta, 4.0)
        if not mask.any():
            raise BadInput("no static background left to estimate beta (blur and sharp disagree everywhere)")
        beta = qs[mask].astype(np.float64).mean(0) / np.maximum(qbw[mask].astype(np.float64).mean(0), 1e-12)
    return beta, {"static_fraction": float(mask.mean()), "warp": np.asarray(warp).tolist()}


def apply_beta(bayer: np.ndarray, beta, pattern: str) -> np.ndarray:
    """``blur' = beta * blur`` per pixel with the beta of its channel (ReLoBlur Eq. (7))."""
    b = np.asarray(beta, np.float32)
    return (np.asarray(bayer, np.float32) * b[channel_map(bayer.shape, pattern)]).astype(np.float32)
