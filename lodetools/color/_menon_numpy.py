"""Menon (2007) DDFAPD and bilinear demosaicing in vectorised numpy, equal to the numba kernels bit for bit.

:mod:`lodetools.color._menon_numba` is fast on large images, but the first
call in a process costs about 0.6 s before any pixel is computed: ``import
numba`` (about 0.17 s) and numba's first load of a cached kernel (which
imports ``scipy.linalg`` and numba's typing registries, about 0.5 s). On a
small image this module is done long before that, so
:func:`lodetools.color.isp.demosaic` runs it below a size threshold and a
small ``develop`` starts and finishes in a fraction of a second. It imports
only numpy (no numba, no ``scipy.ndimage``: the latter's import alone costs
about 0.2 s).

The results equal the numba kernels' bit for bit (and so colour-demosaicing's
float32 computation, which those equal; ``tests/color/test_menon_numpy.py``):
every operation is the same IEEE operation on the same operands in the same
order. Each convolution is accumulated in float64 and rounded to float32, as
``scipy.ndimage`` does, with its ``mirror`` border (``d c b | a b c d | c b
a``, numpy's ``reflect``) for Menon's filters, the ``constant`` zero border
for the 5x5 classifier and the ``reflect`` border (``c b a | a b c | c b a``,
numpy's ``symmetric``) for the bilinear demosaic; the sums of the classifier
and of the bilinear kernels are added in the numba loops' order. Every other
operation is a float32 operation on the rounded values.

The in-place updates of the numba kernels run here as one vectorised
assignment per update, in the same order: each update writes the sites of one
kind (say the greens of red rows, ``x[a::2, b::2]``) and reads their
neighbours at an odd distance along a row or a column, which are sites of
another kind (the mirror border keeps the parity; along an axis of length 1 a
site's neighbour is the site itself), so reading all of them before writing
gives what the loops read one pixel at a time.

References
----------
.. [1] D. Menon, S. Andriani, G. Calvagno, "Demosaicing With Directional
   Filtering and a posteriori Decision", IEEE TIP 16(1), 2007.
.. [2] colour-demosaicing, ``colour_demosaicing/bayer/demosaicing/menon2007.py``
   and ``bilinear.py`` (https://github.com/colour-science/colour-demosaicing).
"""

from __future__ import annotations

import numpy as np

F32 = np.float32
F64 = np.float64
#: colour-demosaicing's 3-tap mean ``ones(3) / 3`` in float32, as scipy reads it (float64)
_THIRD = float(np.float32(1.0) / np.float32(3.0))
_WG = np.array([[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]])
_WRB = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])


def _mirror(k: np.ndarray, n: int) -> np.ndarray:
    """scipy.ndimage's ``mirror`` indices (``d c b | a b c d | c b a``) of the positions ``k`` on an axis of ``n``.

    Examples
    --------
    >>> _mirror(np.arange(-3, 7), 4).tolist()
    [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]
    """
    if n == 1:
        return np.zeros_like(k)
    p = 2 * (n - 1)
    k = k % p
    return np.where(k >= n, p - k, k)


def _reflect(k: np.ndarray, n: int) -> np.ndarray:
    """scipy.ndimage's default ``reflect`` indices (``c b a | a b c | c b a``).

    Examples
    --------
    >>> _reflect(np.arange(-2, 5), 3).tolist()
    [1, 0, 0, 1, 2, 2, 1]
    """
    if n == 1:
        return np.zeros_like(k)
    p = 2 * n
    k = k % p
    return np.where(k >= n, p - 1 - k, k)


def _h(x: np.ndarray, a: int, b: int, d: int) -> np.ndarray:
    """``x[i, mirror(j + d)]`` for the sites ``i in a::2``, ``j in b::2``."""
    return x[a::2, _mirror(np.arange(b, x.shape[1], 2) + d, x.shape[1])]


def _v(x: np.ndarray, a: int, b: int, d: int) -> np.ndarray:
    """``x[mirror(i + d), j]`` for the sites ``i in a::2``, ``j in b::2``."""
    return x[_mirror(np.arange(a, x.shape[0], 2) + d, x.shape[0]), b::2]


def _h2(x, a, b):
    """``0.5 * (x[j-1] + x[j+1])`` along the rows (kernels h_0 and k_b), in float64, rounded to float32."""
    return ((_h(x, a, b, -1).astype(F64) + _h(x, a, b, 1)) * 0.5).astype(F32)


def _v2(x, a, b):
    return ((_v(x, a, b, -1).astype(F64) + _v(x, a, b, 1)) * 0.5).astype(F32)


def _h3(x, a, b):
    """The 3-tap mean along the rows, accumulated as scipy's symmetric correlation does, rounded to float32."""
    return (x[a::2, b::2].astype(F64) * _THIRD + (_h(x, a, b, -1).astype(F64) + _h(x, a, b, 1)) * _THIRD).astype(F32)


def _v3(x, a, b):
    return (x[a::2, b::2].astype(F64) * _THIRD + (_v(x, a, b, -1).astype(F64) + _v(x, a, b, 1)) * _THIRD).astype(F32)


