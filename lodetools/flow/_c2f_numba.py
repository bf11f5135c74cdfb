"""Compiled CPU kernels (numba) for one pyramid level of the c2f flow.

The same algorithm, step for step, as the torch code in
:func:`lodetools.flow._c2f_torch.smooth_flow_sor` (Liu's ``SmoothFlowSOR``: warp,
derivatives of the 0.4/0.6 blend, IRLS weights, red-black block SOR), fused
into loops over contiguous rows so that nothing travels through memory more
often than needed: the torch version issues some 60 tensor operations per
warping iteration and 10 per SOR half-sweep, each a full pass over memory.
The results agree with the torch path to float32 rounding (tested).

Layout of the SOR unknowns: the four 2x2 sub-lattices ``ee, eo, oe, oo``
(pixel ``(2i + a, 2j + b)`` is entry ``(i, j)`` of sub-lattice ``2a + b``),
each padded with a one-pixel halo of zeros. The red colour is ``{ee, oo}``,
black ``{eo, oe}``; every neighbour of a pixel lies in a sub-lattice of the
other colour, at a fixed offset, so each row update is a contiguous loop.

References
----------
.. [1] C. Liu, "Beyond Pixels: Exploring New Representations and Applications
   for Motion Analysis", PhD thesis, MIT, 2009, Appendix A (``OpticalFlow.cpp``).
.. [2] T. Brox, A. Bruhn, N. Papenberg, J. Weickert, "High accuracy optical flow
   estimation based on a theory for warping", ECCV 2004.
"""

from __future__ import annotations

import os

# The parallel kernels run on numba's workqueue layer (lodetools.parallel.use_numba_workqueue), whose
# waiting threads sleep. If a user picks the OpenMP layer, its waiting threads should sleep too
# (spinning waiters burn the cores other threads need on a shared machine); this takes effect only
# if no other library has started an OpenMP runtime in the process yet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba as nb  # noqa: E402
import numpy as np  # noqa: E402

from lodetools.flow import c2f  # noqa: E402

F32 = np.float32
_OPTS = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
#: row-parallel kernels (rows are independent: the result does not depend on the thread count)
_POPTS = dict(_OPTS, parallel=True)

#: Liu's 5-tap derivative filter and pre-smoothing filter (:mod:`lodetools.flow.c2f`)
DERIV = np.array(c2f.DERIV, np.float32)
SMOOTH = np.array(c2f.SMOOTH, np.float32)

# neighbours of each sub-lattice s = 2a + b: (horizontal lattice, left col offset, right col offset,
#                                            vertical lattice, up row offset, down row offset)
_NBR = np.array([[1, -1, 0, 2, -1, 0],    # ee: left/right in eo, up/down in oe
                 [0, 0, 1, 3, -1, 0],     # eo: left/right in ee, up/down in oo
                 [3, -1, 0, 0, 0, 1],     # oe: left/right in oo, up/down in ee
                 [2, 0, 1, 1, 0, 1]],     # oo: left/right in oe, up/down in eo
                np.int64)


