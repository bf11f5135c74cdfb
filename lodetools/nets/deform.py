"""Modulated deformable convolution (DCNv2) in pure torch.

:func:`deform_conv2d` follows ``torchvision.ops.deform_conv2d`` exactly (same
arguments, same offset/mask layout, same results) and calls it when
torchvision is importable; otherwise it samples with
:func:`torch.nn.functional.grid_sample` (bilinear, zeros padding,
``align_corners=True``), which is the same bilinear interpolation with zeros
outside the image, and applies the weights with one batched matrix product.
Everything runs on any device (CPU, CUDA) and supports autograd with respect
to the input, offsets, mask, weight and bias.

Layout (torchvision, shared by mmcv), for offset group ``g`` and kernel tap
``k = i * kw + j``:

- ``offset[:, g * 2K + 2k]`` is the vertical shift ``dy``, ``offset[:, g * 2K
  + 2k + 1]`` the horizontal shift ``dx`` (``K = kh * kw``);
- ``mask[:, g * K + k]`` the modulation scalar;
- output pixel ``(y, x)`` samples the input at ``(y * s - p + i * d + dy,
  x * s - p + j * d + dx)``.

References
----------
.. [1] Zhu, Hu, Lin, Dai, "Deformable ConvNets v2: More Deformable, Better
   Results", CVPR 2019 (Eq. (3): ``y(p) = sum_k w_k x(p + p_k + dp_k) dm_k``).
.. [2] Dai et al., "Deformable Convolutional Networks", ICCV 2017.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

try:  # torchvision is optional; its compiled op is used when present
    from torchvision.ops import deform_conv2d as _tv_deform_conv2d
except Exception:  # pragma: no cover - depends on the environment
    _tv_deform_conv2d = None

__all__ = ["deform_conv2d", "deform_conv2d_torch", "DeformConv2d",
           "ModulatedDeformConvPack", "HAS_TORCHVISION"]

#: True when ``torchvision.ops.deform_conv2d`` is importable (then it is used).
HAS_TORCHVISION = _tv_deform_conv2d is not None

#: bytes of sampled columns materialised at once (larger outputs go in row chunks)
_COLS_BUDGET = 256 * 2**20


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def deform_conv2d_torch(input, offset, weight, bias=None, stride=1, padding=0,
                        dilation=1, mask=None):
    """Modulated deformable convolution, pure torch (DCNv2 [1]_ Eq. (3)).

    Parameters
    ----------
    input : Tensor (B, C_in, H, W)
    offset : Tensor (B, 2 * G * kh * kw, H_out, W_out)
        ``G`` offset groups (``C_in`` divisible by ``G``); layout in the module
        docstring.
    weight : Tensor (C_out, C_in / groups, kh, kw)
        ``groups = C_in / weight.shape[1]`` (grouped convolution).
    bias : Tensor (C_out,) or None
    stride, padding, dilation : int or (int, int)
    mask : Tensor (B, G * kh * kw, H_out, W_out) or None
        Modulation; ``None`` means all ones (DCNv1).

    Returns
    -------
    Tensor (B, C_out, H_out, W_out)
        ``H_out = (H + 2 p - d (kh - 1) - 1) // s + 1`` (and likewise W).
    """
    B, C, H, W = input.shape
    Cout, Cg, kh, kw = weight.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    K = kh * kw
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if C % Cg:
        raise ValueError(f"input channels {C} not divisible by weight channels {Cg}")
    Gw = C // Cg
    if offset.shape[1] % (2 * K) or offset.shape[-2:] != (Ho, Wo):
        raise ValueError(f"offset shape {tuple(offset.shape)} does not fit kernel "
                         f"{kh}x{kw} and output {Ho}x{Wo}")
    G = offset.shape[1] // (2 * K)
    if C % G:
        raise ValueError(f"input channels {C} not divisible by offset groups {G}")
    if mask is not None and (mask.shape[1] != G * K or mask.shape[-2:] != (Ho, Wo)):
        raise ValueError(f"mask shape {tuple(mask.shape)} does not fit offset groups {G}")

    # half precision cannot hold sampling coordinates (fp16 steps are 0.5 px
    # beyond 1024): sample and accumulate in float32, return the input's dtype
    dt = torch.float32 if input.dtype in (torch.float16, torch.bfloat16) else input.dtype
    x = input.to(dt)
    offset, weight = offset.to(dt), weight.to(dt)
    bias = None if bias is None else bias.to(dt)
    mask = None if mask is None else mask.to(dt)
    # grid_sample with align_corners=True needs a size >= 2 per axis; a
    # zero border keeps bilinear-with-zeros-outside identical.
    pad = 1 if (H < 2 or W < 2) else 0
    if pad:
        x = F.pad(x, (1, 1, 1, 1))
    Hp, Wp = H + 2 * pad, W + 2 * pad

    dev = input.device
    ii = torch.arange(kh, device=dev, dtype=dt).repeat_interleave(kw) * dh  # (K,)
    jj = torch.arange(kw, device=dev, dtype=dt).repeat(kh) * dw
    base_y = torch.arange(Ho, device=dev, dtype=dt) * sh - ph + pad
    base_x = torch.arange(Wo, device=dev, dtype=dt) * sw - pw + pad
    xg = x.reshape(B * G, C // G, Hp, Wp)
    w = weight.reshape(Gw, Cout // Gw, Cg * K).unsqueeze(0)
    off = offset.reshape(B, G, K, 2, Ho, Wo)
    msk = None if mask is None else mask.reshape(B, G, 1, K, Ho, Wo)

    def rows(r0, r1):
        """Output rows r0:r1 -> (B, C_out, r1 - r0, Wo)."""
        n = r1 - r0
        o = off[..., r0:r1, :]
        py = base_y[r0:r1].view(1, 1, 1, n, 1) + ii.view(1, 1, K, 1, 1) + o[:, :, :, 0]
        px = base_x.view(1, 1, 1, 1, Wo) + jj.view(1, 1, K, 1, 1) + o[:, :, :, 1]
        # normalised coordinates for align_corners=True: -1 -> pixel 0, 1 -> last pixel
        gy = py * (2.0 / (Hp - 1)) - 1.0
        gx = px * (2.0 / (Wp - 1)) - 1.0
        grid = torch.stack((gx, gy), dim=-1).reshape(B * G, K * n, Wo, 2)
        cols = F.grid_sample(xg, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=True)  # (B*G, C/G, K*n, Wo)
        cols = cols.view(B, G, C // G, K, n, Wo)
        if msk is not None:
            cols = cols * msk[..., r0:r1, :]
        # columns ordered (channel, tap) to match weight.view(C_out, C_in/groups * K)
        cols = cols.reshape(B, Gw, Cg * K, n * Wo)
        return torch.matmul(w, cols).reshape(B, Cout, n, Wo)

    # bound the sampled-column buffer (B C K rows Wo values) by chunking rows
    step = max(1, int(_COLS_BUDGET // max(1, B * C * K * Wo * x.element_size())))
    if step >= Ho:
        out = rows(0, Ho)
    else:
        out = torch.cat([rows(r, min(r + step, Ho)) for r in range(0, Ho, step)], dim=2)
    if bias is not None:
        out = out + bias.view(1, Cout, 1, 1)
    return out.to(input.dtype)


def deform_conv2d(input, offset, weight, bias=None, stride=1, padding=0, dilation=1,
                  mask=None):
    """Modulated deformable convolution; torchvision's op when importable.

    Same parameters and results as :func:`deform_conv2d_torch` (which is used
    when torchvision is not installed) and ``torchvision.ops.deform_conv2d``.
    """
    if _tv_deform_conv2d is not None:  # pragma: no cover - torchvision absent here
        return _tv_deform_conv2d(input, offset, weight, bias, stride=_pair(stride),
                                 padding=_pair(padding), dilation=_pair(dilation), mask=mask)
    return deform_conv2d_torch(input, offset, weight, bias, stride, padding, dilation, mask)


class DeformConv2d(nn.Module):
    """Deformable convolution layer; offsets (and mask) are given to ``forward``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding, dilation : int or (int, int)
    groups : int
        Weight groups (``in_channels`` and ``out_channels`` divisible by it).
    bias : bool

    Notes
    -----
    ``forward(x, offset, mask=None)``: x (B, C_in, H, W), offset
    (B, 2 G kh kw, H_out, W_out), mask (B, G kh kw, H_out, W_out) -> (B, C_out,
    H_out, W_out). Initialisation as ``nn.Conv2d`` (Kaiming uniform).
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=0,
                 dilation=1, groups=1, bias=True):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups,
                                               *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x, offset, mask=None):
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride,
                             self.padding, self.dilation, mask)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, bias={self.bias is not None}")


