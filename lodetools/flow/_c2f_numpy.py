"""One pyramid level of the c2f flow in numpy, equal bit for bit to the compiled kernels.

:func:`level_flow` runs the steps of :func:`lodetools.flow._c2f_numba.level_flow`
(Liu's ``SmoothFlowSOR``: warp, derivatives of the 0.4/0.6 blend, IRLS
weights, red-black block SOR) as whole-array numpy operations, with the same
float32 operations in the same order, so the two give the same bytes (tested).
Both are free of fused multiply-adds and reassociation (numba compiles them
with ``fastmath`` off), so the order of the operations fixes the result.

It exists for start-up, not speed: on a small image it finishes before numba
has loaded its first kernel in a fresh process (about 0.65 s, even with the
compiled kernels cached), while on large images the fused, multi-threaded
numba loops are several times faster. :func:`lodetools.flow.c2f.coarse2fine_flow`
picks between them by size.

Red-black order: every neighbour of a red pixel (sub-lattices ee, oo of the
2x2 pixel-unshuffle) is black (eo, oe) and vice versa, so updating a whole
colour at once, as here, gives the values of any sweep order within the
colour, including the numba kernel's wavefront.

References
----------
.. [1] C. Liu, "Beyond Pixels: Exploring New Representations and Applications
   for Motion Analysis", PhD thesis, MIT, 2009, Appendix A (``OpticalFlow.cpp``).
.. [2] T. Brox, A. Bruhn, N. Papenberg, J. Weickert, "High accuracy optical flow
   estimation based on a theory for warping", ECCV 2004.
"""

from __future__ import annotations

import numpy as np

from lodetools.flow.c2f import DERIV, EPS2, SMOOTH, correlate5

F32 = np.float32
#: neighbours of each sub-lattice s = 2a + b (pixel (2i + a, 2j + b)): (horizontal lattice, left col
#: offset, right col offset, vertical lattice, up row offset, down row offset), as the numba kernels
_NBR = ((1, -1, 0, 2, -1, 0),    # ee: left/right in eo, up/down in oe
        (0, 0, 1, 3, -1, 0),     # eo: left/right in ee, up/down in oo
        (3, -1, 0, 0, 0, 1),     # oe: left/right in oo, up/down in ee
        (2, 0, 1, 1, 0, 1))      # oo: left/right in oe, up/down in eo


def _smooth(x):
    return correlate5(correlate5(x, SMOOTH, -1), SMOOTH, -2)


