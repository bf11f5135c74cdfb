"""ASPDC deblurring network and its reblurring network (Huo et al.).

Deblurring network: a head at full resolution (conv 3->32 + LeakyReLU(0.1),
two ResBlocks), two stride-2 convs to 128 channels at 1/4 resolution, six
groups (two ResBlocks + one ASPDC module), dense fusion of the six group
outputs (6 x 128 -> 128), two transposed convs back to full resolution, a
conv to 3 channels, plus the input. 15,016,503 parameters at full size, as
the authors' code.

Reblurring network: an encoder-decoder (16/32/64/128 channels) run twice with
shared weights; the upper pass sees (blurry, sharp) and predicts per-pixel
3x3 filters after every stage; the lower pass sees the sharp image (twice,
through the shared 6-channel head, as the authors' code) and is filtered by
them, i.e. reblurred progressively. 998,802 parameters.

Both use no normalisation (paper Sec. 3) and Xavier-normal weights as the
authors' code initialises them (Sec. 4.1; see :func:`xavier_init_`). The zero-offset branch's mask conv
is padded (the authors' code omits the padding, a bug that makes its mask
2 px smaller than the features); it has the same parameter count.

References
----------
.. [1] Huo, Masoumzadeh, Yang, "Blind Non-Uniform Motion Deblurring using
   Atrous Spatial Pyramid Deformable Convolution and Deblurring-Reblurring
   Consistency", CVPR Workshops 2022. https://github.com/Dong-Huo/ASPDC
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lodetools.nets.deform import ModulatedDeformConvPack

__all__ = ["ResBlock", "ASPDCModule", "ASPDCNet", "ReblurNet", "DynamicFilter",
           "ASPDCPair", "xavier_init_", "build_aspdc", "build_reblur", "build_aspdc_pair", "consistency_loss"]


def _lrelu():
    return nn.LeakyReLU(0.1, inplace=True)


class ResBlock(nn.Module):
    """conv3-LeakyReLU(0.1)-conv3 + x. (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), _lrelu(),
                                  nn.Conv2d(channels, channels, 3, 1, 1))

    def forward(self, x):
        return x + self.body(x)


class ASPDCModule(nn.Module):
    """Atrous Spatial Pyramid Deformable Convolution module (paper Fig. 3).

    ``r = LReLU(conv(x))``; four modulated deformable 3x3 branches on ``r``:
    branch 1 has zero offsets (mask only), branches 2-4 predict offsets and
    masks with dilation 1, 2, 4. An attention network on ``x`` (conv, LReLU,
    two ResBlocks, 1x1 conv to 4) gives four maps, softmax over branches
    (paper Eq. (4)); ``f_o = sum_i a_i * f_i`` (paper Eq. (3));
    output ``conv(f_o) + x``.

    Parameters
    ----------
    channels : int
    dilations : tuple of int
        Dilations of the offset predictors of branches 2-4.

    Notes
    -----
    (B, C, H, W) -> (B, C, H, W). ``last_attention`` keeps the most recent
    (B, 4, H, W) attention maps for inspection.
    """

    def __init__(self, channels: int, dilations=(1, 2, 4)):
        super().__init__()
        self.res_conv = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), _lrelu())
        branches = [ModulatedDeformConvPack(channels, channels, 3, padding=1, zero_offset=True)]
        branches += [ModulatedDeformConvPack(channels, channels, 3, padding=1, offset_dilation=d)
                     for d in dilations]
        self.branches = nn.ModuleList(branches)
        self.attention = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), _lrelu(),
                                       ResBlock(channels), ResBlock(channels),
                                       nn.Conv2d(channels, len(branches), 1))
        self.fusion = nn.Conv2d(channels, channels, 3, 1, 1)
        self.last_attention = None

    def forward(self, x):
        r = self.res_conv(x)
        a = torch.softmax(self.attention(x), dim=1)  # Eq. (4): sum_i a_ij = 1
        self.last_attention = a.detach()
        fo = sum(a[:, i:i + 1] * branch(r) for i, branch in enumerate(self.branches))  # Eq. (3)
        return self.fusion(fo) + x


