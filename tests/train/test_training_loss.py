"""lodetools.train.training_loss: the official forms against hand-known values, the paper forms
on request, the official BladeNet schedule, the official ASPDC initialisation."""

import math
import types

import pytest
import torch
import torch.nn.functional as F

from lodetools.errors import BadConfig
from lodetools.train import training_loss

from tests.support.train_data import make_dataset


def _batch(b=2, s=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"blur": torch.rand(b, 3, s, s, generator=g), "sharp": torch.rand(b, 3, s, s, generator=g),
            "mask": (torch.rand(b, 1, s, s, generator=g) > 0.5).float()}


def _fake_lbag(images, gates):
    out = types.SimpleNamespace(images=images, gates=gates)
    return lambda x: out


def test_lbag_official_targets_one_resize_masks_nearest():
    # outputs equal to the official targets (one 0.25x / 0.5x bilinear resize, masks nearest):
    # l1 = fft = gate = 0 and -SSIM = -1 at each of the 3 scales -> total -3
    b = _batch()
    ims = [F.interpolate(b["sharp"], scale_factor=f, mode="bilinear") for f in (0.25, 0.5)] + [b["sharp"]]
    gts = [F.interpolate(b["mask"], scale_factor=f, mode="nearest") for f in (0.25, 0.5)] + [b["mask"]]
    total, terms = training_loss("lbag", _fake_lbag(ims, gts), b)
    assert total.item() == pytest.approx(-3.0, abs=1e-5)
    assert terms["gate"].item() == 0 and terms["l1"].item() == pytest.approx(0, abs=1e-7)
    # the paper's reading resizes by 0.5x steps: the same outputs no longer match its targets
    paper, pterms = training_loss("lbag", _fake_lbag(ims, gts), b, {"variant": "paper"})
    assert pterms["l1"].item() > 1e-3 and paper.item() > -3 + 1e-3


