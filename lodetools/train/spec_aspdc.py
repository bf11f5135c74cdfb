"""Training spec of ASPDC (Huo et al., CVPR Workshops 2022): three stages in sequence.

The model is :class:`lodetools.nets.aspdc.ASPDCPair` (``deblur`` + ``reblur``);
the stages (fractions of ``--iters``; ``--stages`` overrides) follow the
paper's Sec. 3.4:

1. ``deblur`` (0.45): the deblurring net with ``MSE(D(I_b), I_s)`` (Eq. (5)),
   reblurring net frozen;
2. ``reblur`` (0.45): the reblurring net with ``MSE(R(I_b, I_s), I_b)``
   (Eq. (6)), deblurring net frozen;
3. ``consistency`` (0.1): the deblurring net fine-tuned at lr 1e-5 with
   ``MSE(D(I_b), I_s) + lambda MSE(R(I_b, D(I_b)), I_b)`` (Eq. (7),
   lambda = ``--loss lam=`` 0.1), reblurring net frozen.

``variant`` (``--loss variant=...``): ``official`` (default) trains as the
authors' code (``DR_training.py``): the networks work on [-1, 1] data
(``net_opts`` ``signed=true``, their ``Normalize(0.5, 0.5)``), and each MSE
compares images mapped back to [0, 1] and normalised with the ImageNet
mean/std (their ``PerceptualLoss``), i.e. the squared error of channel c is
divided by ``std_c ** 2`` (std 0.229, 0.224, 0.225); weights Xavier-normal
over every convolution, offset and mask predictors included
(:func:`lodetools.nets.aspdc.xavier_init_`). ``paper``: plain MSE on [0, 1]
images (Eqs. (5)-(7), Frobenius norms as means).

Adam, lr 1e-4 (1e-5 for fine-tuning), crops 256, batch 6 (Sec. 4.1); recipe
``lodetools/recipes/train/aspdc.toml``. The paper halves each stage's rate every
1000 (fine-tuning: 200) epochs until 1e-6; the trainer's schedule
(``--lr-milestones``/``--lr-step``) is global over the three stages instead,
so it also scales the fine-tuning rate. The training-crop PSNR of the trained
network's output is logged as the ``psnr`` part, and its input's (blurry
for deblurring, sharp for reblurring, against the same target) as ``psnr_in``.
"""

from __future__ import annotations

import torch

from lodetools.errors import BadConfig
from lodetools.train import losses
from lodetools.train.spec_simplenet import check_crop, crop_psnr
from lodetools.train.registry import Phase, Stage, TrainSpec


#: ImageNet channel std of the authors' ``PerceptualLoss`` normalisation (the mean cancels in a difference)
IMAGENET_STD = (0.229, 0.224, 0.225)


def aspdc_mse(pred: torch.Tensor, target: torch.Tensor, variant: str = "official") -> torch.Tensor:
    """MSE of (B, 3, H, W) images in [0, 1]: per-channel ImageNet-normalised (official) or plain (paper)."""
    if variant == "paper":
        return losses.mse_loss(pred, target)
    if variant != "official":
        raise BadConfig(f"ASPDC loss variant must be 'official' or 'paper', not {variant!r}")
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=pred.device).view(1, 3, 1, 1)
    return losses.mse_loss(pred.float() / std, target.float() / std)


def deblur_loss(model, batch: dict, w: dict):
    """Eq. (5): ``MSE(D(I_b), I_s)``."""
    check_crop(batch, 8, "ASPDC")
    out = model.deblur(batch["blur"]).float()
    mse = aspdc_mse(out, batch["sharp"], w.get("variant", "official"))
    return w["mse"] * mse, {"mse": mse.detach(), "psnr": crop_psnr(out, batch["sharp"]),
                            "psnr_in": crop_psnr(batch["blur"], batch["sharp"])}


def reblur_loss(model, batch: dict, w: dict):
    """Eq. (6): ``MSE(R(I_b, I_s), I_b)``; psnr is reblurred vs blurry."""
    check_crop(batch, 8, "ASPDC")
    out = model.reblur(batch["blur"], batch["sharp"]).float()
    mse = aspdc_mse(out, batch["blur"], w.get("variant", "official"))
    return w["mse"] * mse, {"mse": mse.detach(), "psnr": crop_psnr(out, batch["blur"]),
                            "psnr_in": crop_psnr(batch["sharp"], batch["blur"])}


def finetune_loss(model, batch: dict, w: dict):
    """Eq. (7): ``MSE(D(I_b), I_s) + lam MSE(R(I_b, D(I_b)), I_b)`` (the authors' ``DR_training.py`` loss)."""
    check_crop(batch, 8, "ASPDC")
    v = w.get("variant", "official")
    out = model.deblur(batch["blur"]).float()
    d = aspdc_mse(out, batch["sharp"], v)
    r = aspdc_mse(model.reblur(batch["blur"], out).float(), batch["blur"], v)
    total = d + w["lam"] * r
    return w["mse"] * total, {"total": total.detach(), "deblur": d.detach(), "reblur": r.detach(),
                              "psnr": crop_psnr(out, batch["sharp"]),
                              "psnr_in": crop_psnr(batch["blur"], batch["sharp"])}


def aspdc_stages(w: dict) -> list:
    return [
        Stage("deblur", [Phase(deblur_loss, "data", name="deblur")], fraction=0.45, frozen=("reblur",)),
        Stage("reblur", [Phase(reblur_loss, "data", name="reblur")], fraction=0.45, frozen=("deblur",)),
        Stage("consistency", [Phase(finetune_loss, "data", name="consistency")], fraction=0.1,
              frozen=("reblur",), lr=w["finetune_lr"]),
    ]


SPEC = TrainSpec(
    name="aspdc", net="aspdc-pair",
    net_defaults={"width": 32, "groups": 6, "num_res": 2, "reblur_width": 16, "signed": True},
    loss_defaults={"mse": 1.0, "lam": 0.1, "finetune_lr": 1e-5, "variant": "official"},
    stages=aspdc_stages, predict=lambda model, x: model(x), multiple=8, lr=1e-4,
    description="ASPDC: deblurring (MSE), reblurring (MSE), consistency fine-tuning (lambda 0.1)")
