"""Training spec of BladeNet (LODE, Li et al. 2022, Sec. 4 and supplementary).

Stages (fractions of ``--iters``, ``--stages`` overrides):

1. ``lbp`` (0.2): the LBP MaskNet alone, cross-entropy against the mask
   (LODE Eq. (1)), on local-blur pairs (``--data``).
2. ``deblur`` (0.4): LBP frozen; alternating passes: global-blur pairs
   (``--global-data``) with L1, then synthetic local-blur pairs with
   L1 + 0.01 Dice(sum of BSA maps, mask) (LODE Eq. (4)).
3. ``joint`` (0.4): the official joint schedule (``train.py``,
   ``trainWholeNetMaskLossNoFixSALoss``): a global-blur pass with L1 that
   updates only the deblurring net, with an Adam state of its own, then a
   local-blur pass with L1 + 0.01 Dice + 0.25 CE that updates everything
   with a second Adam.

Passes alternate per epoch (one pass over each dataset, as the official
code's loops), or every N iterations with ``--loss alternate=N``.
``variant`` (``--loss variant=...``) picks the Dice form and how the three
attention maps are summed: ``official`` (default, what LODE's code trains:
Dice ``1 - sum(p t) / sum(p + t)`` over the batch, maps summed by 2x
steps), or ``paper`` (Dice with the factor 2 per image, each map upsampled
to full size, LODE Eq. (4)). The paper says MSE for the reconstruction
term; the official code uses L1, followed here. Adam lr 1e-3 halved at
epochs 150/200/300 (``lr_milestones`` in the ``bladenet`` recipe), crop
192, the 8 flip/rotation modes.
"""

from __future__ import annotations

from lodetools.errors import BadConfig
from lodetools.nets.bladenet import attention_sum
from lodetools.train import losses
from lodetools.train.registry import Phase, Stage, TrainSpec


def _variant(w: dict) -> str:
    v = w.get("variant", "official")
    if v not in ("official", "paper"):
        raise BadConfig(f"BladeNet loss variant must be 'official' or 'paper', not {v!r}")
    return v


def lbp_loss(model, batch: dict, w: dict):
    """LBP pretraining: CE of the 2 logits against the mask (LODE Eq. (1))."""
    out = model(batch["blur"], parts="lbp")
    ce = losses.cross_entropy_loss(out.mask_logits, batch["mask"])
    return w["ce_pretrain"] * ce, {"ce": ce.detach()}


def global_loss(model, batch: dict, w: dict):
    """Global-blur pass: L1 of the deblurred image."""
    out = model(batch["blur"])
    l1 = losses.l1_loss(out.final.float(), batch["sharp"])
    return w["l1"] * l1, {"l1": l1.detach()}


def _local(model, batch, w, with_ce: bool):
    out = model(batch["blur"])
    v = _variant(w)
    att = out.attention if v == "official" or out.maps is None else attention_sum(out.maps, form="paper")
    l1 = losses.l1_loss(out.final.float(), batch["sharp"])
    dice = losses.dice_loss(att.float(), batch["mask"], form=v)
    total = w["l1"] * l1 + w["dice"] * dice
    parts = {"l1": l1.detach(), "dice": dice.detach()}
    if with_ce:
        ce = losses.cross_entropy_loss(out.mask_logits, batch["mask"])
        total = total + w["ce"] * ce
        parts["ce"] = ce.detach()
    return total, parts


def local_loss(model, batch: dict, w: dict):
    """Local-blur pass with LBP frozen: L1 + 0.01 Dice."""
    return _local(model, batch, w, with_ce=False)


def joint_local_loss(model, batch: dict, w: dict):
    """Local-blur pass of the joint stage: L1 + 0.01 Dice + 0.25 CE (the whole BladeNet objective)."""
    return _local(model, batch, w, with_ce=True)


def bladenet_stages(w: dict) -> list:
    _variant(w)
    every = int(w.get("alternate", 0))
    alt = "epoch" if every <= 0 else every
    return [
        Stage("lbp", [Phase(lbp_loss, "data", need_mask=True, name="lbp")], fraction=0.2,
              frozen=("deblur",)),
        Stage("deblur", [Phase(global_loss, "global", name="global"),
                         Phase(local_loss, "data", need_mask=True, name="local")], fraction=0.4,
              frozen=("lbp",), alternate_every=alt),
        Stage("joint", [Phase(global_loss, "global", name="global", params=("deblur",)),
                        Phase(joint_local_loss, "data", need_mask=True, name="local")], fraction=0.4,
              alternate_every=alt),
    ]


def bladenet_predict(model, x):
    """Deblurred image (B, 3, H, W)."""
    return model(x).final


SPEC = TrainSpec(
    name="bladenet", net="bladenet", net_defaults={"width": 64},
    loss_defaults={"l1": 1.0, "dice": 0.01, "ce": 0.25, "ce_pretrain": 1.0, "alternate": 0,
                   "variant": "official"},
    stages=bladenet_stages, predict=bladenet_predict, multiple=16, lr=1e-3,
    description="BladeNet (LODE): LBP pretraining, per-epoch global/local passes, joint stage")
