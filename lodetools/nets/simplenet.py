"""SimpleNet: PVB, LGCR and Deformable ResBlocks in an auto-encoder (Li et al.).

The paper gives the blocks by equation and the whole by Fig. 2 ("six
ResBlocks, six PVBs, three DRs, one LGCR"; down-sampling by stride-2 convs,
up-sampling by stride-2 deconvs; "one DR after each PVB in the decoder",
Sec. 3.3). There is no official code. The text places LGCR only once, when
it moves the module into another network: "insertion of LGCR into the
encoder's end in Tao et al.'s method" (Sec. 4.4, the transfer experiment of
Table 5); no sentence puts it elsewhere, so SimpleNet's LGCR sits at its
own encoder's end (the 1/4-resolution bottleneck). Our layout,
three scales with widths (w, 2w, 4w)::

    conv3 3->w, ReLU
    enc1: ResBlock, PVB          -> skip1           (w,  H,   W)
    conv3 s2 w->2w, ReLU
    enc2: ResBlock, PVB          -> skip2           (2w, H/2, W/2)
    conv3 s2 2w->4w, ReLU
    enc3: ResBlock, PVB, LGCR                       (4w, H/4, W/4)
    dec3: PVB, DR, ResBlock
    deconv4 s2 4w->2w, ReLU, + skip2
    dec2: PVB, DR, ResBlock
    deconv4 s2 2w->w, ReLU, + skip1
    dec1: PVB, DR, ResBlock
    conv3 w->3, + input

With w = 70 it has 24,775,866 parameters (paper Table 2: 25.1M, -1.3 %; an unofficial
re-implementation has 58M, see the reference notes).

References
----------
.. [1] Li, Gao, Pang, Li, Ji, Wang, "Perceptual Variousness Motion Deblurring
   with Light Global Context Refinement", ICCV 2021 (SimpleNet).
"""

from __future__ import annotations

import torch
from torch import nn

from lodetools.nets.deform import ModulatedDeformConvPack

__all__ = ["ResBlock3", "PVB", "DeformResBlock", "LGCR", "NonLocalBlock", "SimpleNet",
           "build_simplenet"]


