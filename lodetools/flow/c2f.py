"""Coarse-to-fine variational optical flow (Ce Liu's method, the one pyflow wraps), in torch.

Two engines run the same steps: the torch tensor code below (any device:
CUDA when available) and, on the CPU, compiled kernels
(:mod:`lodetools.flow._c2f_numba`) that fuse each step into loops over rows
and agree with the torch code to float32 rounding (``engine='auto'``: numba on
the CPU, torch on CUDA). The pyramid, features and level upsampling are torch
in both.

The energy is Brox et al.'s (2004) robust data + robust smoothness energy,
minimised as in Ce Liu's ``OpticalFlow::Coarse2FineFlow`` (the C++ code that
``pyflow`` wraps, used by ReLoBlur for geometric alignment):

* a Gaussian pyramid built exactly as Liu's ``GaussianPyramid::ConstructPyramid``
  (:func:`pyramid_plan`): ratio 0.75, ``int(log(min_width / width) / log(ratio))``
  levels, blur sigma ``(1/ratio - 1) * i`` with the integer half-width
  ``int(3 sigma)`` (so level 1 is not blurred), level sizes truncated
  (``int(width * ratio ** i)``), bilinear resampling at ``x = (j + 1) / rate - 1``
  (Liu's ``ImageProcessing::ResizeImage``, not at pixel centres);
* between levels the flow is resized the same way to the finer level's size and
  multiplied by ``1 / ratio`` (``Coarse2FineFlow``: ``vx.imresize(width, height);
  vx.Multiplywith(1/ratio)``);
* per pixel features: gray (0.299 R + 0.587 G + 0.114 B), its x and y
  derivatives (5-tap ``[1, -8, 0, 8, -1] / 12``), G - R and G - B;
* at each level, ``outer_iterations + level`` fixed-point warping iterations:
  warp the moving features with the current flow (bilinear; samples outside the
  frame take the reference's value), derivatives of the 0.4/0.6 blend of the
  two slightly smoothed images, then ``inner_iterations`` IRLS steps with the
  robust penalty weights ``phi = 0.5 / sqrt(s + 0.001^2)`` (smoothness) and
  ``psi = 0.5 / sqrt(r^2 + 0.001^2)`` (data, per feature channel), each solving
  the linearised normal equations for the increment (du, dv) with
  ``sor_iterations + 3 * level`` SOR sweeps, omega 1.8, smoothness weight
  ``alpha`` = 0.012 and the small extra diagonal ``0.05 * alpha``;
* the data term averages the feature channels (Liu's ``DImage::collapse``
  default, ``collapse_average``: with a sum the flow breaks into outliers);
  samples outside the frame take the reference's value in the warp (Liu's
  ``warpFL``, so their temporal derivative is 0) and, as in Liu's code, the
  in-image mask is not applied to the data term.

The pyramid and level-upsampling conventions are Liu's: with them the flow of
the Middlebury motorcycle pair is within 0.025 px (mean) of the original
program's (tests/flow/test_pyflow_agreement.py); with pixel-centre sampling, rounded sizes,
a blurred first level and the exact size ratio as flow scale it differed by 0.32 px
(mean) and 1.04 px (95th percentile), with the same accuracy against the ground truth
(end-point error 3.30 px either way), so those conventions are not kept.

Deviations from the C++ code (solver details, which change the numbers only by
float32 rounding and the convergence of the SOR sweeps):

* **Red-black ordering, block (2x2) updates.** Liu sweeps the grid
  lexicographically and updates du then dv at each pixel. A lexicographic sweep
  is sequential, so here the pixels are split into the two colours of a
  checkerboard (the 4 sub-lattices of a 2x2 pixel-unshuffle) and each colour is
  updated at once by solving the pixel's coupled 2x2 system for (du, dv) exactly.
  Red-black SOR is the standard parallel SOR; for these symmetric positive
  definite systems it converges for any omega in (0, 2) and, with the
  checkerboard being a consistent ordering, at the same asymptotic rate as the
  lexicographic sweep. It runs on CPU and CUDA alike.
* **Iteration budget.** ``max_level_iterations`` (default ``None``: no cap)
  can cap the iteration growth at coarse levels; the defaults follow Liu's code.
* float32 instead of float64.
* The CPU engine runs the SOR sweeps of a level as a pipelined wavefront over
  the rows (several sweeps in flight, sweep groups on separate threads); every
  update sees the same values as in the plain red-black order, so the numbers
  are those of the plain order, whatever the thread count.

Flow convention: ``flow[y, x] = (dx, dy)`` such that
``moving(x + dx, y + dy) ~= ref(x, y)`` (pyflow's ``(u, v)`` for ``im1 = ref``,
``im2 = moving``).

References
----------
.. [1] C. Liu, "Beyond Pixels: Exploring New Representations and Applications
   for Motion Analysis", PhD thesis, MIT, 2009 (Appendix A), and the
   ``OpticalFlow.cpp`` code released with it (wrapped by pyflow, Pathak 2017).
.. [2] T. Brox, A. Bruhn, N. Papenberg, J. Weickert, "High accuracy optical flow
   estimation based on a theory for warping", ECCV 2004.
.. [3] ReLoBlur (Li et al., AAAI 2023), "Geometrical Alignment": flow computed
   with pyflow on each scene's static reference pair.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from lodetools.device import resolve_device

#: Liu's 5-tap derivative filter (``DImage::dx(.., advanced=true)``).
_DERIV = (1.0 / 12, -8.0 / 12, 0.0, 8.0 / 12, -1.0 / 12)
#: Liu's smoothing filter applied before the derivatives (``getDxs``).
_SMOOTH = (0.02, 0.11, 0.74, 0.11, 0.02)
_EPS_PHI = 0.001 ** 2
_EPS_PSI = 0.001 ** 2


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


def _gaussian_taps(sigma: float, radius: int):
    """Liu's ``Image::GaussianSmoothing`` taps: ``exp(-i^2 / (2 sigma^2))``, ``|i| <= radius``, normalised."""
    t = np.exp(-(np.arange(-radius, radius + 1, dtype=np.float64) ** 2) / (2 * sigma * sigma))
    return tuple((t / t.sum()).tolist())