@nb.njit(**_OPTS)
def _filter_x(src, taps, out):
    """5-tap correlation along x with replicated borders; src, out (C, H, W)."""
    C, H, W = src.shape
    t0, t1, t2, t3, t4 = taps[0], taps[1], taps[2], taps[3], taps[4]
    for cy in range(C * H):
        row = src[cy // H, cy % H]
        o = out[cy // H, cy % H]
        # shifted slices: every index is the loop counter, so numba skips the negative-index
        # wrap-around check and the loop is vectorised
        r0, r1, r2, r3, r4, oi = row[0:W - 4], row[1:W - 3], row[2:W - 2], row[3:W - 1], row[4:W], o[2:W - 2]
        for x in range(W - 4):
            oi[x] = t0 * r0[x] + t1 * r1[x] + t2 * r2[x] + t3 * r3[x] + t4 * r4[x]
        for x in (0, 1, W - 2, W - 1):
            if x < 0 or x >= W or (x >= 2 and x < W - 2):
                continue
            o[x] = (t0 * row[min(max(x - 2, 0), W - 1)] + t1 * row[min(max(x - 1, 0), W - 1)]
                    + t2 * row[x] + t3 * row[min(x + 1, W - 1)] + t4 * row[min(x + 2, W - 1)])


@nb.njit(**_OPTS)
def _filter_y(src, taps, out):
    """5-tap correlation along y with replicated borders; src, out (C, H, W)."""
    C, H, W = src.shape
    t0, t1, t2, t3, t4 = taps[0], taps[1], taps[2], taps[3], taps[4]
    for cy in range(C * H):
        c, y = cy // H, cy % H
        o = out[c, y]
        r0 = src[c, max(y - 2, 0)]
        r1 = src[c, max(y - 1, 0)]
        r2 = src[c, y]
        r3 = src[c, min(y + 1, H - 1)]
        r4 = src[c, min(y + 2, H - 1)]
        for x in range(W):
            o[x] = t0 * r0[x] + t1 * r1[x] + t2 * r2[x] + t3 * r3[x] + t4 * r4[x]


@nb.njit(**_OPTS)
def _smooth(src, tmp, out):
    _filter_x(src, SMOOTH, tmp)
    _filter_y(tmp, SMOOTH, out)


@nb.njit(**_OPTS)
def _warp_row(y, moving, ref, flow, out):
    """Row y of :func:`_warp`."""
    C, H, W = moving.shape
    one = F32(1.0)
    wm1 = F32(W - 1)
    hm1 = F32(H - 1)
    idx = np.empty(W, np.int64)
    sx = np.empty(W, np.int64)
    sy = np.empty(W, np.int64)
    ax = np.empty(W, np.float32)
    ay = np.empty(W, np.float32)
    ins = np.empty(W, np.bool_)
    fx_row = flow[0, y]
    fy_row = flow[1, y]
    for x in range(W):
        fx = F32(x) + fx_row[x]
        fy = F32(y) + fy_row[x]
        inside = fx >= 0 and fx <= wm1 and fy >= 0 and fy <= hm1
        ins[x] = inside
        if not inside:
            fx = F32(0.0)
            fy = F32(0.0)
        x0 = int(fx)
        y0 = int(fy)
        ax[x] = fx - F32(x0)
        ay[x] = fy - F32(y0)
        idx[x] = y0 * W + x0
        sx[x] = 1 if x0 < W - 1 else 0
        sy[x] = W if y0 < H - 1 else 0
    for c in range(C):
        m = moving[c].reshape(-1)
        o = out[c, y]
        r = ref[c, y]
        for x in range(W):
            i0 = idx[x]
            i1 = i0 + sy[x]
            a = ax[x]
            top = (one - a) * m[i0] + a * m[i0 + sx[x]]
            bot = (one - a) * m[i1] + a * m[i1 + sx[x]]
            v = (one - ay[x]) * top + ay[x] * bot
            o[x] = v if ins[x] else r[x]


@nb.njit(**_POPTS)
def _warp(moving, ref, flow, out):
    """Liu's ``warpFL``: bilinear samples of ``moving`` (C, H, W) at x + flow; outside -> ``ref``."""
    for y in nb.prange(moving.shape[1]):
        _warp_row(y, moving, ref, flow, out)


@nb.njit(**_OPTS)
def _blend(f1s, w2, blend, it):
    """Liu's getDxs inputs: the 0.4/0.6 blend and the temporal difference; all (C, H, W)."""
    C, H, W = f1s.shape
    for cy in range(C * H):
        c, y = cy // H, cy % H
        a, b, bl, dt = f1s[c, y], w2[c, y], blend[c, y], it[c, y]
        for x in range(W):
            bl[x] = F32(0.4) * a[x] + F32(0.6) * b[x]
            dt[x] = b[x] - a[x]


@nb.njit(**_OPTS)
def _smoothness_weights(y, flow, d, alpha, wx, wy):
    """Row y of alpha * phi on the edges to the right (wx) and below (wy) of each pixel; all (., H, W).

    phi = 0.5 / sqrt(|grad (flow + d)|^2 + eps^2) with forward differences, 0 on
    the last column / row (Liu's ``dx``, ``dy`` and ``Laplacian`` weights).
    """
    H, W = wx.shape
    eps2 = F32(0.001 ** 2)   # Liu's epsilon^2 of both robust penalties
    half = F32(0.5)
    a_ = F32(alpha)
    ss = np.zeros(W, np.float32)
    c0 = flow[0, y] + d[0, y]
    c1 = flow[1, y] + d[1, y]
    a0, a1, b0, b1 = c0[1:W], c1[1:W], c0[0:W - 1], c1[0:W - 1]
    for x in range(W - 1):
        g0 = a0[x] - b0[x]
        g1 = a1[x] - b1[x]
        ss[x] = g0 * g0 + g1 * g1
    if y < H - 1:
        n0, n1, e0, e1 = flow[0, y + 1], flow[1, y + 1], d[0, y + 1], d[1, y + 1]
        for x in range(W):
            g0 = n0[x] + e0[x] - c0[x]
            g1 = n1[x] + e1[x] - c1[x]
            ss[x] += g0 * g0 + g1 * g1
    wxr = wx[y]
    for x in range(W):
        wxr[x] = a_ * (half / np.sqrt(ss[x] + eps2))
    if y < H - 1:
        wy[y, :] = wxr
    else:
        wy[y, :] = 0.0
    wxr[W - 1] = 0.0


#: rows of the per-row scratch of _coefficient_row packed into K: wl, wr, wu, wd, p, r, q, b1, b2
_PACK = (5, 16, 6, 17, 10, 11, 12, 13, 14)


@nb.njit(**_OPTS)
def _coefficient_row(y, ix, iy, it, flow, d, alpha, K, wx, wy):
    """Row y of :func:`_coefficients`."""
    C, H, W = ix.shape
    eps2 = F32(0.001 ** 2)
    inv_c = F32(1.0 / C)
    half = F32(0.5)
    reg = F32(0.05) * F32(alpha)
    rows = np.zeros((18, W), np.float32)
    a11, a12, a22, b1, b2 = rows[0], rows[1], rows[2], rows[3], rows[4]
    wl, wu, l1, l2, fx = rows[5], rows[6], rows[7], rows[8], rows[9]
    p_, r_, q_, c1, c2 = rows[10], rows[11], rows[12], rows[13], rows[14]
    zrow = rows[15]
    d0, d1r = d[0, y], d[1, y]
    for c in range(C):
        gxr, gyr, itr = ix[c, y], iy[c, y], it[c, y]
        for x in range(W):
            # the linearised residual with the current increment (d = 0 at the first IRLS step)
            r = itr[x] + gxr[x] * d0[x] + gyr[x] * d1r[x]
            psi = half / np.sqrt(r * r + eps2)
            pgx = psi * gxr[x]
            pgy = psi * gyr[x]
            a11[x] += pgx * gxr[x]
            a12[x] += pgx * gyr[x]
            a22[x] += pgy * gyr[x]
            b1[x] += pgx * itr[x]
            b2[x] += pgy * itr[x]
    wr, wd = wx[y], wy[y]
    rows[16, :] = wr
    rows[17, :] = wd
    wl[1:] = wr[0:W - 1]
    if y > 0:
        wu[:] = wy[y - 1]
    # b = -(data term) - alpha * weighted Laplacian of the current flow, per component:
    # lap(u)_p = sum_n w_pn (u_p - u_n), from the edge fluxes (torch: _weighted_laplacian)
    for comp in range(2):
        f = flow[comp, y]
        up = flow[comp, y - 1] if y > 0 else zrow
        dn = flow[comp, y + 1] if y < H - 1 else zrow
        lap = l1 if comp == 0 else l2
        fn, fp = f[1:W], f[0:W - 1]
        for x in range(W - 1):
            fx[x] = wr[x] * (fn[x] - fp[x])
        fx[W - 1] = 0.0
        lap[0] = -fx[0]
        lo, hi, lp = fx[0:W - 1], fx[1:W], lap[1:W]
        for x in range(W - 1):
            lp[x] = lo[x] - hi[x]
        for x in range(W):
            lap[x] += wu[x] * (f[x] - up[x]) + wd[x] * (f[x] - dn[x])
    for x in range(W):
        c11 = a11[x] * inv_c      # Liu's DImage::collapse averages the channels
        c12 = a12[x] * inv_c
        c22 = a22[x] * inv_c
        diag = wl[x] + wr[x] + wu[x] + wd[x] + reg
        e1 = c11 + diag
        e2 = c22 + diag
        det = e1 * e2 - c12 * c12
        p_[x] = e2 / det
        r_[x] = e1 / det
        q_[x] = -c12 / det
        c1[x] = -b1[x] * inv_c - l1[x]
        c2[x] = -b2[x] * inv_c - l2[x]
    i = y // 2
    for par in range(2):
        sl = (y % 2) * 2 + par
        n = (W - par + 1) // 2
        for k in range(9):
            src = rows[_PACK[k]]
            dst = K[sl, k, i]
            for j in range(n):
                dst[j] = src[2 * j + par]


@nb.njit(**_POPTS)
def _coefficients(ix, iy, it, flow, d, alpha, K, wx, wy):
    """IRLS weights and the SOR system in sub-lattice layout (Liu's ``SmoothFlowSOR``).

    Writes K (4, 9, h, w): weights to the left/right/up/down neighbours (times
    alpha), the inverse of the 2x2 diagonal block (p, r, q) and the right-hand
    side (b1, b2) of every pixel; wx, wy (H, W) are scratch for the smoothness
    weights. Inner loops index only with their counter (shifted slices), so
    they vectorise.
    """
    for y in nb.prange(ix.shape[1]):
        _smoothness_weights(y, flow, d, alpha, wx, wy)
    for y in nb.prange(ix.shape[1]):
        _coefficient_row(y, ix, iy, it, flow, d, alpha, K, wx, wy)


@nb.njit(**_OPTS)
def _update_row(U, K, s, i, nbr, om):
    """Block SOR update of row ``i`` of sub-lattice ``s`` (its neighbours are fixed).

    At pixel p: ``(du, dv) += omega * (A_p^-1 (b_p + sum_n w_pn (du_n, dv_n)) - (du, dv))``
    with the inverse 2x2 block ``A_p^-1 = [[p, q], [q, r]]``.
    """
    w = K.shape[3]
    hn, cl, cr, vn, ru, rd = nbr[s, 0], nbr[s, 1], nbr[s, 2], nbr[s, 3], nbr[s, 4], nbr[s, 5]
    hu = U[hn, 0, i + 1]
    hv = U[hn, 1, i + 1]
    # shifted slices: every index below is the loop counter (vectorised, no wrap-around check)
    hul, hur, hvl, hvr = hu[1 + cl:1 + cl + w], hu[1 + cr:1 + cr + w], hv[1 + cl:1 + cl + w], hv[1 + cr:1 + cr + w]
    uu, uv = U[vn, 0, i + 1 + ru, 1:w + 1], U[vn, 1, i + 1 + ru, 1:w + 1]
    du, dv = U[vn, 0, i + 1 + rd, 1:w + 1], U[vn, 1, i + 1 + rd, 1:w + 1]
    wl, wr, wu, wd = K[s, 0, i], K[s, 1, i], K[s, 2, i], K[s, 3, i]
    p, r, q, b1, b2 = K[s, 4, i], K[s, 5, i], K[s, 6, i], K[s, 7, i], K[s, 8, i]
    tu = U[s, 0, i + 1, 1:w + 1]
    tv = U[s, 1, i + 1, 1:w + 1]
    for j in range(w):
        s1 = b1[j] + wl[j] * hul[j] + wr[j] * hur[j] + wu[j] * uu[j] + wd[j] * du[j]
        s2 = b2[j] + wl[j] * hvl[j] + wr[j] * hvr[j] + wu[j] * uv[j] + wd[j] * dv[j]
        tu[j] += om * (p[j] * s1 + q[j] * s2 - tu[j])
        tv[j] += om * (r[j] * s2 + q[j] * s1 - tv[j])


#: rows between consecutive sweeps of the wavefront, and wavefront steps per parallel block (see _sor)
_LAG = 3
_BLOCK = 24


@nb.njit(**_POPTS)
def _sor(U, K, nbr, sweeps, omega, H, groups):
    """``sweeps`` red-black SOR sweeps from U (4, 2, h + 2, w + 2), as a pipelined wavefront.

    Pixel row y holds red pixels of sub-lattice ee (y even) or oo (y odd) and
    black ones of eo or oe. The plain order is: all red rows, then all black
    rows, sweep after sweep. Here, at step t, sweep k updates its red row
    ``y = t - 3k`` and then its black row ``y - 1``. A red row needs the
    previous sweep's black rows y - 1, y, y + 1, which were updated at steps
    <= t - 1 (and get this sweep's update at later steps); a black row needs
    this sweep's red rows y - 1, y, y + 1, updated at steps <= t. So every
    update sees exactly the values of the plain order: the result is the same
    bit for bit, and the ~3 * sweeps rows in flight stay in cache.

    With ``groups`` = n (the thread count) the sweeps are split into n consecutive groups, and group g
    runs ``_BLOCK`` steps behind group g - 1: in each parallel block, group g
    does steps ``[(b - g) * _BLOCK, (b - g + 1) * _BLOCK)`` of its sweeps. A
    group only reads rows that the groups ahead of it finished in earlier
    blocks, and writes rows at least 2 behind those they work on, so the
    groups never race and the result does not depend on the thread count;
    there is one synchronisation per block, not per row.
    """
    om = F32(omega)
    n = max(1, min(groups, sweeps))
    steps = H + _LAG * sweeps
    nblocks = (steps + _BLOCK - 1) // _BLOCK + n - 1
    for b in range(nblocks):
        for g in nb.prange(n):
            k_lo = sweeps * g // n
            k_hi = sweeps * (g + 1) // n
            t_lo = (b - g) * _BLOCK
            for t in range(max(t_lo, 0), min(t_lo + _BLOCK, steps)):
                for k in range(max(k_lo, (t - H) // _LAG), min(k_hi, t // _LAG + 1)):
                    y = t - _LAG * k
                    if 0 <= y < H:
                        _update_row(U, K, 3 if y % 2 else 0, y // 2, nbr, om)   # red
                    y -= 1
                    if 0 <= y < H:
                        _update_row(U, K, 2 if y % 2 else 1, y // 2, nbr, om)   # black


@nb.njit(**_OPTS)
def _gather(U, d):
    """Sub-lattice unknowns -> full-resolution increment d (2, H, W)."""
    H, W = d.shape[1], d.shape[2]
    for y in range(H):
        s = (y % 2) * 2
        i = y // 2 + 1
        for par in range(2):
            u = U[s + par, 0, i]
            v = U[s + par, 1, i]
            d0 = d[0, y]
            d1 = d[1, y]
            for j in range((W - par + 1) // 2):
                d0[2 * j + par] = u[j + 1]
                d1[2 * j + par] = v[j + 1]


@nb.njit(**_OPTS)
def level_flow(f1, f2, flow, alpha, outer, inner, sor, omega, nbr, threads):
    """One level of Liu's ``SmoothFlowSOR``; refines ``flow`` (2, H, W) in place.

    f1, f2 (C, H, W) float32 reference and moving features; the same steps as
    :func:`lodetools.flow._c2f_torch.smooth_flow_sor`. ``threads``: the number of numba
    threads in use (the SOR pipeline's group count; set by the caller).
    """
    C, H, W = f1.shape
    h, w = (H + 1) // 2, (W + 1) // 2
    tmp = np.empty((C, H, W), np.float32)
    f1s = np.empty((C, H, W), np.float32)
    _smooth(f1, tmp, f1s)
    warped = np.empty((C, H, W), np.float32)
    w2 = np.empty((C, H, W), np.float32)
    blend = np.empty((C, H, W), np.float32)
    ix = np.empty((C, H, W), np.float32)
    iy = np.empty((C, H, W), np.float32)
    it = np.empty((C, H, W), np.float32)
    d = np.zeros((2, H, W), np.float32)
    K = np.zeros((4, 9, h, w), np.float32)
    U = np.zeros((4, 2, h + 2, w + 2), np.float32)
    wx = np.empty((H, W), np.float32)
    wy = np.empty((H, W), np.float32)
    for _ in range(outer):
        _warp(f2, f1, flow, warped)
        _smooth(warped, tmp, w2)
        _blend(f1s, w2, blend, it)
        _filter_x(blend, DERIV, ix)
        _filter_y(blend, DERIV, iy)
        d[:] = 0.0
        for _ in range(inner):
            _coefficients(ix, iy, it, flow, d, alpha, K, wx, wy)
            U[:] = 0.0
            _sor(U, K, nbr, sor, omega, H, threads)
            _gather(U, d)
        flow += d
    return flow
