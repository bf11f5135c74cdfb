"""Training spec of SimpleNet (Li et al., "Perceptual Variousness Motion Deblurring
with Light Global Context Refinement", ICCV 2021).

Loss: L1 between the output and the sharp image (SimpleNet Sec. 3.5). Adam
(beta 0.9, 0.999), batch 8, lr 1e-4 (Sec. 3.5), recipe
``lodetools/recipes/train/simplenet.toml``. The per-iteration training-crop PSNR
(8-bit rounded, dB) is logged as the ``psnr`` part, and the blurry input's
as ``psnr_in`` (their difference is the gain, free of the crops' content).
"""

from __future__ import annotations

import torch

from lodetools.errors import BadConfig
from lodetools.metrics.batched import psnr_batch
from lodetools.train import losses
from lodetools.train.registry import Phase, Stage, TrainSpec


def crop_psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean PSNR (dB, 8-bit rounded, capped at 100 dB for identical crops) of a batch
    of crops (B, 3, S, S), no gradient."""
    with torch.no_grad():
        return psnr_batch(pred.detach().float().clamp(0, 1), target.float()).clamp(max=100).mean()


def check_crop(batch: dict, multiple: int, net: str) -> None:
    """Raise BadConfig unless the training crops' sides are multiples of ``multiple``."""
    h, w = batch["blur"].shape[-2:]
    if h % multiple or w % multiple:
        raise BadConfig(f"--crop {h}x{w} must be a multiple of {multiple} for {net}")


def simplenet_loss(model, batch: dict, w: dict):
    """``l1 * L1(SimpleNet(blur), sharp)``; batch blur/sharp (B, 3, S, S)."""
    check_crop(batch, 4, "SimpleNet")
    out = model(batch["blur"]).float()
    l1 = losses.l1_loss(out, batch["sharp"])
    return w["l1"] * l1, {"l1": l1.detach(), "psnr": crop_psnr(out, batch["sharp"]),
                          "psnr_in": crop_psnr(batch["blur"], batch["sharp"])}


SPEC = TrainSpec(
    name="simplenet", net="simplenet", net_defaults={"width": 70, "rank": 64},
    loss_defaults={"l1": 1.0},
    stages=lambda w: [Stage("main", [Phase(simplenet_loss, "data", name="main")])],
    predict=lambda model, x: model(x), multiple=4, lr=1e-4,
    description="SimpleNet (PVB, LGCR, Deformable ResBlocks); L1 loss")