def _liu_coords(n_dst: int, n_src: int, rate: float, device):
    """Liu's ``ResizeImage`` sampling along one axis: ``x_j = (j + 1) / rate - 1``.

    Returns the two source indices and the weight of the second (float32): Liu's
    ``BilinearInterpolate`` truncates ``x`` toward zero, clips the fraction to
    [0, 1] and clamps both indices to the image (``EnforceRange``).
    """
    x = (np.arange(n_dst, dtype=np.float64) + 1) / rate - 1
    x0 = np.trunc(x)
    frac = np.clip(x - x0, 0.0, 1.0)
    x0 = x0.astype(np.int64)
    i0 = np.clip(x0, 0, n_src - 1)
    i1 = np.clip(x0 + 1, 0, n_src - 1)
    return (torch.from_numpy(i0).to(device), torch.from_numpy(i1).to(device),
            torch.from_numpy(frac.astype(np.float32)).to(device))


def liu_resize(x: torch.Tensor, size, rate_y: float, rate_x: float) -> torch.Tensor:
    """Bilinear resize with Liu's sampling (``ImageProcessing::ResizeImage``). x: (1, C, H, W) -> (1, C, h, w).

    Output pixel ``(i, j)`` samples the input at ``((j + 1) / rate_x - 1, (i + 1) / rate_y - 1)``
    (not at pixel centres: ``cv2.resize`` and ``F.interpolate`` sample at
    ``(j + 0.5) / rate - 0.5``), with the input clamped at its borders. Bilinear
    interpolation is separable, so it is done along x, then along y.
    """
    h, w = size
    i0, i1, a = _liu_coords(w, x.shape[3], rate_x, x.device)
    x = torch.lerp(x.index_select(3, i0), x.index_select(3, i1), a.to(x.dtype))
    i0, i1, a = _liu_coords(h, x.shape[2], rate_y, x.device)
    return torch.lerp(x.index_select(2, i0), x.index_select(2, i1), a.to(x.dtype).view(-1, 1))


