"""Training spec of LBAG (ReLoBlur, Li et al., AAAI 2023).

Loss (ReLoBlur Eq. (7) and appendix D Eq. (2)), summed over the 3 scales,
each term shift-invariant (min over the 9 one-pixel shifts, appendix D)::

    L = sum_s  l1 * ShMAE + ssim * ShSSIM(-SSIM) + fft * ShMSFR + gate * ShMSE(gate, mask)

with ground truth and mask resized by bilinear 0.5x steps (MIMO-UNet's
training code). Weights: l1 = 1, ssim = 1, fft = 0.1; **gate = 0.1, as in the
official code** (the appendix says 0.01; pass ``--loss gate=0.01`` for the
paper's value). ``shift`` is the shift radius (1; 0 disables the
shift-invariant operation). Adam, lr 1e-4, halved every 100k iterations;
patch 256, batch 12 (ReLoBlur Sec. 6.1); recipe ``lodetools/recipes/train/lbag.toml``.
"""

from __future__ import annotations

import torch.nn.functional as F

from lodetools.train import losses
from lodetools.train.registry import Phase, Stage, TrainSpec


def _pyramid(x):
    x2 = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
    x4 = F.interpolate(x2, scale_factor=0.5, mode="bilinear", align_corners=False)
    return [x4, x2, x]


def lbag_loss(model, batch: dict, w: dict):
    """Total LBAG loss of one batch; ``batch`` blur/sharp (B, 3, S, S), mask (B, 1, S, S)."""
    out = model(batch["blur"])
    r = int(w.get("shift", 1))
    terms = (("l1", losses.l1_loss), ("ssim", losses.ssim_loss), ("fft", losses.fft_l1_loss))
    parts = {"l1": 0.0, "ssim": 0.0, "fft": 0.0, "gate": 0.0}
    for img, gate, gt, m in zip(out.images, out.gates, _pyramid(batch["sharp"]), _pyramid(batch["mask"])):
        if r > 0:  # all 9 shifts in one batch; each term takes its own minimum (appendix D)
            p, g, n = losses.shifted_stack(img.float(), gt, r)
            for name, fn in terms:
                parts[name] = parts[name] + losses.min_over_shifts(fn(p, g, reduction="none"), n)
            p, g, n = losses.shifted_stack(gate.float(), m, r)
            parts["gate"] = parts["gate"] + losses.min_over_shifts(losses.mse_loss(p, g, reduction="none"), n)
        else:
            for name, fn in terms:
                parts[name] = parts[name] + fn(img.float(), gt)
            parts["gate"] = parts["gate"] + losses.mse_loss(gate.float(), m)
    total = sum(w[n] * v for n, v in parts.items())
    return total, {n: v.detach() for n, v in parts.items()}


def lbag_predict(model, x):
    """Full-resolution output (B, 3, H, W)."""
    return model(x).final


SPEC = TrainSpec(
    name="lbag", net="lbag", net_defaults={"base": 32, "num_res": 20, "dropout": 0.1},
    loss_defaults={"l1": 1.0, "ssim": 1.0, "fft": 0.1, "gate": 0.1, "shift": 1},
    stages=lambda w: [Stage("main", [Phase(lbag_loss, "data", need_mask=True, name="local")])],
    predict=lbag_predict, multiple=4, lr=1e-4, min_crop=52,   # 11x11 SSIM on the 1/4 scale, 1-px shifts
    description="LBAG (ReLoBlur): MIMO-UNet+ with gated heads; L1 - SSIM + 0.1 FFT + gate MSE, shift-invariant")
