"""Menon (2007) DDFAPD demosaicing as compiled loops (numba), step for step colour-demosaicing's.

The same operations in the same order as ``colour_demosaicing``'s
``demosaicing_CFA_Bayer_Menon2007`` run in float32 (colour-science's default
float dtype set to float32): each convolution is accumulated in float64 and
rounded to float32, as ``scipy.ndimage`` does, with its ``mirror`` border
(``d c b | a b c d | c b a``) and ``constant`` zero border for the 5x5
classifier; every other operation is a float32 operation on the rounded
values. The result equals the library's bit for bit on the tested images
(``tests/pipelines/test_develop.py``), but it runs as a few passes over the image
instead of some 150 full-image numpy/scipy operations, and it releases the
GIL, so two images demosaic on two cores at once.

Every update writes only sites of one kind (say the greens of red rows)
and reads their neighbours at an odd distance along the row or column,
which are sites of another kind (the mirror border keeps the parity), so
the updates run in place.

References
----------
.. [1] D. Menon, S. Andriani, G. Calvagno, "Demosaicing With Directional
   Filtering and a posteriori Decision", IEEE TIP 16(1), 2007.
.. [2] colour-demosaicing, ``colour_demosaicing/bayer/demosaicing/menon2007.py``
   (https://github.com/colour-science/colour-demosaicing).
"""

from __future__ import annotations

import numba as nb
import numpy as np

_OPTS = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
F32 = np.float32
#: colour-demosaicing's 3-tap mean ``ones(3) / 3`` in float32, as scipy reads it (float64)
_THIRD = float(np.float32(1.0) / np.float32(3.0))


@nb.njit(**_OPTS)
def _m(k, n):
    """scipy.ndimage's ``mirror`` index."""
    if n == 1:
        return 0
    p = 2 * (n - 1)
    k = k % p
    return p - k if k >= n else k


@nb.njit(**_OPTS)
def _h2(x, i, j, w):
    """``0.5 * (x[j-1] + x[j+1])`` along a row (kernels h_0 and k_b), in float64."""
    return (np.float64(x[i, _m(j - 1, w)]) + np.float64(x[i, _m(j + 1, w)])) * 0.5


@nb.njit(**_OPTS)
def _v2(x, i, j, h):
    return (np.float64(x[_m(i - 1, h), j]) + np.float64(x[_m(i + 1, h), j])) * 0.5


@nb.njit(**_OPTS)
def _h3(x, i, j, w):
    """The 3-tap mean along a row, accumulated as scipy's symmetric correlation does."""
    return np.float64(x[i, j]) * _THIRD + (np.float64(x[i, _m(j - 1, w)]) + np.float64(x[i, _m(j + 1, w)])) * _THIRD


@nb.njit(**_OPTS)
def _v3(x, i, j, h):
    return np.float64(x[i, j]) * _THIRD + (np.float64(x[_m(i - 1, h), j]) + np.float64(x[_m(i + 1, h), j])) * _THIRD


@nb.njit(**_OPTS)
def _at(d, i, j, h, w):
    if i < 0 or j < 0 or i >= h or j >= w:
        return 0.0
    return np.float64(d[i, j])


@nb.njit(**_OPTS)
def _from_differences(dst, base, cm, chan, rows, mode, mask):
    """``dst = (base + D dst) - D base`` in place at the sites of channel ``chan`` in the rows ``rows[i & 1]``.

    D is the 2-tap mean along the row (``mode`` 0), along the column (1), or
    per pixel along the row where ``mask`` is set and the column elsewhere (2).
    The sites read (at an odd distance) are never written here.
    """
    h, w = dst.shape
    for i in range(h):
        if not rows[i & 1]:
            continue
        for j in range(w):
            if cm[i & 1, j & 1] != chan:
                continue
            if mode == 0 or (mode == 2 and mask[i, j]):
                dst[i, j] = (base[i, j] + F32(_h2(dst, i, j, w))) - F32(_h2(base, i, j, w))
            else:
                dst[i, j] = (base[i, j] + F32(_v2(dst, i, j, h))) - F32(_v2(base, i, j, h))