class ASPDCNet(nn.Module):
    """ASPDC deblurring network. (B, 3, H, W) -> (B, 3, H, W), H and W multiples of 4.

    Parameters
    ----------
    widths : tuple of 3 int
        Channels at full, 1/2 and 1/4 resolution (paper: 32, 64, 128).
    groups : int
        Number of (ResBlocks + ASPDC) groups (paper: 6).
    num_res : int
        ResBlocks per group (paper: 2).
    signed : bool
        Work on [-1, 1] data as the authors' code: the (B, 3, H, W) input in
        [0, 1] is mapped by ``(x - 0.5) / 0.5`` (their ``Normalize(mean=0.5,
        std=0.5)``) and the output back by ``(y + 1) / 2``. Their test script
        clamps ``y`` to [-1, 1] first; clamping the mapped output to [0, 1]
        (as :func:`lodetools.train.inference.predict_image` does) is the same.
        False: the network sees and returns [0, 1] data.
    """

    #: H and W must be multiples of this
    multiple = 4

    def __init__(self, widths=(32, 64, 128), groups=6, num_res=2, signed=False):
        super().__init__()
        self.signed = bool(signed)
        c0, c1, c2 = widths
        self.head = nn.Sequential(nn.Conv2d(3, c0, 3, 1, 1), _lrelu(), ResBlock(c0), ResBlock(c0),
                                  nn.Conv2d(c0, c1, 3, 2, 1), _lrelu(),
                                  nn.Conv2d(c1, c2, 3, 2, 1), _lrelu())
        self.groups = nn.ModuleList(
            nn.Sequential(*[ResBlock(c2) for _ in range(num_res)], ASPDCModule(c2))
            for _ in range(groups))
        self.dense = nn.Sequential(nn.Conv2d(c2 * groups, c2, 3, 1, 1), _lrelu())
        self.tail = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 3, 2, 1, output_padding=1), _lrelu(),
            nn.ConvTranspose2d(c1, c0, 3, 2, 1, output_padding=1), _lrelu(),
            nn.Conv2d(c0, 3, 3, 1, 1))

    def forward(self, blurry):
        if blurry.shape[-1] % 4 or blurry.shape[-2] % 4:
            raise ValueError(f"ASPDC needs H and W divisible by 4, got {tuple(blurry.shape[-2:])}")
        if self.signed:
            blurry = (blurry - 0.5) / 0.5
        x = self.head(blurry)
        outs = []
        for g in self.groups:
            x = g(x)
            outs.append(x)
        out = self.tail(self.dense(torch.cat(outs, 1))) + blurry
        return (out + 1) / 2 if self.signed else out


