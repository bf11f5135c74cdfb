"""Building blocks shared by the networks (tensors are (B, C, H, W)).

``BasicConv`` and ``ResBlock`` follow MIMO-UNet (Cho et al., ICCV 2021), whose
backbone LBAG reuses (ReLoBlur, Li et al. AAAI 2023); ``DoubleConv`` is the
'Conv-BN-ReLU-Conv-BN-ReLU' block of the U-Nets in BladeNet (LODE, Li et al.
2022, supplementary Fig. 8).
"""

from __future__ import annotations

import torch
from torch import nn


class BasicConv(nn.Sequential):
    """Conv (or transposed conv) + optional ReLU; 'same' padding, k4 s2 p1 when transposed.

    Parameters
    ----------
    c_in, c_out : int
        Channels.
    kernel_size, stride : int
    relu : bool
        Append a ReLU.
    transpose : bool
        Use ``ConvTranspose2d`` with padding ``k // 2 - 1`` (k=4, s=2 doubles H, W).
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, stride: int = 1, *,
                 relu: bool = True, transpose: bool = False, bias: bool = True):
        if transpose:
            conv = nn.ConvTranspose2d(c_in, c_out, kernel_size, stride=stride,
                                      padding=kernel_size // 2 - 1, bias=bias)
        else:
            conv = nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)
        layers = [conv] + ([nn.ReLU(inplace=True)] if relu else [])
        super().__init__(*layers)


class ResBlock(nn.Module):
    """``x + conv3(relu(conv3(x)))`` (MIMO-UNet ResBlock), (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.main = nn.Sequential(BasicConv(channels, channels, 3, relu=True),
                                  BasicConv(channels, channels, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + x


def res_stack(channels: int, num_res: int) -> nn.Sequential:
    """``num_res`` ResBlocks in a row (MIMO-UNet EBlock / DBlock)."""
    return nn.Sequential(*[ResBlock(channels) for _ in range(num_res)])


class DoubleConv(nn.Sequential):
    """'Conv3-BN-ReLU-Conv3-BN-ReLU' (U-Net block; convs carry a bias as in the LODE code)."""

    def __init__(self, c_in: int, c_out: int, c_mid: int | None = None):
        c_mid = c_mid or c_out
        super().__init__(nn.Conv2d(c_in, c_mid, 3, padding=1), nn.BatchNorm2d(c_mid), nn.ReLU(inplace=True),
                         nn.Conv2d(c_mid, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (works for models built on the ``meta`` device)."""
    return sum(p.numel() for p in model.parameters())