class ModulatedDeformConvPack(DeformConv2d):
    """DCNv2 layer that predicts its own offsets and modulation (mmcv-style "pack").

    A plain convolution on the input (kernel 3, the layer's stride, dilation
    ``offset_dilation``) predicts ``3 G K`` maps: ``2 G K`` offsets and
    ``G K`` mask logits (mask = sigmoid). It is zero-initialised, so training
    starts from a regular convolution with offsets 0 and mask 0.5 [1]_.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        As :class:`DeformConv2d`.
    offset_groups : int
        Offset groups ``G`` (``in_channels`` divisible by it).
    offset_dilation : int
        Dilation of the offset/mask predictor (ASPDC branches use 1, 2, 4).
    zero_offset : bool
        Predict only the mask and keep offsets at zero (ASPDC branch 1).

    Notes
    -----
    ``forward(x)`` -> (B, C_out, H_out, W_out); :meth:`offsets_and_mask` returns
    the predicted (offset, mask) for inspection.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=None,
                 dilation=1, groups=1, bias=True, offset_groups=1, offset_dilation=1,
                 zero_offset=False):
        k = _pair(kernel_size)
        if padding is None:
            d = _pair(dilation)
            padding = (d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias)
        if in_channels % offset_groups:
            raise ValueError("in_channels must be divisible by offset_groups")
        self.offset_groups = offset_groups
        self.zero_offset = zero_offset
        K = k[0] * k[1]
        n_out = offset_groups * K * (1 if zero_offset else 3)
        # the predictor's output grid must equal the deformable conv's output grid
        self.conv_offset = nn.Conv2d(in_channels, n_out, 3, stride=self.stride,
                                     padding=offset_dilation, dilation=offset_dilation)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def offsets_and_mask(self, x):
        """Predicted offset (B, 2 G K, H_out, W_out) and mask (B, G K, H_out, W_out)."""
        out = self.conv_offset(x)
        GK = self.offset_groups * self.kernel_size[0] * self.kernel_size[1]
        if self.zero_offset:
            mask = torch.sigmoid(out)
            offset = out.new_zeros(out.shape[0], 2 * GK, *out.shape[-2:])
        else:
            offset, mask = out[:, :2 * GK], torch.sigmoid(out[:, 2 * GK:])
        return offset, mask

    def forward(self, x):
        offset, mask = self.offsets_and_mask(x)
        return super().forward(x, offset, mask)