def pyramid_plan(height: int, width: int, ratio: float = 0.75, min_width: int = 20):
    """How Liu's ``GaussianPyramid::ConstructPyramid`` (the "fast way") builds each level.

    Returns, finest first, one tuple ``((h, w), source, sigma, radius, rate)`` per
    level: level ``i`` is level ``source`` blurred with a Gaussian of ``sigma`` and
    integer half-width ``radius`` then resized by ``rate`` (:func:`liu_resize`).
    As in Liu's code (all in double precision):

    * ``int(log(min_width / width) / log(ratio))`` levels (at least one);
    * levels ``i <= n = int(log(0.25) / log(ratio))`` (4 for ratio 0.75) come from
      the full image, ``sigma = (1 / ratio - 1) * i``, ``rate = ratio ** i``;
      coarser ones from level ``i - n``, ``sigma = (1 / ratio - 1) * n``,
      ``rate = ratio ** i * width / width(i - n)``;
    * ``radius = int(3 sigma)`` (truncated: 0 at level 1 for ratio 0.75, i.e. no blur);
    * sizes truncated: ``int(w_src * rate)``, ``int(h_src * rate)`` (555x375 for 741x500, not 556x375),
      and at least 1 (Liu's code would make an empty level of a 2-pixel-high image).
    """
    n_levels = int(math.log(min_width / width) / math.log(ratio)) if width > min_width else 1
    n_levels = max(1, n_levels)
    base = 1.0 / ratio - 1.0
    n = int(math.log(0.25) / math.log(ratio))
    plan = [((height, width), 0, 0.0, 0, 1.0)]
    for i in range(1, n_levels):
        if i <= n:
            source, sigma = 0, base * i
            rate = math.pow(ratio, i)
        else:
            source, sigma = i - n, base * n
            rate = math.pow(ratio, i) * width / plan[source][0][1]
        sh, sw = plan[source][0]
        plan.append(((max(1, int(sh * rate)), max(1, int(sw * rate))), source, sigma, int(sigma * 3), rate))
    return plan


def pyramid_sizes(height: int, width: int, ratio: float = 0.75, min_width: int = 20):
    """Sizes (H, W) of the pyramid levels, finest first (:func:`pyramid_plan`)."""
    return [p[0] for p in pyramid_plan(height, width, ratio, min_width)]


def _blur(x: torch.Tensor, sigma: float, radius: int, use_cv2: bool) -> torch.Tensor:
    """Separable Gaussian (Liu's taps, replicated borders as Liu's ``EnforceRange``). x: (1, C, H, W)."""
    if radius == 0:
        return x
    taps = _gaussian_taps(sigma, radius)
    if not use_cv2:
        return _sep_filter(_sep_filter(x, taps, axis="x"), taps, axis="y")
    import cv2

    img = np.ascontiguousarray(x[0].permute(1, 2, 0).numpy())
    k = np.asarray(taps, np.float32)
    out = cv2.sepFilter2D(img, -1, k, k, borderType=cv2.BORDER_REPLICATE).reshape(img.shape)
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))[None]


def build_pyramid(img: torch.Tensor, ratio: float = 0.75, min_width: int = 20, *, use_cv2: bool = False):
    """Gaussian pyramid of a (1, C, H, W) image, finest first, exactly as Liu's :func:`pyramid_plan`.

    ``use_cv2`` (CPU tensors only) blurs with ``cv2.sepFilter2D`` (same taps and
    borders, several times faster than the torch filter on a CPU).
    """
    levels = [img]
    for size, source, sigma, radius, rate in pyramid_plan(img.shape[2], img.shape[3], ratio, min_width)[1:]:
        levels.append(liu_resize(_blur(levels[source], sigma, radius, use_cv2), size, rate, rate))
    return levels


def upsample_flow(flow: torch.Tensor, size, ratio: float) -> torch.Tensor:
    """Liu's level step (``Coarse2FineFlow``): flow (2, h, w) resized to ``size`` and multiplied by ``1 / ratio``.

    The resize uses the per-axis rates ``W / w`` and ``H / h`` (``DImage::imresize(width, height)``,
    sampling at ``(j + 1) / rate - 1``), the vectors are scaled by ``1 / ratio`` in both axes
    (not by the exact size ratio, which differs slightly because the sizes are truncated).
    """
    h, w = size
    return liu_resize(flow.unsqueeze(0), size, h / flow.shape[1], w / flow.shape[2])[0] * (1.0 / ratio)