class ResBlock3(nn.Module):
    """The paper's "vanilla ResBlock" with three conv layers (Fig. 2).

    conv3-ReLU-conv3-ReLU-conv3 + x; (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1))

    def forward(self, x):
        return x + self.body(x)


class PVB(nn.Module):
    """Perceptual Variousness Block, SimpleNet Eqs. (6)-(8).

    ``Feat_c = Concat(ReLU(Conv_d1(I)), ReLU(Conv_d2(I)), ReLU(Conv_d3(I)),
    DeformConv(I))`` (Eq. (6); 3x3 convs at dilation 1, 2, 3, and a DCNv2 layer
    predicting its own offsets), ``Feat_fused = DeformConv(Feat_c)`` (Eq. (7),
    4C -> C), ``Out = I + Feat_fused`` (Eq. (8)). (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.dilated = nn.ModuleList(nn.Conv2d(channels, channels, 3, 1, d, dilation=d)
                                     for d in (1, 2, 3))
        self.deform = ModulatedDeformConvPack(channels, channels, 3)
        self.fuse = ModulatedDeformConvPack(4 * channels, channels, 3)
        self.relu = nn.ReLU()

    def forward(self, x):
        feats = [self.relu(conv(x)) for conv in self.dilated] + [self.deform(x)]  # Eq. (6)
        return x + self.fuse(torch.cat(feats, 1))  # Eqs. (7), (8)


class DeformResBlock(nn.Module):
    """Deformable ResBlock, SimpleNet Eq. (9): ``Conv2D(ReLU(DeformConv(I))) + I``.

    (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.deform = ModulatedDeformConvPack(channels, channels, 3)
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x):
        return x + self.conv(torch.relu(self.deform(x)))


class LGCR(nn.Module):
    """Light Global Context Refinement, SimpleNet Eqs. (1)-(5).

    For input ``I`` (B, C, H, W):

    - ``v_c, v_h, v_w``: global average pooling of ``I`` over all axes but
      channel, height, width respectively;
    - Eq. (1): for each rank-1 index ``i = 1..r``, ``v_mi = PReLU(Conv1D(v_m,
      W_mi))`` with a 1x3 kernel along the axis (one Conv1d with ``r`` output
      channels per axis, one PReLU slope per ``i``);
    - Eq. (2): ``GCRW_raw = sum_i v_ci (x) v_hi (x) v_wi`` (CP rank-r
      reconstruction, an outer product per ``i``);
    - Eq. (3): ``GCRW = softmax(GCRW_raw)`` over all C*H*W entries;
    - Eq. (4): ``Rr = Conv3D(I, W_G)``, a 3x3x3 kernel over (C, H, W) (the
      "raw residual");
    - Eq. (5): ``Out = Rr * GCRW + I``.

    Parameters
    ----------
    rank : int
        CP reconstruction rank r (paper: 64).

    Notes
    -----
    The softmax of Eq. (3) spans all C*H*W entries, as the paper writes, so
    GCRW sums to one; its memory is O(r (C + H + W) + C H W), unlike a
    non-local block's O((H W)^2). ``last_weights`` keeps the latest GCRW.
    """

    def __init__(self, rank: int = 64):
        super().__init__()
        self.rank = rank
        self.conv_c = nn.Conv1d(1, rank, 3, padding=1)
        self.conv_h = nn.Conv1d(1, rank, 3, padding=1)
        self.conv_w = nn.Conv1d(1, rank, 3, padding=1)
        self.act_c, self.act_h, self.act_w = nn.PReLU(rank), nn.PReLU(rank), nn.PReLU(rank)
        self.conv3d = nn.Conv3d(1, 1, 3, padding=1)
        self.last_weights = None

    def forward(self, x):
        B, C, H, W = x.shape
        v_c = x.mean(dim=(2, 3)).unsqueeze(1)  # (B, 1, C)
        v_h = x.mean(dim=(1, 3)).unsqueeze(1)  # (B, 1, H)
        v_w = x.mean(dim=(1, 2)).unsqueeze(1)  # (B, 1, W)
        f_c = self.act_c(self.conv_c(v_c))     # Eq. (1): (B, r, C)
        f_h = self.act_h(self.conv_h(v_h))     # (B, r, H)
        f_w = self.act_w(self.conv_w(v_w))     # (B, r, W)
        raw = torch.einsum("brc,brh,brw->bchw", f_c, f_h, f_w)  # Eq. (2)
        gcrw = torch.softmax(raw.reshape(B, -1), dim=1).view(B, C, H, W)  # Eq. (3)
        self.last_weights = gcrw.detach()
        rr = self.conv3d(x.unsqueeze(1)).squeeze(1)  # Eq. (4)
        return rr * gcrw + x                          # Eq. (5)


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block (Wang et al., CVPR 2018), for comparison.

    ``y = softmax(theta(x)^T phi(x)) g(x)``, ``out = x + W(y)`` with 1x1 convs
    and ``inner`` channels; the (HW x HW) affinity is what makes it costly
    (SimpleNet Table 6). (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, inner: int | None = None):
        super().__init__()
        inner = inner or max(channels // 2, 1)
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.out = nn.Conv2d(inner, channels, 1)

    def forward(self, x):
        B, C, H, W = x.shape
        t = self.theta(x).flatten(2).transpose(1, 2)  # (B, HW, c)
        p = self.phi(x).flatten(2)                     # (B, c, HW)
        g = self.g(x).flatten(2).transpose(1, 2)      # (B, HW, c)
        y = torch.softmax(t @ p, dim=-1) @ g           # (B, HW, c)
        return x + self.out(y.transpose(1, 2).reshape(B, -1, H, W))


class SimpleNet(nn.Module):
    """SimpleNet auto-encoder (module docstring). (B, 3, H, W) -> (B, 3, H, W), H, W % 4 == 0.

    Parameters
    ----------
    width : int
        Channels at full resolution (1/2: 2x, 1/4: 4x); 70 gives 24.8M params.
    rank : int
        LGCR CP rank r (paper: 64).
    """

    #: H and W must be multiples of this
    multiple = 4

    def __init__(self, width: int = 70, rank: int = 64):
        super().__init__()
        c1, c2, c3 = width, 2 * width, 4 * width
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        self.head = nn.Sequential(nn.Conv2d(3, c1, 3, 1, 1), relu())
        self.enc1 = nn.Sequential(ResBlock3(c1), PVB(c1))
        self.down1 = nn.Sequential(nn.Conv2d(c1, c2, 3, 2, 1), relu())
        self.enc2 = nn.Sequential(ResBlock3(c2), PVB(c2))
        self.down2 = nn.Sequential(nn.Conv2d(c2, c3, 3, 2, 1), relu())
        self.enc3 = nn.Sequential(ResBlock3(c3), PVB(c3), LGCR(rank))
        self.dec3 = nn.Sequential(PVB(c3), DeformResBlock(c3), ResBlock3(c3))
        self.up2 = nn.Sequential(nn.ConvTranspose2d(c3, c2, 4, 2, 1), relu())
        self.dec2 = nn.Sequential(PVB(c2), DeformResBlock(c2), ResBlock3(c2))
        self.up1 = nn.Sequential(nn.ConvTranspose2d(c2, c1, 4, 2, 1), relu())
        self.dec1 = nn.Sequential(PVB(c1), DeformResBlock(c1), ResBlock3(c1))
        self.tail = nn.Conv2d(c1, 3, 3, 1, 1)

    def forward(self, blurry):
        if blurry.shape[-1] % 4 or blurry.shape[-2] % 4:
            raise ValueError(f"SimpleNet needs H and W divisible by 4, got {tuple(blurry.shape[-2:])}")
        s1 = self.enc1(self.head(blurry))
        s2 = self.enc2(self.down1(s1))
        x = self.dec3(self.enc3(self.down2(s2)))
        x = self.dec2(self.up2(x) + s2)
        x = self.dec1(self.up1(x) + s1)
        return self.tail(x) + blurry


def build_simplenet(width: int = 70, rank: int = 64) -> SimpleNet:
    """SimpleNet; the defaults give the paper's size (25.1M parameters, r = 64).

    Parameters
    ----------
    width : int
        Full-resolution channels (tests use 4-8).
    rank : int
        LGCR CP rank.
    """
    return SimpleNet(width, rank)
