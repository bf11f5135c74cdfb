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

Adam, lr 1e-4 (1e-5 for fine-tuning), crops 256, batch 6 (Sec. 4.1); recipe
``lodetools/recipes/train/aspdc.toml``. The paper halves each stage's rate every
1000 (fine-tuning: 200) epochs until 1e-6; the trainer's schedule
(``--lr-milestones``/``--lr-step``) is global over the three stages instead,
so it also scales the fine-tuning rate. The training-crop PSNR of the trained
network's output is logged as the ``psnr`` part, and its input's (blurry
for deblurring, sharp for reblurring, against the same target) as ``psnr_in``.
"""

from __future__ import annotations

from lodetools.nets.aspdc import consistency_loss
from lodetools.train import losses
from lodetools.train.spec_simplenet import check_crop, crop_psnr
from lodetools.train.registry import Phase, Stage, TrainSpec


def deblur_loss(model, batch: dict, w: dict):
    """Eq. (5): ``MSE(D(I_b), I_s)``."""
    check_crop(batch, 8, "ASPDC")
    out = model.deblur(batch["blur"]).float()
    mse = losses.mse_loss(out, batch["sharp"])
    return w["mse"] * mse, {"mse": mse.detach(), "psnr": crop_psnr(out, batch["sharp"]),
                            "psnr_in": crop_psnr(batch["blur"], batch["sharp"])}


def reblur_loss(model, batch: dict, w: dict):
    """Eq. (6): ``MSE(R(I_b, I_s), I_b)``; psnr is reblurred vs blurry."""
    check_crop(batch, 8, "ASPDC")
    out = model.reblur(batch["blur"], batch["sharp"]).float()
    mse = losses.mse_loss(out, batch["blur"])
    return w["mse"] * mse, {"mse": mse.detach(), "psnr": crop_psnr(out, batch["blur"]),
                            "psnr_in": crop_psnr(batch["sharp"], batch["blur"])}


def finetune_loss(model, batch: dict, w: dict):
    """Eq. (7): ``MSE(D(I_b), I_s) + lam MSE(R(I_b, D(I_b)), I_b)``."""
    check_crop(batch, 8, "ASPDC")
    out = model.deblur(batch["blur"]).float()
    total = consistency_loss(out, batch["sharp"], batch["blur"], model.reblur, w["lam"])
    return w["mse"] * total, {"total": total.detach(), "psnr": crop_psnr(out, batch["sharp"]),
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
    net_defaults={"width": 32, "groups": 6, "num_res": 2, "reblur_width": 16},
    loss_defaults={"mse": 1.0, "lam": 0.1, "finetune_lr": 1e-5},
    stages=aspdc_stages, predict=lambda model, x: model(x), multiple=8, lr=1e-4,
    description="ASPDC: deblurring (MSE), reblurring (MSE), consistency fine-tuning (lambda 0.1)")