def image_features(img: torch.Tensor) -> torch.Tensor:
    """Liu's ``im2feature``: (1, 3, H, W) RGB -> (1, 5, H, W) gray, dx, dy, G-R, G-B.

    A single-channel image gives (1, 3, H, W): gray, dx, dy.
    """
    if img.shape[1] == 1:
        gray = img
    else:
        r, g, b = img[:, 0:1], img[:, 1:2], img[:, 2:3]
        gray = 0.299 * r + 0.587 * g + 0.114 * b
    feats = [gray, _sep_filter(gray, _DERIV, axis="x"), _sep_filter(gray, _DERIV, axis="y")]
    if img.shape[1] == 3:
        feats += [g - r, g - b]
    return torch.cat(feats, 1)


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
    return _sep_filter(_sep_filter(x, _SMOOTH, axis="x"), _SMOOTH, axis="y")


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
        ix = _sep_filter(blend, _DERIV, axis="x")[0]   # (C, H, W)
        iy = _sep_filter(blend, _DERIV, axis="y")[0]
        it = (w2 - f1s)[0]
        d = torch.zeros_like(flow)
        for k in range(inner):
            uu = flow + d
            ux, uy = _forward_diff(uu)
            phi = 0.5 * torch.rsqrt((ux * ux + uy * uy).sum(0) + _EPS_PHI)
            r = it if k == 0 else it + ix * d[0] + iy * d[1]
            psi = 0.5 * torch.rsqrt(r * r + _EPS_PSI)
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


def coarse2fine_flow(ref: np.ndarray, moving: np.ndarray, *, alpha: float = 0.012, ratio: float = 0.75,
                     min_width: int = 20, outer_iterations: int = 7, inner_iterations: int = 1,
                     sor_iterations: int = 30, omega: float = 1.8, level_growth: bool = True,
                     max_level_iterations: int | None = None, device=None,
                     threads: int | None = None, engine: str = "auto") -> np.ndarray:
    """Dense flow from ``ref`` to ``moving`` by Liu's coarse-to-fine method.

    Parameters
    ----------
    ref, moving : ndarray
        (H, W, 3) RGB or (H, W) gray images, float in [0, 1] (other ranges work but
        ``alpha`` is tuned for [0, 1]).
    alpha : float
        Smoothness weight (pyflow's default 0.012).
    ratio, min_width : float, int
        Pyramid downsampling ratio and the coarsest width bound.
    outer_iterations, inner_iterations, sor_iterations : int
        Fixed-point warping iterations, IRLS iterations, SOR sweeps at the finest
        level; with ``level_growth`` level ``k`` (0 = finest) uses ``outer + k``
        warping iterations and ``sor + 3 k`` sweeps as Liu's code does.
    omega : float
        Over-relaxation factor (0 < omega < 2).
    max_level_iterations : int, optional
        Cap on the level index used for the growth (None = no cap).
    device : str or torch.device, optional
        ``None`` picks CUDA when available; CUDA falls back to CPU when absent.
    threads : int, optional
        CPU threads during this call (settings are restored afterwards).
        ``None`` (default): the numba engine asks :func:`lodetools.parallel.cpu_threads`
        at each level: one thread below :data:`PARALLEL_PIXELS` pixels, in worker
        processes and when the machine's cores are busy, else the idle cores;
        the torch engine uses 1 thread on the CPU (its per-operation work is
        small: on a shared 2-core machine 2 threads took 50 s instead of 4.9 s
        on the 741x500 motorcycle pair). The result does not depend on the
        number of threads (bit for bit).
    engine : {'auto', 'torch', 'numba'}
        How each pyramid level is solved. ``'torch'``: the tensor code of this
        module, on ``device``. ``'numba'``: the same steps compiled for the CPU
        (:mod:`lodetools.flow._c2f_numba`), which agrees with the torch path to
        float32 rounding and is several times faster on a CPU. ``'auto'``
        (default): numba on the CPU, torch on CUDA.

    Returns
    -------
    ndarray
        float32 (H, W, 2) flow ``(dx, dy)`` with ``moving(x + dx, y + dy) ~= ref(x, y)``.

    References
    ----------
    See the module docstring (Liu 2009; Brox et al. 2004; ReLoBlur geometric alignment).
    """
    dev = resolve_device(device)
    a = np.asarray(ref, dtype=np.float32)
    m = np.asarray(moving, dtype=np.float32)
    if a.shape != m.shape:
        raise ValueError(f"ref {a.shape} and moving {m.shape} differ in shape")
    if a.ndim == 2:
        a, m = a[..., None], m[..., None]

    def to_t(x):
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))).unsqueeze(0).to(dev)

    if engine not in ("auto", "torch", "numba"):
        raise ValueError(f"engine must be 'auto', 'torch' or 'numba', got {engine!r}")
    use_numba = engine == "numba" or (engine == "auto" and dev.type == "cpu")
    if use_numba:
        dev = torch.device("cpu")
    # torch's thread count belongs to the process (align estimates a flow on a thread while
    # other work goes on): set only when torch does the solving on the CPU; on the numba path
    # torch runs the cheap pyramid and features only, with the same bytes at any thread count
    old_threads = torch.get_num_threads()
    if dev.type == "cpu" and not use_numba:
        torch.set_num_threads(1 if threads is None else int(threads))
    try:
        return _c2f(to_t(a), to_t(m), dev, use_numba=use_numba, threads=threads, alpha=alpha, ratio=ratio, min_width=min_width,
                    outer_iterations=outer_iterations, inner_iterations=inner_iterations,
                    sor_iterations=sor_iterations, omega=omega, level_growth=level_growth,
                    max_level_iterations=max_level_iterations)
    finally:
        torch.set_num_threads(old_threads)


