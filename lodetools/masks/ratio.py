"""Blurred-area ratio: how much of a frame moves (LODE section 5.1, Figure 3).

For each video, a short run of consecutive frames spanning the same time in
every dataset (2 frames at 120 fps, 3 at 240/250 fps: about 1/120 s) is taken;
the optical flow between its first and last frame is computed with OpenCV's
DeepFlow; the blurred-area ratio at threshold ``t`` is the fraction of pixels
whose flow norm exceeds ``t`` pixels, for ``t`` from 0 to 5 in steps of 0.1.
Averaged per dataset this gives one curve of LODE Figure 3: global-blur
datasets (camera shake) stay high as ``t`` grows, local-blur ones fall fast.

References
----------
.. [1] Li et al., "Real-World Deep Local Motion Deblurring" (LODE), AAAI 2023,
   section 5.1 and Figure 3.
.. [2] Weinzaepfel et al., "DeepFlow: Large displacement optical flow with deep
   matching", ICCV 2013 (``cv2.optflow.createOptFlow_DeepFlow``).
"""

from __future__ import annotations

import cv2
import numpy as np

#: flow-norm thresholds in pixels: 0 to 5 step 0.1 (LODE Figure 3)
THRESHOLDS = np.round(np.arange(51) * 0.1, 1)


def frames_for_fps(fps: float | None) -> int:
    """How many consecutive frames span about 1/120 s: 2 at 120 fps, 3 at 240/250 fps.

    LODE section 5.1: "2 frames on each 120 fps REDS video and 3 frames on each
    240 fps GOPRO video and 250 fps LODE video". Unknown fps: 3 (LODE).
    """
    if not fps or fps <= 0:
        return 3
    return max(2, int(round(fps / 120.0)) + 1)


def _gray8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.floor(np.clip(img.astype(np.float32) / (65535.0 if img.dtype == np.uint16 else 1.0), 0, 1)
                       * 255 + 0.5).astype(np.uint8)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(img)


def deepflow(frame0: np.ndarray, frame1: np.ndarray) -> np.ndarray:
    """Dense optical flow from ``frame0`` to ``frame1`` with OpenCV DeepFlow.

    Parameters
    ----------
    frame0, frame1 : ndarray
        ``(H, W, 3)`` RGB or ``(H, W)`` gray, uint8 (uint16/float converted).

    Returns
    -------
    ndarray of float32, shape (H, W, 2)
        ``(dx, dy)`` in pixels.
    """
    a, b = _gray8(frame0), _gray8(frame1)
    if a.shape != b.shape:
        raise ValueError(f"frames differ in size: {a.shape} vs {b.shape}")
    return cv2.optflow.createOptFlow_DeepFlow().calc(a, b, None)


def blurred_area_ratio(flow: np.ndarray, thresholds=THRESHOLDS) -> np.ndarray:
    """Fraction of pixels whose flow norm exceeds each threshold (LODE section 5.1).

    ``ratio(t) = #{p : ||flow(p)|| > t} / #pixels``; non-increasing in ``t``.

    Parameters
    ----------
    flow : ndarray, shape (H, W, 2)
    thresholds : array_like
        Increasing thresholds in pixels.

    Returns
    -------
    ndarray of float64, shape (len(thresholds),)

    Examples
    --------
    Half the pixels move 3 px, one of them 6 px:

    >>> flow = np.zeros((4, 4, 2)); flow[:2, :, 0] = 3.0; flow[0, 0] = [0.0, 6.0]
    >>> blurred_area_ratio(flow, [0.5, 3.0, 5.0]).tolist()
    [0.5, 0.0625, 0.0625]
    """
    norm = np.sqrt(np.sum(np.asarray(flow, np.float64) ** 2, axis=-1)).ravel()
    norm.sort()
    t = np.asarray(thresholds, dtype=np.float64)
    # pixels strictly above t = n - (number <= t)
    return (norm.size - np.searchsorted(norm, t, side="right")) / norm.size


def ratio_curve(frames, thresholds=THRESHOLDS) -> np.ndarray:
    """Blurred-area ratio curve of one run of consecutive frames (first to last).

    Parameters
    ----------
    frames : sequence of ndarray
        At least two consecutive frames (see :func:`frames_for_fps`).

    Returns
    -------
    ndarray of float64, shape (len(thresholds),)
    """
    frames = list(frames)
    if len(frames) < 2:
        raise ValueError("need at least two frames")
    return blurred_area_ratio(deepflow(frames[0], frames[-1]), thresholds)