def test_lbag_shift_tolerance_is_per_image_and_gate_is_plain_mse():
    # image 0's output is its target moved 1 px right, image 1's 1 px left: per image one
    # shift fits exactly (L1 0 away from the reflected border column); the gate term is a
    # plain MSE: gates 0 against masks of mean m -> MSE = m (no shift can help)
    b = _batch(s=64)
    # a smooth image: a 1-px shift at full size stays a small change at 1/4 size
    sharp = b["sharp"] = F.interpolate(b["sharp"][..., :8, :8], size=(64, 64), mode="bicubic",
                                       align_corners=True)
    moved = torch.cat([F.pad(sharp[:1], (1, -1, 0, 0), mode="reflect"),
                       F.pad(sharp[1:], (-1, 1, 0, 0), mode="reflect")])
    ims = [F.interpolate(moved, scale_factor=f, mode="bilinear") for f in (0.25, 0.5)] + [moved]
    gates = [torch.zeros(2, 1, 64 // d, 64 // d) for d in (4, 2, 1)]
    _, terms = training_loss("lbag", _fake_lbag(ims, gates), b, {"fft": 0.0})
    masks = [F.interpolate(b["mask"], scale_factor=f, mode="nearest") for f in (0.25, 0.5)] + [b["mask"]]
    assert terms["gate"].item() == pytest.approx(sum(m.mean().item() for m in masks), rel=1e-6)
    # at full scale each image's own shift fits exactly (the coarser scales are resized, not
    # exact shifts, so only small); without the tolerance, or with one shift for the whole
    # batch (the paper's minimum of the batch mean), the L1 term is large
    l1_full = F.l1_loss(moved, sharp, reduction="none").mean((1, 2, 3))
    assert l1_full.min() > 0.02
    _, t0 = training_loss("lbag", _fake_lbag(ims, gates), b, {"fft": 0.0, "shift": 0})
    assert (t0["l1"] - terms["l1"]).item() == pytest.approx(l1_full.mean().item(), rel=0.02)
    _, pterms = training_loss("lbag", _fake_lbag(ims, gates), b, {"fft": 0.0, "variant": "paper"})
    assert pterms["l1"].item() > terms["l1"].item() + 0.5 * l1_full.mean().item()


def test_bladenet_official_dice_and_attention():
    from lodetools.nets.bladenet import BladeNetOutput, attention_sum
    m1, m2, m3 = (torch.full((1, 1, s, s), v) for s, v in ((2, 0.5), (4, 0.25), (8, 0.125)))
    # constants: both ways of summing give 0.875 everywhere
    assert torch.allclose(attention_sum([m1, m2, m3]), torch.full((1, 1, 8, 8), 0.875))
    assert torch.allclose(attention_sum([m1, m2, m3], form="paper"), torch.full((1, 1, 8, 8), 0.875))
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :] = 1                             # half the pixels
    out = BladeNetOutput(torch.zeros(1, 3, 8, 8), torch.zeros(1, 2, 8, 8), attention_sum([m1, m2, m3]),
                         [m1, m2, m3])
    b = {"blur": torch.zeros(1, 3, 8, 8), "sharp": torch.zeros(1, 3, 8, 8), "mask": mask}
    total, terms = training_loss("bladenet", lambda x: out, b)
    # Dice = 1 - sum(p t) / sum(p + t) = 1 - 32 * 0.875 / (64 * 0.875 + 32); CE of zero logits = ln 2
    dice = 1 - 32 * 0.875 / (64 * 0.875 + 32)
    assert terms["dice"].item() == pytest.approx(dice, rel=1e-6)
    assert total.item() == pytest.approx(0.01 * dice + 0.25 * math.log(2), rel=1e-6)
    _, pterms = training_loss("bladenet", lambda x: out, b, {"variant": "paper"})
    assert pterms["dice"].item() == pytest.approx(1 - 2 * 32 * 0.875 / (64 * 0.875 + 32), rel=1e-5)
    with pytest.raises(BadConfig):
        training_loss("bladenet", lambda x: out, b, {"nonsense": 1})


def test_aspdc_official_loss_is_imagenet_normalised_mse():
    # D(B) - S = d_c per channel, R(B, D) - B = e_c: loss = mean_c d_c^2/std_c^2 + 0.1 mean_c e_c^2/std_c^2
    std = (0.229, 0.224, 0.225)
    d, e = (0.1, -0.2, 0.05), (0.02, 0.0, -0.03)
    b = _batch(b=1, s=8)
    deb = b["sharp"] + torch.tensor(d).view(1, 3, 1, 1)
    reb = b["blur"] + torch.tensor(e).view(1, 3, 1, 1)
    model = types.SimpleNamespace(deblur=lambda x: deb, reblur=lambda x, y: reb)
    total, _ = training_loss("aspdc", model, b)
    want = sum(dc ** 2 / s ** 2 for dc, s in zip(d, std)) / 3 + 0.1 * sum(ec ** 2 / s ** 2 for ec, s in zip(e, std)) / 3
    assert total.item() == pytest.approx(want, rel=1e-5)
    paper, _ = training_loss("aspdc", model, b, {"variant": "paper"})
    assert paper.item() == pytest.approx(sum(x ** 2 for x in d) / 3 + 0.1 * sum(x ** 2 for x in e) / 3, rel=1e-5)


def test_aspdc_official_init_covers_offset_and_mask_predictors():
    from lodetools.nets.aspdc import ASPDCModule, xavier_init_
    torch.manual_seed(0)
    m = xavier_init_(ASPDCModule(32))
    conv = m.branches[1].conv_offset                   # 18 offset + 9 mask rows, fan_in 32 * 9
    w = conv.weight.detach()
    for rows, n_out in ((w[:18], 18), (w[18:], 9)):
        want = math.sqrt(2 / (32 * 9 + n_out * 9))
        assert rows.std().item() == pytest.approx(want, rel=0.1)
    assert conv.bias.abs().max().item() <= 1 / math.sqrt(32 * 9) and conv.bias.abs().max().item() > 0
    zero = xavier_init_(ASPDCModule(32), form="dcn").branches[1].conv_offset
    assert zero.weight.abs().max().item() == 0 and zero.bias.abs().max().item() == 0


def test_bladenet_official_joint_schedule(tmp_path):
    """Joint stage: global and local passes alternate per epoch (len(data) // batch iterations
    each); a global-pass step changes only the deblurring net."""
    from lodetools.train.callbacks import Callback
    from lodetools.train.options import TrainConfig
    from lodetools.train.trainer import Trainer
    local = make_dataset(tmp_path / "local", n=4)
    glob = make_dataset(tmp_path / "glob", n=2, local=False)

    class Watch(Callback):
        def __init__(self):
            self.rows = []

        def on_step(self, trainer, s):
            lbp = torch.cat([p.detach().flatten() for p in trainer.model.lbp.parameters()])
            self.rows.append((s.phase, lbp.clone()))

    watch = Watch()
    cfg = TrainConfig(net="bladenet", data=local, global_data=(glob,), out=str(tmp_path / "run"), iters=9,
                      batch=2, crop=32, net_opts={"width": 4}, stages={"lbp": 0, "deblur": 0, "joint": 1},
                      cache=True, workers=0)
    tr = Trainer(cfg, quiet=True, callbacks=[watch])
    tr.run()
    phases = [p for p, _ in watch.rows]
    # global data 2 pairs / batch 2 = 1 iteration; local 4 / 2 = 2 iterations
    assert phases == ["global", "local", "local"] * 3
    before = torch.cat([p.detach().flatten() for p in build_lbp(cfg)])  # initial LBP weights
    lbps = [before] + [v for _, v in watch.rows]
    for i, (phase, _) in enumerate(watch.rows):
        same = torch.equal(lbps[i], lbps[i + 1])
        assert same == (phase == "global"), (i, phase)


def build_lbp(cfg):
    from lodetools.train.registry import build_model
    torch.manual_seed(cfg.seed)
    return list(build_model("bladenet", {"width": 4}).lbp.parameters())