@nb.njit(**_OPTS)
def menon(cfa, cm, refining):
    """Demosaic ``cfa`` (H, W) float32; ``cm[i % 2, j % 2]`` is the channel (0 R, 1 G, 2 B) of a pixel.

    Returns (H, W, 3) float32 RGB, not clipped.
    """
    h, w = cfa.shape
    row_r = np.zeros(2, np.bool_)
    row_b = np.zeros(2, np.bool_)
    col_r = np.zeros(2, np.bool_)
    col_b = np.zeros(2, np.bool_)
    for a in range(2):
        for b in range(2):
            if cm[a, b] == 0:
                row_r[a] = True
                col_r[b] = True
            elif cm[a, b] == 2:
                row_b[a] = True
                col_b[b] = True
    # directional green estimates (h_0 + h_1 along rows / columns) and colour differences
    gh = np.empty((h, w), F32)
    gv = np.empty((h, w), F32)
    ch = np.zeros((h, w), F32)
    cv = np.zeros((h, w), F32)
    for i in range(h):
        for j in range(w):
            x = cfa[i, j]
            if cm[i & 1, j & 1] == 1:
                gh[i, j] = x
                gv[i, j] = x
                continue
            a0 = F32((np.float64(cfa[i, _m(j - 1, w)]) + np.float64(cfa[i, _m(j + 1, w)])) * 0.5)
            a1 = F32(np.float64(x) * 0.5 + (np.float64(cfa[i, _m(j - 2, w)]) + np.float64(cfa[i, _m(j + 2, w)]))
                     * -0.25)
            gh[i, j] = a0 + a1
            b0 = F32((np.float64(cfa[_m(i - 1, h), j]) + np.float64(cfa[_m(i + 1, h), j])) * 0.5)
            b1 = F32(np.float64(x) * 0.5 + (np.float64(cfa[_m(i - 2, h), j]) + np.float64(cfa[_m(i + 2, h), j]))
                     * -0.25)
            gv[i, j] = b0 + b1
            ch[i, j] = x - gh[i, j]
            cv[i, j] = x - gv[i, j]
    dh = np.empty((h, w), F32)
    dv = np.empty((h, w), F32)
    for i in range(h):
        for j in range(w):
            dh[i, j] = abs(ch[i, j] - ch[i, _m(j + 2, w)])
            dv[i, j] = abs(cv[i, j] - cv[_m(i + 2, h), j])
    # the classifier: convolve(D_H, k) and convolve(D_V, k.T), zero border; G by the smaller gradient
    mask = np.empty((h, w), np.bool_)
    g = np.empty((h, w), F32)
    for i in range(h):
        for j in range(w):
            sh = (_at(dh, i + 2, j, h, w) + _at(dh, i + 2, j - 2, h, w) + _at(dh, i + 1, j - 1, h, w)
                  + 3.0 * _at(dh, i, j, h, w) + 3.0 * _at(dh, i, j - 2, h, w) + _at(dh, i - 1, j - 1, h, w)
                  + _at(dh, i - 2, j, h, w) + _at(dh, i - 2, j - 2, h, w))
            sv = (_at(dv, i, j + 2, h, w) + _at(dv, i - 2, j + 2, h, w) + _at(dv, i - 1, j + 1, h, w)
                  + 3.0 * _at(dv, i, j, h, w) + 3.0 * _at(dv, i - 2, j, h, w) + _at(dv, i - 1, j - 1, h, w)
                  + _at(dv, i, j - 2, h, w) + _at(dv, i - 2, j - 2, h, w))
            mask[i, j] = F32(sv) >= F32(sh)
            g[i, j] = gh[i, j] if mask[i, j] else gv[i, j]
    r = np.zeros((h, w), F32)
    b = np.zeros((h, w), F32)
    for i in range(h):
        for j in range(w):
            c = cm[i & 1, j & 1]
            if c == 0:
                r[i, j] = cfa[i, j]
            elif c == 2:
                b[i, j] = cfa[i, j]
    # red and blue at the green sites, then at the blue (red) sites
    _from_differences(r, g, cm, 1, row_r, 0, mask)
    _from_differences(r, g, cm, 1, row_b, 1, mask)
    _from_differences(b, g, cm, 1, row_b, 0, mask)
    _from_differences(b, g, cm, 1, row_r, 1, mask)
    _from_differences(r, b, cm, 2, row_b, 2, mask)
    _from_differences(b, r, cm, 0, row_r, 2, mask)
    if refining:
        _refine(r, g, b, mask, cm, row_r, row_b, col_r, col_b)
    out = np.empty((h, w, 3), F32)
    for i in range(h):
        for j in range(w):
            out[i, j, 0] = r[i, j]
            out[i, j, 1] = g[i, j]
            out[i, j, 2] = b[i, j]
    return out