def warp(moving: np.ndarray, ref: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Liu's ``warpFL``: bilinear samples of ``moving`` (C, H, W) at x + flow (2, H, W); outside -> ``ref``."""
    C, H, W = moving.shape
    fx = np.arange(W, dtype=F32)[None, :] + flow[0]
    fy = np.arange(H, dtype=F32)[:, None] + flow[1]
    inside = (fx >= 0) & (fx <= F32(W - 1)) & (fy >= 0) & (fy <= F32(H - 1))
    fx = np.where(inside, fx, F32(0))
    fy = np.where(inside, fy, F32(0))
    x0 = fx.astype(np.int64)       # truncation toward zero, as int() in the kernel (fx >= 0 here)
    y0 = fy.astype(np.int64)
    ax = fx - x0.astype(F32)
    ay = fy - y0.astype(F32)
    i0 = y0 * W + x0
    sx = (x0 < W - 1).astype(np.int64)
    i1 = i0 + np.where(y0 < H - 1, W, 0)
    m = moving.reshape(C, -1)
    top = (F32(1) - ax) * m[:, i0] + ax * m[:, i0 + sx]
    bot = (F32(1) - ax) * m[:, i1] + ax * m[:, i1 + sx]
    v = (F32(1) - ay) * top + ay * bot
    return np.where(inside, v, ref)


def _smoothness_weights(flow, d, alpha):
    """alpha * phi on the edges to the right (wx) and below (wy) of each pixel, (H, W) each; 0 at the ends."""
    H, W = flow.shape[1:]
    c = flow + d
    ss = np.zeros((H, W), F32)
    g = c[:, :, 1:] - c[:, :, :-1]
    ss[:, :-1] = g[0] * g[0] + g[1] * g[1]
    g = c[:, 1:] - c[:, :-1]
    ss[:-1] += g[0] * g[0] + g[1] * g[1]
    w = F32(alpha) * (F32(0.5) / np.sqrt(ss + F32(EPS2)))
    wy = w.copy()
    wy[-1] = 0
    w[:, -1] = 0
    return w, wy


def _system(ix, iy, it, flow, d, alpha):
    """The per-pixel SOR system as 9 planes (H, W): weights left/right/up/down (times alpha),
    the inverse 2x2 diagonal block (p, r, q) and the right-hand side (b1, b2)."""
    C, H, W = ix.shape
    eps2, half = F32(EPS2), F32(0.5)
    wx, wy = _smoothness_weights(flow, d, alpha)
    a11, a12, a22, b1, b2 = (np.zeros((H, W), F32) for _ in range(5))
    for c in range(C):
        gx, gy, t = ix[c], iy[c], it[c]
        r = t + gx * d[0] + gy * d[1]   # the linearised residual with the current increment
        psi = half / np.sqrt(r * r + eps2)
        pgx = psi * gx
        pgy = psi * gy
        a11 += pgx * gx
        a12 += pgx * gy
        a22 += pgy * gy
        b1 += pgx * t
        b2 += pgy * t
    wl = np.zeros((H, W), F32)
    wl[:, 1:] = wx[:, :-1]
    wu = np.zeros((H, W), F32)
    wu[1:] = wy[:-1]
    # alpha * the weighted Laplacian of the current flow, sum_n w_pn (u_p - u_n), from the edge fluxes
    lap = []
    for f in flow:
        fx = np.zeros((H, W), F32)
        fx[:, :-1] = wx[:, :-1] * (f[:, 1:] - f[:, :-1])
        lp = np.empty((H, W), F32)
        lp[:, 0] = -fx[:, 0]
        lp[:, 1:] = fx[:, :-1] - fx[:, 1:]
        up = np.zeros((H, W), F32)
        up[1:] = f[:-1]
        dn = np.zeros((H, W), F32)
        dn[:-1] = f[1:]
        lp += wu * (f - up) + wy * (f - dn)
        lap.append(lp)
    inv_c = F32(1.0 / C)            # Liu's DImage::collapse averages the channels
    c11, c12, c22 = a11 * inv_c, a12 * inv_c, a22 * inv_c
    diag = wl + wx + wu + wy + F32(0.05) * F32(alpha)
    e1 = c11 + diag
    e2 = c22 + diag
    det = e1 * e2 - c12 * c12
    return (wl, wx, wu, wy, e2 / det, e1 / det, -c12 / det, -b1 * inv_c - lap[0], -b2 * inv_c - lap[1])


def _solve(planes, sweeps, omega):
    """``sweeps`` red-black block SOR sweeps from zero; returns the increment (2, H, W).

    Layout: each sub-lattice s (pixel (2i + a, 2j + b), s = 2a + b) is an
    (h + 2, w + 2) grid with a halo of zeros, stored flat, so that a
    neighbour at row offset ``dr`` and column offset ``dc`` is the same flat
    range shifted by ``dr (w + 2) + dc``. Each colour's two sub-lattices are
    one strided view (their distance in memory is fixed), so a colour step is
    one operation over long contiguous rows: the halo entries are computed too
    and stay 0, because their coefficients are 0 (while the values are finite:
    a diverged, non-finite solve may differ from the kernels' in its NaNs).
    """
    H, W = planes[0].shape
    h, w = (H + 1) // 2, (W + 1) // 2
    wp = w + 2
    n_plane = (h + 2) * wp + 2               # one spare element at each end for the shifted ranges
    lo, n = 1 + wp, h * wp                   # the flat range of grid rows 1 .. h (all columns)
    K = np.zeros((4, 9, h + 2, wp), F32)     # entries outside the image stay 0
    for s in range(4):
        a, b = divmod(s, 2)
        for k, plane in enumerate(planes):
            sub = plane[a::2, b::2]
            K[s, k, 1:1 + sub.shape[0], 1:1 + sub.shape[1]] = sub
    K = K.reshape(4, 9, -1)[:, :, wp:wp + n]
    U = np.zeros((4, 2, n_plane), F32)
    flat = U.reshape(-1)
    item = U.itemsize

    def stacked(lattices, shifts):
        """(2, 2, n) view: entry (k, c, p) is U[lattices[k], c, lo + p + shifts[k]]."""
        a0, a1 = (lattices[k] * 2 * n_plane + lo + shifts[k] for k in (0, 1))
        return np.lib.stride_tricks.as_strided(flat[a0:], shape=(2, 2, n),
                                               strides=((a1 - a0) * item, n_plane * item, item), writeable=True)

    steps = []
    for own in ((0, 3), (1, 2)):             # red (ee, oo), then black (eo, oe)
        nb = [_NBR[s] for s in own]
        Kc = K[list(own)]                     # (2, 9, n)
        neighbours = [stacked([x[0] for x in nb], [x[1] for x in nb]),          # left
                      stacked([x[0] for x in nb], [x[2] for x in nb]),          # right
                      stacked([x[3] for x in nb], [x[4] * wp for x in nb]),     # up
                      stacked([x[3] for x in nb], [x[5] * wp for x in nb])]     # down
        weights = [np.ascontiguousarray(np.broadcast_to(Kc[:, k, None], (2, 2, n))) for k in (0, 1, 2, 3, 6)]
        steps.append((weights[0], neighbours[0], np.ascontiguousarray(Kc[:, 7:9]), weights[1], neighbours[1],
                      weights[2], neighbours[2], weights[3], neighbours[3], np.ascontiguousarray(Kc[:, 4:6]),
                      weights[4], stacked(list(own), [0, 0])))
    om = F32(omega)
    acc = np.empty((2, 2, n), F32)
    flipped = acc[:, ::-1]                   # (s2, s1)
    t = np.empty_like(acc)
    tmp = np.empty_like(acc)
    mul = np.multiply
    for _ in range(sweeps):
        for wl, nl, rhs, wr, nr, wu, nu, wd, nd, pr, q, u in steps:
            # s = b + w_l n_l + w_r n_r + w_u n_u + w_d n_d, in this order
            mul(wl, nl, out=acc)
            acc += rhs
            mul(wr, nr, out=tmp)
            acc += tmp
            mul(wu, nu, out=tmp)
            acc += tmp
            mul(wd, nd, out=tmp)
            acc += tmp
            mul(pr, acc, out=t)              # (p s1 + q s2, r s2 + q s1)
            mul(q, flipped, out=tmp)
            t += tmp
            t -= u
            t *= om                          # u += omega (A^-1 s - u)
            u += t
    grid = U[:, :, 1:1 + (h + 2) * wp].reshape(4, 2, h + 2, wp)[:, :, 1:h + 1, 1:w + 1]
    d = np.empty((2, 2 * h, 2 * w), F32)
    for s in range(4):
        a, b = divmod(s, 2)
        d[:, a::2, b::2] = grid[s]
    return d[:, :H, :W]


def level_flow(f1: np.ndarray, f2: np.ndarray, flow: np.ndarray, alpha: float, outer: int, inner: int,
               sor: int, omega: float) -> np.ndarray:
    """One level of Liu's ``SmoothFlowSOR``; returns the refined flow (2, H, W) float32.

    Parameters
    ----------
    f1, f2 : ndarray
        float32 (C, H, W) reference and moving features.
    flow : ndarray
        float32 (2, H, W) initial flow (dx, dy); refined in place and returned.
    alpha, outer, inner, sor, omega
        Smoothness weight, warping and IRLS iterations, SOR sweeps, relaxation.

    Returns
    -------
    ndarray
        ``flow``, equal bit for bit to :func:`lodetools.flow._c2f_numba.level_flow`'s.
    """
    f1s = _smooth(f1)
    for _ in range(outer):
        w2 = _smooth(warp(f2, f1, flow))
        blend = F32(0.4) * f1s + F32(0.6) * w2
        it = w2 - f1s
        ix, iy = correlate5(blend, DERIV, -1), correlate5(blend, DERIV, -2)
        d = np.zeros_like(flow)
        for _ in range(inner):
            d = np.ascontiguousarray(_solve(_system(ix, iy, it, flow, d, alpha), sor, omega))
        flow += d
    return flow
