"""Training spec of LBAG (ReLoBlur, Li et al., AAAI 2023).

Loss (ReLoBlur Eq. (7) and appendix D Eq. (2)), summed over the 3 scales::

    L = sum_s  l1 * ShMAE + ssim * ShSSIM(-SSIM) + fft * ShMSFR + gate * MSE(gate, mask)

``variant`` (``--loss variant=...``) chooses how:

* ``official`` (default), as ReLoBlur's training code (``LBAG_trainer.py``)
  computes it, so a model trained here is the model its code trains: targets
  at 1/2 and 1/4 by one bilinear resize each of the full-size ground truth
  (0.5x and 0.25x), masks resized ``nearest``; the FFT term the mean complex
  modulus of the spectra's difference; shift tolerance per image: the ground
  truth shifted by (dx, dy) in {-1, 0, 1}^2 with reflected borders, the
  minimum over the 9 shifts for each image, then the batch mean; the gate
  term a plain MSE (no shift).
* ``paper``: the appendix's reading: targets and masks by bilinear 0.5x
  steps (MIMO-UNet's code), the FFT term on real and imaginary parts
  (MIMO-UNet's code), the minimum over shifts of the batch mean on the
  shifts' common interior (Eqs. (3)-(6)), the gate term shift-invariant too
  (Eq. (3)).

Weights: l1 = 1, ssim = 1, fft = 0.1; **gate = 0.1, as in the official
code** (the appendix says 0.01; pass ``--loss gate=0.01`` for the paper's
value). ``shift`` is the shift radius (1; 0 disables the shift tolerance).
Adam, lr 1e-4, halved every 100k iterations; patch 256, batch 12 (ReLoBlur
Sec. 6.1); recipe ``lbag``.
"""

from __future__ import annotations

import torch.nn.functional as F

from lodetools.errors import BadConfig
from lodetools.train import losses
from lodetools.train.registry import Phase, Stage, TrainSpec


def _pyramid(x, variant: str, mode: str = "bilinear"):
    """[1/4, 1/2, full] versions of (B, C, H, W) ``x``."""
    if variant == "official":      # each scale by one resize of the full-size tensor
        return [F.interpolate(x, scale_factor=f, mode=mode) for f in (0.25, 0.5)] + [x]
    x2 = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
    x4 = F.interpolate(x2, scale_factor=0.5, mode="bilinear", align_corners=False)
    return [x4, x2, x]


TERMS = (("l1", losses.l1_loss), ("ssim", losses.ssim_loss), ("fft", losses.fft_l1_loss))


def _official_scale(img, gate, gt, m, r: int) -> dict:
    """One scale's terms as ReLoBlur's ``calc_losses`` + gate MSE."""
    parts = {}
    if r > 0:
        g = losses.reflect_shifts(gt, r)
        n = g.shape[0] // gt.shape[0]
        p = img.repeat_interleave(n, dim=0)
        for name, fn in TERMS:
            parts[name] = losses.min_per_image(fn(p, g, reduction="none"), n)
    else:
        for name, fn in TERMS:
            parts[name] = fn(img, gt)
    parts["gate"] = losses.mse_loss(gate, m)
    return parts


def _paper_scale(img, gate, gt, m, r: int) -> dict:
    """One scale's terms as ReLoBlur appendix D reads (all four shift-invariant)."""
    parts = {}
    terms = TERMS[:2] + (("fft", lambda a, b, reduction="mean": losses.fft_l1_loss(a, b, reduction, "parts")),)
    if r > 0:
        p, g, n = losses.shifted_stack(img, gt, r)
        for name, fn in terms:
            parts[name] = losses.min_over_shifts(fn(p, g, reduction="none"), n)
        p, g, n = losses.shifted_stack(gate, m, r)
        parts["gate"] = losses.min_over_shifts(losses.mse_loss(p, g, reduction="none"), n)
    else:
        for name, fn in terms:
            parts[name] = fn(img, gt)
        parts["gate"] = losses.mse_loss(gate, m)
    return parts


def lbag_loss(model, batch: dict, w: dict):
    """Total LBAG loss of one batch; ``batch`` blur/sharp (B, 3, S, S), mask (B, 1, S, S) in [0, 1].

    Returns ``(total, {'l1', 'ssim', 'fft', 'gate'})``, each term summed over
    the 3 scales (see the module docstring for ``w['variant']``).
    """
    out = model(batch["blur"])
    r, variant = int(w.get("shift", 1)), w.get("variant", "official")
    if variant not in ("official", "paper"):
        raise BadConfig(f"LBAG loss variant must be 'official' or 'paper', not {variant!r}")
    scale = _official_scale if variant == "official" else _paper_scale
    gts = _pyramid(batch["sharp"], variant)
    masks = _pyramid(batch["mask"], variant, mode="nearest")
    parts = {"l1": 0.0, "ssim": 0.0, "fft": 0.0, "gate": 0.0}
    for img, gate, gt, m in zip(out.images, out.gates, gts, masks):
        for n, v in scale(img.float(), gate.float(), gt.float(), m.float(), r).items():
            parts[n] = parts[n] + v
    total = sum(w[n] * v for n, v in parts.items())
    return total, {n: v.detach() for n, v in parts.items()}


def lbag_predict(model, x):
    """Full-resolution output (B, 3, H, W)."""
    return model(x).final


SPEC = TrainSpec(
    name="lbag", net="lbag", net_defaults={"base": 32, "num_res": 20, "dropout": 0.1},
    loss_defaults={"l1": 1.0, "ssim": 1.0, "fft": 0.1, "gate": 0.1, "shift": 1, "variant": "official"},
    stages=lambda w: [Stage("main", [Phase(lbag_loss, "data", need_mask=True, name="local")])],
    predict=lbag_predict, multiple=4, lr=1e-4, min_crop=52,   # 11x11 SSIM on the 1/4 scale, 1-px shifts
    description="LBAG (ReLoBlur): MIMO-UNet+ with gated heads; L1 - SSIM + 0.1 FFT + gate MSE, shift-invariant")