@nb.njit(**_OPTS)
def _refine(r, g, b, mask, cm, row_r, row_b, col_r, col_b):
    """colour-demosaicing's ``refining_step_Menon2007``, in place on the planes."""
    h, w = r.shape
    dif = np.empty((h, w), F32)  # R - G, then B - G, then R - B
    # green at the red and blue sites
    gn = g.copy()
    for c, plane in ((0, r), (2, b)):
        for i in range(h):
            for j in range(w):
                dif[i, j] = plane[i, j] - g[i, j]
        for i in range(h):
            for j in range(w):
                if cm[i & 1, j & 1] == c:
                    m = F32(_h3(dif, i, j, w)) if mask[i, j] else F32(_v3(dif, i, j, h))
                    gn[i, j] = plane[i, j] - m
    g[:, :] = gn
    # red and blue at the green sites
    for c, plane, rows, cols in ((0, r, row_b, col_b), (2, b, row_r, col_r)):
        for i in range(h):
            for j in range(w):
                dif[i, j] = plane[i, j] - g[i, j]
        for i in range(h):
            for j in range(w):
                if cm[i & 1, j & 1] == 1 and rows[i & 1]:
                    plane[i, j] = g[i, j] + F32(_v2(dif, i, j, h))
        for i in range(h):
            for j in range(w):
                if cm[i & 1, j & 1] == 1 and cols[j & 1]:
                    plane[i, j] = g[i, j] + F32(_h2(dif, i, j, w))
    # red at the blue sites and blue at the red sites, from the same R - B
    for i in range(h):
        for j in range(w):
            dif[i, j] = r[i, j] - b[i, j]
    for i in range(h):
        for j in range(w):
            if cm[i & 1, j & 1] == 2:
                m = F32(_h3(dif, i, j, w)) if mask[i, j] else F32(_v3(dif, i, j, h))
                r[i, j] = b[i, j] + m
    for i in range(h):
        for j in range(w):
            if cm[i & 1, j & 1] == 0:
                m = F32(_h3(dif, i, j, w)) if mask[i, j] else F32(_v3(dif, i, j, h))
                b[i, j] = r[i, j] - m


@nb.njit(**_OPTS)
def _r(k, n):
    """scipy.ndimage's default ``reflect`` index (``c b a | a b c | c b a``)."""
    if n == 1:
        return 0
    p = 2 * n
    k = k % p
    return p - 1 - k if k >= n else k


@nb.njit(**_OPTS)
def bilinear(cfa, cm):
    """colour-demosaicing's ``demosaicing_CFA_Bayer_bilinear`` in float32: each channel's masked plane
    convolved with ``[[0,1,0],[1,4,1],[0,1,0]]/4`` (green) or ``[[1,2,1],[2,4,2],[1,2,1]]/4`` (red, blue),
    scipy's ``reflect`` border, accumulated in float64. Returns (H, W, 3) float32."""
    h, w = cfa.shape
    wg = np.array([[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]])
    wrb = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    out = np.empty((h, w, 3), F32)
    for i in range(h):
        for j in range(w):
            acc = np.zeros(3)
            for a in range(3):
                ii = _r(i + a - 1, h)
                for b in range(3):
                    jj = _r(j + b - 1, w)
                    c = cm[ii & 1, jj & 1]
                    acc[c] += (wg[a, b] if c == 1 else wrb[a, b]) * np.float64(cfa[ii, jj])
            out[i, j, 0] = acc[0]
            out[i, j, 1] = acc[1]
            out[i, j, 2] = acc[2]
    return out
