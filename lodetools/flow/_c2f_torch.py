"""The torch engine of the c2f flow: one pyramid level of Liu's ``SmoothFlowSOR`` as tensor code.

It runs on any torch device (CUDA when available, through
:func:`lodetools.flow.c2f.coarse2fine_flow` with ``engine='torch'`` or
``'auto'`` on a GPU machine); the pyramid, features and level upsampling are
:mod:`lodetools.flow.c2f`'s (numpy, shared by every engine). The steps and
conventions are described there; on the CPU the compiled engine
(:mod:`lodetools.flow._c2f_numba`) runs the same steps and agrees with this
code to float32 rounding.

Tensor shapes: features (1, C, H, W), flow (2, H, W) as (dx, dy).

References
----------
.. [1] C. Liu, "Beyond Pixels: Exploring New Representations and Applications
   for Motion Analysis", PhD thesis, MIT, 2009, Appendix A (``OpticalFlow.cpp``).
.. [2] T. Brox, A. Bruhn, N. Papenberg, J. Weickert, "High accuracy optical flow
   estimation based on a theory for warping", ECCV 2004.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lodetools.flow.c2f import DERIV, EPS2, SMOOTH


# --------------------------------------------------------------------------- filters
def _sep_filter(x: torch.Tensor, taps, *, axis: str) -> torch.Tensor:
    """Separable 1-D filter (correlation) along x or y with replicated borders. x: (1, C, H, W).

    Written as shifted multiply-adds: on CPU this is several times faster than a
    depthwise ``conv2d`` (oneDNN grouped convolution) for these short taps, and
    the border is replicated with ``cat`` (3-5x faster than ``F.pad(mode='replicate')``).
    """
    r = len(taps) // 2
    if axis == "x":
        n = x.shape[3]
        xp = torch.cat([x[..., :, :1].expand(*x.shape[:-1], r), x, x[..., :, -1:].expand(*x.shape[:-1], r)], -1)
        sl = [xp[..., :, i:i + n] for i in range(len(taps))]
    else:
        n = x.shape[2]
        e = (*x.shape[:-2], r, x.shape[-1])
        xp = torch.cat([x[..., :1, :].expand(e), x, x[..., -1:, :].expand(e)], -2)
        sl = [xp[..., i:i + n, :] for i in range(len(taps))]
    out = None
    for t, v in zip(taps, sl):
        if t == 0:
            continue
        if out is None:
            out = v * t
        else:
            out.add_(v, alpha=t)
    return out


# --------------------------------------------------------------------------- warping
def _base_grid(h: int, w: int, device, dtype):
    ys = torch.arange(h, device=device, dtype=dtype).view(h, 1).expand(h, w)
    xs = torch.arange(w, device=device, dtype=dtype).view(1, w).expand(h, w)
    return xs, ys


def warp_bilinear(moving: torch.Tensor, ref: torch.Tensor, flow: torch.Tensor, grid):
    """Liu's ``warpFL``: moving (1, C, H, W) sampled at x + flow; outside -> ref's value.

    Returns the warped image (1, C, H, W) and the in-frame mask (H, W) bool.
    """
    h, w = flow.shape[1:]
    xs, ys = grid
    x = xs + flow[0]
    y = ys + flow[1]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    gx = x * (2.0 / max(w - 1, 1)) - 1.0 if w > 1 else torch.zeros_like(x)
    gy = y * (2.0 / max(h - 1, 1)) - 1.0 if h > 1 else torch.zeros_like(y)
    g = torch.stack((gx, gy), -1).unsqueeze(0)
    out = F.grid_sample(moving, g, mode="bilinear", padding_mode="border", align_corners=True)
    return torch.where(inside, out, ref), inside


# --------------------------------------------------------------------------- solver
class _RedBlackSOR:
    """Red-black block SOR for the per-level linear system of the flow increment.

    At pixel p the normal equations are (Liu's ``SmoothFlowSOR``)::

        [a11 + c, a12    ] [du]   [b1]          [sum_n w_pn du_n]
        [a12,     a22 + c] [dv] = [b2] + alpha * [sum_n w_pn dv_n]

    with ``c = alpha * (sum_n w_pn + 0.05)``. The grid (padded to even size with
    disconnected pixels) is split into the four 2x2 sub-lattices ee, eo, oe, oo:
    red = {ee, oo}, black = {eo, oe}; every neighbour of a red pixel is black and
    vice versa, so each colour is updated at once.

    Each colour's two sub-lattices are stacked, and the other colour is kept in
    a buffer of three slots (its two sub-lattices plus a copy of the first) whose
    storage offsets make every neighbour (left, right, up, down) of both stacked
    sub-lattices one strided view: a colour update is 10 tensor operations.

    Tensor shapes: coefficients (H, W); unknowns (2, H, W) as (du, dv); stacked
    colour tensors (2 sub-lattices, 2 [du, dv], h, w) with h, w = ceil(H/2), ceil(W/2).
    """

    #: storage offsets (row, col) of the three slots of each colour's buffer
    _OFF = {"red": ((1, 1), (1, 2), (0, 2)),      # ee, oo, ee (copy)
            "black": ((1, 1), (1, 0), (0, 0))}    # eo, oe, eo (copy)

    def __init__(self, a11, a12, a22, b, wx, wy, alpha, omega):
        H, W = a11.shape
        He, We = H + H % 2, W + W % 2
        h, w = He // 2, We // 2
        dev, dt = a11.device, a11.dtype
        self.H, self.W, self.h, self.w = H, W, h, w
        self.omega = float(omega)

        # all per-pixel coefficients in one zero-padded (9, He, We) tensor
        z = torch.zeros(9, He, We, device=dev, dtype=dt)
        z[0, :H, 1:W] = wx              # weight to the left neighbour
        z[1, :H, :W - 1] = wx           # right
        z[2, 1:H, :W] = wy              # up
        z[3, :H - 1, :W] = wy           # down
        z[4, :H, :W] = a11
        z[5, :H, :W] = a22
        z[6, :H, :W] = a12
        z[7:9, :H, :W] = b
        alpha = float(alpha)
        z[0:4] *= alpha
        diag = z[0:4].sum(0) + 0.05 * alpha
        d1 = z[4] + diag
        d2 = z[5] + diag
        off = z[6]
        det = d1 * d2 - off * off
        z[4] = d2 / det                 # inverse of the 2x2 block: diagonal,
        z[5] = d1 / det
        z[6] = -off / det               # and off-diagonal entry
        subs = {"red": ((0, 0), (1, 1)), "black": ((0, 1), (1, 0))}   # (ee, oo), (eo, oe)
        self.coef = {}
        for colour, pos in subs.items():
            zc = torch.stack([z[:, oy::2, ox::2] for oy, ox in pos], 1)     # (9, 2, h, w)
            ws = [zc[i].unsqueeze(1) for i in range(4)]                      # (2, 1, h, w) views
            self.coef[colour] = (zc[7:9].transpose(0, 1).contiguous(), ws,
                                 zc[4:6].transpose(0, 1).contiguous(), zc[6].unsqueeze(1))
        self.buf = {c: torch.zeros(3, 2, h + 3, w + 3, device=dev, dtype=dt) for c in subs}
        self.subs = subs

        def view(colour, slots, a, b):
            return self.buf[colour][slots, :, a:a + h, b:b + w]

        s01, s12 = slice(0, 2), slice(1, 3)
        # neighbours (left, right, up, down) of the stacked red / black sub-lattices
        self.nbrs = {
            "red": (view("black", s01, 1, 0), view("black", s01, 1, 1),
                    view("black", s12, 0, 0), view("black", s12, 1, 0)),
            "black": (view("red", s01, 1, 1), view("red", s01, 1, 2),
                      view("red", s12, 0, 2), view("red", s12, 1, 2)),
        }
        self.slots = {c: [self.buf[c][i, :, oy:oy + h, ox:ox + w] for i, (oy, ox) in enumerate(self._OFF[c])]
                      for c in subs}
        self.s = torch.empty(2, 2, h, w, device=dev, dtype=dt)
        self.t = torch.empty(2, 2, h, w, device=dev, dtype=dt)

    def _update(self, colour):
        b, ws, p, q = self.coef[colour]
        nl, nr, nu, nd = self.nbrs[colour]
        s, t = self.s, self.t
        torch.addcmul(b, ws[0], nl, out=s)
        s.addcmul_(ws[1], nr)
        s.addcmul_(ws[2], nu)
        s.addcmul_(ws[3], nd)
        torch.mul(p, s, out=t)
        t.addcmul_(q, s.flip(1))
        first, second, copy = self.slots[colour]
        first.lerp_(t[0], self.omega)
        second.lerp_(t[1], self.omega)
        copy.copy_(first)

    def solve(self, sweeps: int) -> torch.Tensor:
        """Run ``sweeps`` red-black sweeps from zero; returns (2, H, W) (du, dv)."""
        for _ in range(sweeps):
            self._update("red")
            self._update("black")
        h, w = self.h, self.w
        out = torch.empty(2, 2 * h, 2 * w, device=self.s.device, dtype=self.s.dtype)
        for colour, pos in self.subs.items():
            for i, (oy, ox) in enumerate(pos):
                out[:, oy::2, ox::2] = self.slots[colour][i]
        return out[:, :self.H, :self.W]


def _forward_diff(u: torch.Tensor):
    """Liu's ``dx``/``dy`` (non-advanced): forward differences, 0 on the last column/row."""
    ux = torch.zeros_like(u)
    uy = torch.zeros_like(u)
    ux[..., :, :-1] = u[..., :, 1:] - u[..., :, :-1]
    uy[..., :-1, :] = u[..., 1:, :] - u[..., :-1, :]
    return ux, uy


def _weighted_laplacian(u: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor) -> torch.Tensor:
    """Liu's ``Laplacian(out, u, phi)``: sum_n w_pn (u_p - u_n), u: (2, H, W)."""
    out = torch.zeros_like(u)
    fx = wx * (u[:, :, 1:] - u[:, :, :-1])
    fy = wy * (u[:, 1:, :] - u[:, :-1, :])
    out[:, :, :-1] -= fx
    out[:, :, 1:] += fx
    out[:, :-1, :] -= fy
    out[:, 1:, :] += fy
    return out


def _smooth(x: torch.Tensor) -> torch.Tensor:
    return _sep_filter(_sep_filter(x, SMOOTH, axis="x"), SMOOTH, axis="y")


def smooth_flow_sor(f1, f2, flow, *, alpha, outer, inner, sor, omega=1.8):
    """One pyramid level of Liu's ``SmoothFlowSOR``.

    Parameters
    ----------
    f1, f2 : torch.Tensor
        Reference and moving features (1, C, H, W).
    flow : torch.Tensor
        Initial flow (2, H, W) (dx, dy); returned refined.
    alpha, outer, inner, sor, omega
        Smoothness weight, warping / IRLS iterations, SOR sweeps, relaxation.
    """
    h, w = flow.shape[1:]
    grid = _base_grid(h, w, f1.device, f1.dtype)
    f1s = _smooth(f1)
    for _ in range(outer):
        # Liu's getDxs: derivatives of the 0.4/0.6 blend of the smoothed images
        warped, _ = warp_bilinear(f2, f1, flow, grid)
        w2 = _smooth(warped)
        blend = 0.4 * f1s + 0.6 * w2
        ix = _sep_filter(blend, DERIV, axis="x")[0]   # (C, H, W)
        iy = _sep_filter(blend, DERIV, axis="y")[0]
        it = (w2 - f1s)[0]
        d = torch.zeros_like(flow)
        for k in range(inner):
            uu = flow + d
            ux, uy = _forward_diff(uu)
            phi = 0.5 * torch.rsqrt((ux * ux + uy * uy).sum(0) + EPS2)
            r = it if k == 0 else it + ix * d[0] + iy * d[1]
            psi = 0.5 * torch.rsqrt(r * r + EPS2)
            pix, piy = psi * ix, psi * iy
            # Liu's DImage::collapse averages the feature channels (collapse_average)
            a11 = (pix * ix).mean(0)
            a12 = (pix * iy).mean(0)
            a22 = (piy * iy).mean(0)
            wx, wy = phi[:, :-1], phi[:-1, :]
            lap = _weighted_laplacian(flow, wx, wy) * alpha
            b = -torch.stack(((pix * it).mean(0), (piy * it).mean(0))) - lap
            d = _RedBlackSOR(a11, a12, a22, b, wx, wy, alpha, omega).solve(sor)
        flow = flow + d
    return flow