class DynamicFilter(nn.Module):
    """Per-pixel 3x3 filtering shared across channels (paper Sec. 3.3).

    ``out[b, c, y, x] = sum_k softmax(logits)[b, k, y, x] * x_pad[b, c, y + i_k - 1,
    x + j_k - 1]`` with reflection padding; logits (B, K*K, H, W), features
    (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, kernel_size: int = 3):
        super().__init__()
        self.k = kernel_size

    def forward(self, x, logits):
        B, C, H, W = x.shape
        p = self.k // 2
        cols = F.unfold(F.pad(x, (p, p, p, p), mode="reflect"), self.k)
        cols = cols.view(B, C, self.k * self.k, H, W)
        return torch.einsum("bkhw,bckhw->bchw", torch.softmax(logits, 1), cols)


class ReblurNet(nn.Module):
    """Reblurring network: (blurry, sharp) (B, 3, H, W) x2 -> reblurred (B, 3, H, W).

    H and W must be multiples of 8.

    Parameters
    ----------
    widths : tuple of 4 int
        Encoder channels (paper: 16, 32, 64, 128).
    kernel_size : int
        Dynamic filter size K (paper: 3).
    signed : bool
        Work on [-1, 1] data as the authors' code (see :class:`ASPDCNet`).
    """

    def __init__(self, widths=(16, 32, 64, 128), kernel_size=3, signed=False):
        super().__init__()
        self.signed = bool(signed)
        c0, c1, c2, c3 = widths
        kk = kernel_size * kernel_size

        def down(ci, co):
            return nn.Sequential(nn.Conv2d(ci, co, 3, 2, 1), ResBlock(co), _lrelu())

        def up(ci, co):
            return nn.Sequential(ResBlock(ci), nn.ConvTranspose2d(ci, co, 3, 2, 1, output_padding=1),
                                 _lrelu())

        self.head = nn.Sequential(nn.Conv2d(6, c0, 3, 1, 1), _lrelu())
        self.stages = nn.ModuleList([down(c0, c1), down(c1, c2), down(c2, c3),
                                     up(c3, c2), up(c2, c1), up(c1, c0)])
        # one filter predictor after the head and after each stage
        self.kernels = nn.ModuleList(nn.Conv2d(c, kk, 3, 1, 1) for c in (c0, c1, c2, c3, c2, c1, c0))
        self.tail = nn.Conv2d(c0, 3, 3, 1, 1)
        self.filter = DynamicFilter(kernel_size)

    def _run(self, inp, kernels=None):
        """One pass; collects filter logits (upper) or applies them (lower)."""
        feats = []
        f = self.head(inp)
        stage_feats = [f]
        for idx, stage in enumerate(self.stages):
            if kernels is None:
                feats.append(self.kernels[idx](f))
            else:
                f = self.filter(f, kernels[idx])
                stage_feats[-1] = f
            f = stage(f)
            if idx == 3:      # decoder 1/4 + encoder 1/4 skip
                f = f + stage_feats[2]
            elif idx == 4:    # decoder 1/2 + encoder 1/2 skip
                f = f + stage_feats[1]
            stage_feats.append(f)
        if kernels is None:
            feats.append(self.kernels[-1](f))
            return feats
        return self.filter(f, kernels[-1])

    def forward(self, blurry, sharp):
        if blurry.shape != sharp.shape:
            raise ValueError("blurry and sharp must have the same shape")
        if blurry.shape[-1] % 8 or blurry.shape[-2] % 8:
            raise ValueError(f"reblur net needs H and W divisible by 8, got {tuple(blurry.shape[-2:])}")
        if self.signed:
            blurry, sharp = (blurry - 0.5) / 0.5, (sharp - 0.5) / 0.5
        kernels = self._run(torch.cat([blurry, sharp], 1))          # upper branch
        out = self.tail(self._run(torch.cat([sharp, sharp], 1), kernels))  # lower branch
        return (out + 1) / 2 if self.signed else out


def consistency_loss(deblurred, sharp, blurry, reblur, lam: float = 0.1):
    """Deblurring-reblurring consistency loss, ASPDC Eq. (7).

    ``L = MSE(I_d, I_s) + lam * MSE(R(I_b, I_d), I_b)`` (Eqs. (5)-(7); mean
    squared error in place of the squared Frobenius norm, as the authors'
    code; ``lam`` = 0.1, paper Table 6). ``reblur`` is the reblurring network.
    """
    return F.mse_loss(deblurred, sharp) + lam * F.mse_loss(reblur(blurry, deblurred), blurry)


def xavier_init_(model: nn.Module, form: str = "official") -> nn.Module:
    """Paper Sec. 4.1: "All parameters are initialized using Xavier normalization".

    Parameters
    ----------
    form : {'official', 'dcn'}
        ``'official'`` (default), as the authors' code (``weights_init_xavier``
        applied to every module whose class name holds ``Conv2d``):
        Xavier-normal weights for every (transposed, deformable) convolution,
        the offset and mask predictors included, each with its own fan (the
        authors' code has separate ``p_conv`` (18 outputs) and ``m_conv``
        (9 outputs)); biases keep PyTorch's default uniform initialisation.
        ``'dcn'``: Xavier-normal weights and zero biases, offset/mask
        predictors zero (DCNv2 practice: training starts from a regular
        convolution).
    """
    from lodetools.nets.deform import DeformConv2d
    predictors = {id(m.conv_offset): m for m in model.modules() if hasattr(m, "conv_offset")}
    if form not in ("official", "dcn"):
        raise ValueError(f"form must be 'official' or 'dcn', not {form!r}")
    for m in model.modules():
        if id(m) in predictors:
            if form == "official":
                _xavier_predictor_(m, predictors[id(m)])
            continue
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, DeformConv2d)):
            nn.init.xavier_normal_(m.weight)
            if form == "dcn" and m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


@torch.no_grad()
def _xavier_predictor_(conv: nn.Conv2d, layer) -> None:
    """Xavier-normal offset rows and mask rows of a fused predictor, each with its own fan; default bias."""
    import math
    k = conv.weight.shape[2] * conv.weight.shape[3]
    fan_in = conv.weight.shape[1] * k
    gk = layer.offset_groups * layer.kernel_size[0] * layer.kernel_size[1]
    groups = [(0, gk)] if layer.zero_offset else [(0, 2 * gk), (2 * gk, 3 * gk)]
    for lo, hi in groups:
        std = math.sqrt(2.0 / (fan_in + (hi - lo) * k))
        conv.weight[lo:hi].normal_(0.0, std)
    bound = 1 / math.sqrt(fan_in)
    conv.bias.uniform_(-bound, bound)


def build_aspdc(width: int = 32, groups: int = 6, num_res: int = 2, signed: bool = False) -> ASPDCNet:
    """ASPDC deblurring network; width 32, 6 groups, 2 ResBlocks: the paper's (15,016,503 params).

    Parameters
    ----------
    width : int
        Full-resolution channels; 1/2 and 1/4 resolution use 2x and 4x.
    groups, num_res : int
    signed : bool
        [-1, 1] data inside the network, as the authors' code (see :class:`ASPDCNet`).
    """
    return xavier_init_(ASPDCNet((width, 2 * width, 4 * width), groups, num_res, signed=signed))


def build_reblur(width: int = 16, signed: bool = False) -> ReblurNet:
    """ASPDC reblurring network; width 16 is the paper's (998,802 params). Xavier init."""
    return xavier_init_(ReblurNet((width, 2 * width, 4 * width, 8 * width), signed=signed))


class ASPDCPair(nn.Module):
    """The deblurring and reblurring networks in one module, for staged training.

    ``forward(blurry)`` is the deblurring network's (B, 3, H, W) output, so a
    trained pair deblurs like :class:`ASPDCNet`; ``reblur`` is used by the
    training stages only (ASPDC Sec. 3.4).
    """

    #: H and W must be multiples of this (the reblurring net halves three times)
    multiple = 8

    def __init__(self, deblur: ASPDCNet, reblur: ReblurNet):
        super().__init__()
        self.deblur = deblur
        self.reblur = reblur

    def forward(self, blurry):
        return self.deblur(blurry)


def build_aspdc_pair(width: int = 32, groups: int = 6, num_res: int = 2,
                     reblur_width: int = 16, signed: bool = False) -> ASPDCPair:
    """Deblurring + reblurring networks for ``lodetools train aspdc`` (paper sizes by default)."""
    return ASPDCPair(build_aspdc(width, groups, num_res, signed), build_reblur(reblur_width, signed))
