"""BladeNet: blur-aware deblurring network (LODE, Li et al. 2022, Sec. 4).

Two U-Nets (supplementary Fig. 8; widths 64..512, bilinear upsampling,
'Conv-BN-ReLU-Conv-BN-ReLU' blocks):

* LBP "MaskNet" (Sec. 4.2): blurred image (B, 3, H, W) -> 2 logits (B, 2, H, W)
  (class 1 = locally blurred), trained with cross-entropy (LODE Eq. (1)).
* DeblurNet: image + the 2 LBP logits (B, 5, H, W) -> sharp image
  ``sigmoid(conv1x1)`` (no global residual). Up2, Up3 and Up4 carry the
  blur-guided spatial attention (BSA, LODE Eqs. (2)-(3)):
  ``A = sigmoid(conv7x7(F))``, ``F <- F * A``, inserted as
  'Conv-BN-ReLU-Conv-BN-ReLU-BSA-Conv-BN-ReLU-Conv-BN-ReLU'. The sum of the
  three attention maps upsampled to full resolution is supervised by Dice
  (LODE Eq. (4)).

Full size: MaskNet 17,267,458 + DeblurNet 23,511,110 = 40,778,568 parameters
(paper: 40.8M). H and W must be multiples of 16.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lodetools.nets.blocks import DoubleConv


class Down(nn.Sequential):
    """'Maxpool-Conv-BN-ReLU-Conv-BN-ReLU': (B, c_in, H, W) -> (B, c_out, H/2, W/2)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.MaxPool2d(2), DoubleConv(c_in, c_out))


class Up(nn.Module):
    """Bilinear 2x upsampling, concat with the skip, DoubleConv(c_in, c_out, c_in/2).

    With ``attention`` a DoubleConv(c_in, c_in) + BSA come first (LODE supp. Fig. 8)
    and ``forward`` also returns the attention map (B, 1, H, W).
    """

    def __init__(self, c_in: int, c_out: int, attention: bool = False):
        super().__init__()
        self.attention = attention
        if attention:
            self.pre = DoubleConv(c_in, c_in)
            self.att = nn.Conv2d(c_in, 1, 7, padding=3)
        self.conv = DoubleConv(c_in, c_out, c_in // 2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        x = torch.cat([skip, x], dim=1)
        att = None
        if self.attention:
            x = self.pre(x)
            att = torch.sigmoid(self.att(x))       # LODE Eq. (2)
            x = x * att                             # LODE Eq. (3)
        return self.conv(x), att


class UNet(nn.Module):
    """U-Net with widths ``w, 2w, 4w, 8w, 8w`` (w = 64 in LODE); BSA in the ``attention`` ups.

    ``forward(x)`` -> (features (B, w, H, W), list of attention maps, coarse to fine).
    """

    multiple = 16

    def __init__(self, c_in: int, width: int = 64, attention=(False, False, False, False)):
        super().__init__()
        w = width
        self.inc = DoubleConv(c_in, w)
        self.downs = nn.ModuleList([Down(w, 2 * w), Down(2 * w, 4 * w), Down(4 * w, 8 * w), Down(8 * w, 8 * w)])
        self.ups = nn.ModuleList([Up(16 * w, 4 * w, attention[0]), Up(8 * w, 2 * w, attention[1]),
                                  Up(4 * w, w, attention[2]), Up(2 * w, w, attention[3])])

    def forward(self, x: torch.Tensor):
        skips = [self.inc(x)]
        for d in self.downs:
            skips.append(d(skips[-1]))
        z = skips.pop()
        atts = []
        for up in self.ups:
            z, a = up(z, skips.pop())
            if a is not None:
                atts.append(a)
        return z, atts


class MaskNet(nn.Module):
    """LBP module: (B, 3, H, W) image -> (B, 2, H, W) logits (LODE Sec. 4.2)."""

    multiple = 16

    def __init__(self, width: int = 64):
        super().__init__()
        self.unet = UNet(3, width)
        self.outc = nn.Conv2d(width, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outc(self.unet(x)[0])


class DeblurNet(nn.Module):
    """Deblurring U-Net with BSA in Up2-Up4: (B, 5, H, W) -> image (B, 3, H, W), 3 attention maps."""

    multiple = 16

    def __init__(self, width: int = 64):
        super().__init__()
        self.unet = UNet(5, width, attention=(False, True, True, True))
        self.outc = nn.Conv2d(width, 3, 1)

    def forward(self, x: torch.Tensor):
        z, atts = self.unet(x)
        return torch.sigmoid(self.outc(z)), atts


@dataclass
class BladeNetOutput:
    """BladeNet outputs.

    final : (B, 3, H, W) deblurred image in [0, 1]
    mask_logits : (B, 2, H, W) LBP logits
    attention : (B, 1, H, W) sum of the 3 BSA maps (in [0, 3]) by 2x steps,
        ``map3 + up2(map2 + up2(map1))``, as the official ``DeblurNet.forward``
        (``SAAdd``; bilinear, align_corners=True)
    maps : the 3 BSA maps (B, 1, H/4, W/4), (B, 1, H/2, W/2), (B, 1, H, W)
    """

    final: torch.Tensor
    mask_logits: torch.Tensor
    attention: torch.Tensor
    maps: list | None = None


def attention_sum(maps, size=None, form: str = "official") -> torch.Tensor:
    """Sum of BSA attention maps (coarse to fine), (B, 1, H, W) at the finest map's size.

    Parameters
    ----------
    maps : list of (B, 1, h_i, w_i) tensors, coarse to fine
    size : (H, W), optional
        Output size (default: the last map's).
    form : {'official', 'paper'}
        ``'official'`` (default): upsampled by 2x steps and added on the way,
        ``up2(up2(m1) + m2) + m3``, as LODE's code (``DeblurNet.SAAdd``).
        ``'paper'``: each map upsampled to full size, then added (LODE Eq. (4)).
        Bilinear with align_corners=True in both.
    """
    size = tuple(size or maps[-1].shape[-2:])

    def up(a, to):
        return a if tuple(a.shape[-2:]) == tuple(to) else F.interpolate(a, size=to, mode="bilinear",
                                                                         align_corners=True)
    if form == "paper":
        return sum(up(a, size) for a in maps)
    if form != "official":
        raise ValueError(f"form must be 'official' or 'paper', not {form!r}")
    acc = maps[0]
    for a in maps[1:]:
        acc = a + up(acc, a.shape[-2:])
    return up(acc, size)


class BladeNet(nn.Module):
    """LBP MaskNet + DeblurNet; ``forward(x)`` (B, 3, H, W) -> :class:`BladeNetOutput`."""

    multiple = 16

    def __init__(self, width: int = 64):
        super().__init__()
        self.lbp = MaskNet(width)
        self.deblur = DeblurNet(width)

    def forward(self, x: torch.Tensor, parts: str = "all") -> BladeNetOutput:
        """``parts='lbp'`` runs only the LBP module (``final``/``attention`` are None)."""
        logits = self.lbp(x)
        if parts == "lbp":
            return BladeNetOutput(None, logits, None)
        img, atts = self.deblur(torch.cat([x, logits], dim=1))
        return BladeNetOutput(img, logits, attention_sum(atts, x.shape[-2:]), list(atts))


def build_bladenet(width: int = 64) -> BladeNet:
    """Build BladeNet; ``width=64`` gives the paper's 40,778,568 parameters.

    Parameters
    ----------
    width : int
        Width of the first U-Net level (64); smaller gives test models.
    """
    return BladeNet(int(width))