def _sites(cm) -> tuple[tuple[int, int], tuple[int, int]]:
    """The (row, column) parities of the red and the blue sites of a Bayer layout ``cm`` (2, 2)."""
    cm = np.asarray(cm)
    red = [(a, b) for a in (0, 1) for b in (0, 1) if cm[a, b] == 0]
    blue = [(a, b) for a in (0, 1) for b in (0, 1) if cm[a, b] == 2]
    if cm.shape != (2, 2) or len(red) != 1 or len(blue) != 1 or red[0][0] == blue[0][0] or red[0][1] == blue[0][1]:
        raise ValueError(f"not a Bayer layout (one R and one B on a diagonal, G elsewhere): {cm.tolist()}")
    return red[0], blue[0]


def menon(cfa: np.ndarray, cm: np.ndarray, refining: bool) -> np.ndarray:
    """Menon's DDFAPD demosaic of a float32 Bayer image, bit for bit :func:`lodetools.color._menon_numba.menon`.

    Parameters
    ----------
    cfa : ndarray float32 (H, W)
    cm : ndarray int (2, 2)
        ``cm[i % 2, j % 2]`` is the channel (0 R, 1 G, 2 B) of pixel (i, j); a Bayer layout.
    refining : bool
        colour-demosaicing's ``refining_step_Menon2007`` (section III-C of [1]_).

    Returns
    -------
    ndarray float32 (H, W, 3)
        RGB, not clipped.

    References
    ----------
    .. [1] D. Menon, S. Andriani, G. Calvagno, "Demosaicing With Directional
       Filtering and a posteriori Decision", IEEE TIP 16(1), 2007.

    Examples
    --------
    >>> rgb = menon(np.full((4, 6), 0.5, np.float32), np.array([[0, 1], [1, 2]]), True)
    >>> rgb.shape, rgb.dtype.name, bool(np.all(rgb == 0.5))
    ((4, 6, 3), 'float32', True)
    """
    (ra, rb), (ba, bb) = _sites(cm)
    cfa = np.ascontiguousarray(cfa, F32)
    h, w = cfa.shape
    greens = ((ra, bb), (ba, rb))  # the greens of the red rows, of the blue rows
    with np.errstate(all="ignore"):  # numba's error model: inf and nan propagate silently
        # directional green estimates (h_0 + h_1 along rows / columns) and colour differences
        p = cfa[_mirror(np.arange(-2, h + 2), h)][:, _mirror(np.arange(-2, w + 2), w)].astype(F64)
        x = p[2:h + 2, 2:w + 2]
        row, col = p[2:h + 2], p[:, 2:w + 2]
        gh = (((row[:, 1:w + 1] + row[:, 3:w + 3]) * 0.5).astype(F32)
              + (x * 0.5 + (row[:, 0:w] + row[:, 4:w + 4]) * -0.25).astype(F32))
        gv = (((col[1:h + 1] + col[3:h + 3]) * 0.5).astype(F32)
              + (x * 0.5 + (col[0:h] + col[4:h + 4]) * -0.25).astype(F32))
        ch, cv = cfa - gh, cfa - gv
        for a, b in greens:
            gh[a::2, b::2] = gv[a::2, b::2] = cfa[a::2, b::2]
            ch[a::2, b::2] = cv[a::2, b::2] = 0.0
        dh = np.abs(ch - ch[:, _mirror(np.arange(w) + 2, w)])
        dv = np.abs(cv - cv[_mirror(np.arange(h) + 2, h)])
        # the classifier: convolve(D_H, k) and convolve(D_V, k.T), zero border, summed in the loops' order
        zh = np.zeros((h + 4, w + 4))
        zv = np.zeros((h + 4, w + 4))
        zh[2:h + 2, 2:w + 2] = dh
        zv[2:h + 2, 2:w + 2] = dv

        def at(z, di, dj):
            return z[2 + di:2 + di + h, 2 + dj:2 + dj + w]

        sh = (at(zh, 2, 0) + at(zh, 2, -2) + at(zh, 1, -1) + 3.0 * at(zh, 0, 0) + 3.0 * at(zh, 0, -2)
              + at(zh, -1, -1) + at(zh, -2, 0) + at(zh, -2, -2))
        sv = (at(zv, 0, 2) + at(zv, -2, 2) + at(zv, -1, 1) + 3.0 * at(zv, 0, 0) + 3.0 * at(zv, -2, 0)
              + at(zv, -1, -1) + at(zv, 0, -2) + at(zv, -2, -2))
        mask = sv.astype(F32) >= sh.astype(F32)
        g = np.where(mask, gh, gv)
        r = np.zeros((h, w), F32)
        b = np.zeros((h, w), F32)
        r[ra::2, rb::2] = cfa[ra::2, rb::2]
        b[ba::2, bb::2] = cfa[ba::2, bb::2]
        # red and blue at the green sites, then at the blue (red) sites
        (gra, grb), (gba, gbb) = greens
        r[gra::2, grb::2] = (g[gra::2, grb::2] + _h2(r, gra, grb)) - _h2(g, gra, grb)
        r[gba::2, gbb::2] = (g[gba::2, gbb::2] + _v2(r, gba, gbb)) - _v2(g, gba, gbb)
        b[gba::2, gbb::2] = (g[gba::2, gbb::2] + _h2(b, gba, gbb)) - _h2(g, gba, gbb)
        b[gra::2, grb::2] = (g[gra::2, grb::2] + _v2(b, gra, grb)) - _v2(g, gra, grb)
        bs = b[ba::2, bb::2]
        r[ba::2, bb::2] = np.where(mask[ba::2, bb::2], (bs + _h2(r, ba, bb)) - _h2(b, ba, bb),
                                   (bs + _v2(r, ba, bb)) - _v2(b, ba, bb))
        rs = r[ra::2, rb::2]
        b[ra::2, rb::2] = np.where(mask[ra::2, rb::2], (rs + _h2(b, ra, rb)) - _h2(r, ra, rb),
                                   (rs + _v2(b, ra, rb)) - _v2(r, ra, rb))
        if refining:
            _refine(r, g, b, mask, (ra, rb), (ba, bb))
        return np.stack((r, g, b), axis=-1)


