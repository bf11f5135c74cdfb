"""Delta-L: relative absolute brightness difference (ReLoBlur appendix Eq. (1))."""

from __future__ import annotations

import numpy as np


def delta_l(sharp: np.ndarray, blur: np.ndarray) -> float:
    """Delta-L between a static sharp background and its blur partner.

    ReLoBlur appendix Eq. (1)::

        DeltaL = sum_xy |l1(x, y) - l2(x, y)| / sum_xy l2(x, y)

    with ``l1`` the sharp and ``l2`` the blurred image. Colour images are
    summed over channels too. Used to measure colour correction and
    photometric alignment on the static reference pair (paper: 2.87 %).

    Parameters
    ----------
    sharp, blur : ndarray
        Same shape, any consistent scale.

    Returns
    -------
    float
        A fraction (0.0287 for 2.87 %).

    Examples
    --------
    >>> sharp = np.full((4, 4), 0.55); blur = np.full((4, 4), 0.5)
    >>> round(delta_l(sharp, blur), 4)
    0.1
    """
    a = np.asarray(sharp, dtype=np.float64)
    b = np.asarray(blur, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    den = b.sum()
    return float(np.abs(a - b).sum() / den) if den > 0 else float("nan")
