"""LBAG: local blur-aware gated network (ReLoBlur, Li et al., AAAI 2023, Sec. 4).

MIMO-UNet+ backbone (``num_res=20``, widths 32/64/128, Dropout2d 0.1) whose
three heads output 4 channels: a gate logit ``z0`` and an RGB residual
``z[1:4]``. Per scale (ReLoBlur Eq. (6)-(7), as in the official code)::

    gate = clamp_min(sigmoid(z0), 0.1)
    out  = z[1:4] * gate + input_at_scale

The gate is supervised by the (downscaled) local-blur mask. Full size:
16,109,670 parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lodetools.nets.mimo import MIMOUNet

#: lower bound of the gate (official code's clamp)
GATE_MIN = 0.1


@dataclass
class LBAGOutput:
    """LBAG outputs, coarse to fine (index 0 = 1/4 scale, 2 = full resolution).

    images : list of (B, 3, H/s, W/s) tensors
    gates : list of (B, 1, H/s, W/s) tensors in [0.1, 1]
    """

    images: list
    gates: list

    @property
    def final(self) -> torch.Tensor:
        """The full-resolution deblurred image (B, 3, H, W)."""
        return self.images[-1]


class LBAG(MIMOUNet):
    """LBAG network; see the module docstring. ``forward(x)`` -> :class:`LBAGOutput`."""

    def __init__(self, base: int = 32, num_res: int = 20, dropout: float = 0.1):
        super().__init__(base=base, num_res=num_res, dropout=dropout, out_channels=4)

    def forward(self, x: torch.Tensor) -> LBAGOutput:
        outs, pyr = super().forward(x)
        images, gates = [], []
        for z, inp in zip(outs, pyr):
            gate = torch.sigmoid(z[:, :1]).clamp_min(GATE_MIN)
            images.append(z[:, 1:4] * gate + inp)
            gates.append(gate)
        return LBAGOutput(images, gates)


def build_lbag(base: int = 32, num_res: int = 20, dropout: float = 0.1) -> LBAG:
    """Build LBAG; defaults give the paper's network (16,109,670 parameters).

    Parameters
    ----------
    base : int
        Width of the first scale (32); smaller gives test models.
    num_res : int
        ResBlocks per encoder/decoder block (20, MIMO-UNet+).
    dropout : float
        Dropout2d probability on the fused skips (0.1).
    """
    return LBAG(base=int(base), num_res=int(num_res), dropout=float(dropout))