def _refine(r, g, b, mask, red, blue):
    """colour-demosaicing's ``refining_step_Menon2007``, in place on the planes, in the numba kernel's order."""
    (ra, rb), (ba, bb) = red, blue
    # green at the red and blue sites (from the green of before this step)
    gn = g.copy()
    for plane, (a, c) in ((r, red), (b, blue)):
        dif = plane - g
        m = np.where(mask[a::2, c::2], _h3(dif, a, c), _v3(dif, a, c))
        gn[a::2, c::2] = plane[a::2, c::2] - m
    g[:, :] = gn
    # red at the greens of the blue rows (vertically) and of the blue columns (horizontally); blue alike
    for plane, (va, vb), (ha, hb) in ((r, (ba, rb), (ra, bb)), (b, (ra, bb), (ba, rb))):
        dif = plane - g
        plane[va::2, vb::2] = g[va::2, vb::2] + _v2(dif, va, vb)
        plane[ha::2, hb::2] = g[ha::2, hb::2] + _h2(dif, ha, hb)
    # red at the blue sites and blue at the red sites, from the same R - B
    dif = r - b
    r[ba::2, bb::2] = b[ba::2, bb::2] + np.where(mask[ba::2, bb::2], _h3(dif, ba, bb), _v3(dif, ba, bb))
    b[ra::2, rb::2] = r[ra::2, rb::2] - np.where(mask[ra::2, rb::2], _h3(dif, ra, rb), _v3(dif, ra, rb))


def bilinear(cfa: np.ndarray, cm: np.ndarray) -> np.ndarray:
    """colour-demosaicing's bilinear demosaic in float32, bit for bit :func:`lodetools.color._menon_numba.bilinear`.

    Each channel's masked plane convolved with ``[[0,1,0],[1,4,1],[0,1,0]]/4``
    (green) or ``[[1,2,1],[2,4,2],[1,2,1]]/4`` (red, blue), scipy's
    ``reflect`` border, accumulated in float64 in the numba loop's order.

    Parameters
    ----------
    cfa : ndarray float32 (H, W)
    cm : ndarray int (2, 2)
        ``cm[i % 2, j % 2]`` is the channel (0 R, 1 G, 2 B) of pixel (i, j).

    Returns
    -------
    ndarray float32 (H, W, 3)

    References
    ----------
    .. [1] colour-demosaicing, ``demosaicing_CFA_Bayer_bilinear``
       (https://github.com/colour-science/colour-demosaicing).

    Examples
    --------
    A flat image: 1 inside; at the border the ``reflect`` border repeats the
    edge samples, which have the other parity, so the weights do not sum to 1
    there (as in colour-demosaicing):

    >>> bilinear(np.ones((4, 4), np.float32), np.array([[0, 1], [1, 2]]))[..., 0].tolist()
    [[2.25, 1.5, 1.5, 0.75], [1.5, 1.0, 1.0, 0.5], [1.5, 1.0, 1.0, 0.5], [0.75, 0.5, 0.5, 0.25]]
    """
    cfa = np.ascontiguousarray(cfa, F32)
    cm = np.asarray(cm)
    h, w = cfa.shape
    ri, ci = _reflect(np.arange(-1, h + 1), h), _reflect(np.arange(-1, w + 1), w)
    p = cfa[ri][:, ci].astype(F64)
    chan = cm[(ri & 1)[:, None], (ci & 1)[None, :]]  # the channel of each padded site (the border flips parity)
    out = np.empty((h, w, 3), F32)
    with np.errstate(all="ignore"):
        for c in range(3):
            k = _WG if c == 1 else _WRB
            plane = np.where(chan == c, p, 0.0)  # the other channels' sites add nothing (+0.0)
            acc = np.zeros((h, w))
            for a in range(3):
                for d in range(3):
                    acc += k[a, d] * plane[a:a + h, d:d + w]
            out[..., c] = acc
    return out