#: levels with at least this many pixels may run the numba kernels on several threads
PARALLEL_PIXELS = 15_000


def _numba_level(f1, f2, flow, *, alpha, outer, inner, sor, omega, threads):
    """One level with the numba kernels (:mod:`lodetools.flow._c2f_numba`); ``flow`` refined in place.

    The thread count comes from :func:`lodetools.parallel.cpu_threads`, decided per level.
    """
    import numba

    from lodetools import parallel
    from lodetools.flow import _c2f_numba as nbk

    parallel.use_numba_workqueue()
    n = parallel.cpu_threads(f1.shape[1] * f1.shape[2], min_work=PARALLEL_PIXELS, requested=threads)
    n = min(n, numba.config.NUMBA_NUM_THREADS)
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        nbk.level_flow(f1, f2, flow, float(alpha), int(outer), int(inner), int(sor), float(omega), nbk._NBR, n)
    finally:
        numba.set_num_threads(old)


def _c2f(a, m, dev, *, use_numba, threads, alpha, ratio, min_width, outer_iterations, inner_iterations, sor_iterations,
         omega, level_growth, max_level_iterations):
    with torch.no_grad():
        p1 = build_pyramid(a, ratio, min_width, use_cv2=use_numba)
        p2 = build_pyramid(m, ratio, min_width, use_cv2=use_numba)
        flow = None
        for k in range(len(p1) - 1, -1, -1):
            f1 = image_features(p1[k])
            f2 = image_features(p2[k])
            h, w = f1.shape[2:]
            if flow is None:
                flow = torch.zeros(2, h, w, device=dev, dtype=f1.dtype)
            else:
                flow = upsample_flow(flow, (h, w), ratio)
            lv = k if level_growth else 0
            if max_level_iterations is not None:
                lv = min(lv, max_level_iterations)
            outer, sor = outer_iterations + lv, sor_iterations + 3 * lv
            if use_numba:
                fl = np.ascontiguousarray(flow.numpy(), dtype=np.float32)
                _numba_level(f1[0].contiguous().numpy(), f2[0].contiguous().numpy(), fl, alpha=alpha,
                             outer=outer, inner=inner_iterations, sor=sor, omega=omega, threads=threads)
                flow = torch.from_numpy(fl)
            else:
                flow = smooth_flow_sor(f1, f2, flow, alpha=alpha, outer=outer,
                                       inner=inner_iterations, sor=sor, omega=omega)
        return flow.permute(1, 2, 0).contiguous().cpu().numpy().astype(np.float32)
