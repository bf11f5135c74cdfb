"""MIMO-UNet(+) backbone (Cho et al., "Rethinking Coarse-to-Fine Approach in
Single Image Deblurring", ICCV 2021), the backbone of LBAG (ReLoBlur).

Tensors are (B, C, H, W); H and W must be multiples of 4 (three scales by
nearest 0.5x resizing). The heads are configurable so LBAG can output 4
channels (gate + RGB) per scale instead of MIMO-UNet's 3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lodetools.nets.blocks import BasicConv, res_stack


class SCM(nn.Module):
    """Shallow convolutional module: features of a downscaled input (3 -> ``c`` channels)."""

    def __init__(self, c: int):
        super().__init__()
        self.main = nn.Sequential(
            BasicConv(3, c // 4, 3), BasicConv(c // 4, c // 2, 1),
            BasicConv(c // 2, c // 2, 3), BasicConv(c // 2, c - 3, 1))
        self.conv = BasicConv(c, c, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([x, self.main(x)], dim=1))


class FAM(nn.Module):
    """Feature attention module: ``x + conv3(x * scm)``."""

    def __init__(self, c: int):
        super().__init__()
        self.merge = BasicConv(c, c, 3, relu=False)

    def forward(self, x: torch.Tensor, scm: torch.Tensor) -> torch.Tensor:
        return x + self.merge(x * scm)


class AFF(nn.Module):
    """Asymmetric feature fusion of the three encoder scales (concat, conv1-ReLU-conv3)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Sequential(BasicConv(c_in, c_out, 1), BasicConv(c_out, c_out, 3, relu=False))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat(xs, dim=1))


def _half(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=0.5, mode="nearest")


def _double(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class MIMOUNet(nn.Module):
    """MIMO-UNet (``num_res=8``, no dropout) or MIMO-UNet+ (``num_res=20``, Dropout2d 0.1).

    Parameters
    ----------
    base : int
        Width of the first scale (widths base, 2 base, 4 base); 32 in the paper.
    num_res : int
        ResBlocks per encoder/decoder block.
    dropout : float
        Dropout2d on the fused skip features (MIMO-UNet+: 0.1).
    out_channels : int
        Channels of each scale's head (3 for MIMO-UNet, 4 for LBAG).

    Returns (forward)
    -----------------
    list of 3 tensors
        Raw head outputs at 1/4, 1/2, 1 resolution, (B, out_channels, H/s, W/s),
        and the matching input pyramid as a second list.
    """

    multiple = 4

    def __init__(self, base: int = 32, num_res: int = 8, dropout: float = 0.0, out_channels: int = 3):
        super().__init__()
        b = base
        self.encoder = nn.ModuleList([res_stack(b, num_res), res_stack(2 * b, num_res), res_stack(4 * b, num_res)])
        self.feat_extract = nn.ModuleList([
            BasicConv(3, b, 3), BasicConv(b, 2 * b, 3, stride=2), BasicConv(2 * b, 4 * b, 3, stride=2),
            BasicConv(4 * b, 2 * b, 4, stride=2, transpose=True), BasicConv(2 * b, b, 4, stride=2, transpose=True),
            BasicConv(b, out_channels, 3, relu=False)])
        self.decoder = nn.ModuleList([res_stack(4 * b, num_res), res_stack(2 * b, num_res), res_stack(b, num_res)])
        self.convs = nn.ModuleList([BasicConv(4 * b, 2 * b, 1), BasicConv(2 * b, b, 1)])
        self.convs_out = nn.ModuleList([BasicConv(4 * b, out_channels, 3, relu=False),
                                        BasicConv(2 * b, out_channels, 3, relu=False)])
        self.affs = nn.ModuleList([AFF(7 * b, b), AFF(7 * b, 2 * b)])
        self.fam1, self.scm1 = FAM(4 * b), SCM(4 * b)
        self.fam2, self.scm2 = FAM(2 * b), SCM(2 * b)
        self.drop1 = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.drop2 = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor):
        x2 = _half(x)
        x4 = _half(x2)
        z2, z4 = self.scm2(x2), self.scm1(x4)
        res1 = self.encoder[0](self.feat_extract[0](x))
        z = self.fam2(self.feat_extract[1](res1), z2)
        res2 = self.encoder[1](z)
        z = self.fam1(self.feat_extract[2](res2), z4)
        z = self.encoder[2](z)
        z12, z21, z42 = _half(res1), _double(res2), _double(z)
        z41 = _double(z42)
        res2 = self.drop2(self.affs[1](z12, res2, z42))
        res1 = self.drop1(self.affs[0](res1, z21, z41))
        outs = []
        z = self.decoder[0](z)
        outs.append(self.convs_out[0](z))
        z = self.feat_extract[3](z)
        z = self.decoder[1](self.convs[0](torch.cat([z, res2], dim=1)))
        outs.append(self.convs_out[1](z))
        z = self.feat_extract[4](z)
        z = self.decoder[2](self.convs[1](torch.cat([z, res1], dim=1)))
        outs.append(self.feat_extract[5](z))
        return outs, [x4, x2, x]


class MIMOUNetPlain(MIMOUNet):
    """MIMO-UNet(+) with its residual RGB heads: returns ``[out/4, out/2, out]`` (B, 3, h, w)."""

    def forward(self, x):
        outs, pyr = super().forward(x)
        return [o + p for o, p in zip(outs, pyr)]


def build_mimo_unet(base: int = 32, num_res: int = 8, dropout: float = 0.0) -> MIMOUNetPlain:
    """MIMO-UNet (6,807,171 parameters at the defaults); ``forward`` gives the 3 scales' images.

    Parameters
    ----------
    base : int
        Width of the first scale (32).
    num_res : int
        ResBlocks per encoder/decoder block (8).
    dropout : float
        Dropout2d on the fused skips (0: MIMO-UNet has none).
    """
    return MIMOUNetPlain(base=int(base), num_res=int(num_res), dropout=float(dropout))


def build_mimo_unet_plus(base: int = 32, num_res: int = 20, dropout: float = 0.1) -> MIMOUNetPlain:
    """MIMO-UNet+ (16,107,651 parameters at the defaults): 20 ResBlocks per block, Dropout2d 0.1."""
    return MIMOUNetPlain(base=int(base), num_res=int(num_res), dropout=float(dropout))
