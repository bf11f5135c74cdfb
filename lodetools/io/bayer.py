"""Bayer colour filter arrays: pattern names and the colour index of each pixel.

The four 2x2 Bayer patterns are named by their colours in row-major order
(``RGGB``: R at (0, 0), G at (0, 1) and (1, 0), B at (1, 1)), as libraw and
the DNG ``CFAPattern`` tag do. Colour indices are 0 R, 1 G, 2 B.
"""

from __future__ import annotations

import numpy as np

from lodetools.errors import BadConfig

#: Bayer pattern name -> 2x2 colour indices (0 R, 1 G, 2 B), row-major
PATTERNS = {
    "RGGB": ((0, 1), (1, 2)),
    "BGGR": ((2, 1), (1, 0)),
    "GRBG": ((1, 0), (2, 1)),
    "GBRG": ((1, 2), (0, 1)),
}


def pattern_indices(pattern: str) -> np.ndarray:
    """The 2x2 colour-index array (0 R, 1 G, 2 B) of a Bayer pattern name.

    Raises
    ------
    BadConfig
        For a name that is not RGGB, BGGR, GRBG or GBRG.

    Examples
    --------
    >>> pattern_indices("grbg").tolist()
    [[1, 0], [2, 1]]
    """
    p = str(pattern).upper()
    if p not in PATTERNS:
        raise BadConfig(f"unknown Bayer pattern {pattern!r}: expected one of {', '.join(PATTERNS)}")
    return np.array(PATTERNS[p], dtype=np.int64)


def channel_map(shape: tuple[int, int], pattern: str) -> np.ndarray:
    """Per-pixel colour index (0 R, 1 G, 2 B) of a Bayer image of ``shape = (H, W)``.

    Examples
    --------
    >>> channel_map((3, 4), "RGGB").tolist()
    [[0, 1, 0, 1], [1, 2, 1, 2], [0, 1, 0, 1]]
    """
    h, w = shape
    idx = pattern_indices(pattern)
    return np.tile(idx, ((h + 1) // 2, (w + 1) // 2))[:h, :w]
