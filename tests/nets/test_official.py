"""Official checkpoint formats (ReLoBlur's LBAG, MIMO-UNet(+), BladeNet, ASPDC) load and deblur
like the lodetools model they were made from.

Each official-format file is built here from a small lodetools model whose
keys are renamed by this test's own rules (written independently of
lodetools.nets.official) and checked against key names and counts read in
the official repositories' code (full-size key counts: LBAG 532, MIMO-UNet
244, MIMO-UNet+ 532, BladeNet 304, ASPDC 298, ASPDC reblurring net 54).
"""

from __future__ import annotations

import re
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

from lodetools import nets
from lodetools.errors import BadConfig, BadInput, OutputConflict
from lodetools.nets import official
from lodetools.train.checkpoint import convert_checkpoint, load_model, model_record, save_checkpoint
from lodetools.train.inference import final_image, predict_tensor

SMALL = {"lbag": {"base": 8, "num_res": 1}, "mimo-unet": {"base": 8, "num_res": 1},
         "bladenet": {"width": 4}, "aspdc": {"width": 4, "num_res": 1, "signed": True},
         "aspdc-reblur": {"width": 4, "signed": True}}


def _randomised(net: str, seed: int = 0):
    """A small network with random weights and BatchNorm statistics (offset predictors too)."""
    torch.manual_seed(seed)
    model = nets.build(net, **SMALL[net]).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype != torch.float32:
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * (0.02 if net.startswith("aspdc") else 0.1))
    return model


# ---------------------------------------------------------------- the test's own renaming

_MIMO_TOP = {"encoder": "Encoder", "decoder": "Decoder", "feat_extract": "feat_extract", "convs": "Convs",
             "convs_out": "ConvsOut", "affs": "AFFs", "fam1": "FAM1", "fam2": "FAM2", "scm1": "SCM1",
             "scm2": "SCM2"}


def mimo_names(sd):
    out = OrderedDict()
    for k, v in sd.items():
        parts = k.split(".")
        top = _MIMO_TOP[parts[0]]
        parts = [top, parts[1], "layers"] + parts[2:] if top in ("Encoder", "Decoder") else [top] + parts[1:]
        out[".".join(parts[:-2] + ["main"] + parts[-2:])] = v       # BasicConv keeps its layers in `main`
    return out


def bladenet_names(sd):
    out = OrderedDict()
    for k, v in sd.items():
        net, rest = k.split(".", 1)
        rest = rest.replace("unet.inc.", "inc.double_conv.")
        rest = re.sub(r"unet\.downs\.(\d)\.1\.", lambda m: f"down{int(m[1]) + 1}.maxpool_conv.1.double_conv.", rest)
        m = re.match(r"unet\.ups\.(\d)\.(pre|att|conv)\.(.*)", rest)
        if m:
            i, part, tail = int(m[1]), m[2], m[3]
            sa = net == "deblur" and i >= 1
            sub = {"pre": "conv1.double_conv", "att": "sa1.conv1",
                   "conv": "deChannelConv.double_conv" if sa else "conv.double_conv"}[part]
            rest = f"up{i + 1}.{sub}.{tail}"
        rest = rest.replace("outc.", "outc.conv.") if rest.startswith("outc.") else rest
        out[f"module.{'maskNet' if net == 'lbp' else 'deblurNet'}.{rest}"] = v
    return out


_GROUPS = ["en_res_group1", "en_res_group2", "en_res_group3", "de_res_group3", "de_res_group2", "de_res_group1"]


def aspdc_names(sd, num_res):
    out = OrderedDict()
    for k, v in sd.items():
        k = k.replace(".body.", ".model.")
        m = re.match(r"groups\.(\d)\.(\d+)\.(.*)", k)
        if m:
            g, j, rest = int(m[1]), int(m[2]), m[3]
            if j < num_res:
                k = f"{_GROUPS[g]}_1.{j}.{rest}"
            else:
                b = re.match(r"branches\.(\d)\.(.*)", rest)
                if b and b[1] == "0":
                    rest = "hallucination_d0." + ("m_conv." + b[2][len("conv_offset."):]
                                                  if b[2].startswith("conv_offset") else "dconv." + b[2])
                elif b and b[2].startswith("conv_offset."):
                    p = b[2][len("conv_offset."):]
                    pre = f"hallucination_d{b[1]}.hallucination_conv."
                    out[f"{_GROUPS[g]}_2.{pre}p_conv.{p}"] = v[:18]       # 2 x 9 offsets
                    out[f"{_GROUPS[g]}_2.{pre}m_conv.{p}"] = v[18:]       # 9 masks
                    continue
                elif b:
                    rest = f"hallucination_d{b[1]}.hallucination_conv.dconv.{b[2]}"
                rest = rest.replace("attention.", "mask_conv.").replace("fusion.", "fusion_conv.")
                k = f"{_GROUPS[g]}_2.{rest}"
        k = k.replace("dense.", "dense_conv.")
        out[k] = v
    return out


_REBLUR = {"head": "head_conv", "stages.0": "body_conv_1", "stages.1": "body_conv_2", "stages.2": "body_conv_3",
           "stages.3": "body_dconv_3", "stages.4": "body_dconv_2", "stages.5": "body_dconv_1",
           "kernels.0": "kernel_head_conv", "kernels.1": "kernel_conv_1", "kernels.2": "kernel_conv_2",
           "kernels.3": "kernel_conv_3", "kernels.4": "kernel_dconv_3", "kernels.5": "kernel_dconv_2",
           "kernels.6": "kernel_dconv_1", "tail": "tail"}


def reblur_names(sd):
    out = OrderedDict()
    for k, v in sd.items():
        k = k.replace(".body.", ".model.")
        for a, b in sorted(_REBLUR.items(), key=lambda x: -len(x[0])):
            if k.startswith(a + "."):
                k = b + k[len(a):]
                break
        out[k] = v
    return out


def official_file(net, model, path):
    """Save ``model`` as the authors' code saves that network."""
    sd = model.state_dict()
    if net == "lbag":
        torch.save({"global_step": 7, "optimizer_states": [], "state_dict": {"model": mimo_names(sd)}}, path,
                   _use_new_zipfile_serialization=False)
    elif net == "mimo-unet":
        torch.save({"model": mimo_names(sd)}, path)
    elif net == "bladenet":
        torch.save(bladenet_names(sd), path)
    elif net == "aspdc":
        torch.save({"epoch": 3, "deblurring_state_dict": aspdc_names(sd, SMALL["aspdc"]["num_res"])}, path)
    else:
        torch.save({"epoch": 3, "blurring_state_dict": reblur_names(sd)}, path)
    return path


# ---------------------------------------------------------------- key names at full size

KNOWN = {  # network -> (official key count, official key: shape) read in the official repositories
    "lbag": (532, {"Encoder.0.layers.0.main.0.main.0.weight": (32, 32, 3, 3),
                   "ConvsOut.0.main.0.weight": (4, 128, 3, 3), "SCM1.conv.main.0.bias": (128,)}),
    "mimo-unet": (244, {"Decoder.2.layers.7.main.1.main.0.weight": (32, 32, 3, 3),
                        "feat_extract.5.main.0.weight": (3, 32, 3, 3)}),
    "mimo-unet+": (532, {"Encoder.2.layers.19.main.1.main.0.bias": (128,)}),
    "bladenet": (304, {"module.maskNet.down4.maxpool_conv.1.double_conv.4.running_var": (512,),
                       "module.deblurNet.up2.sa1.conv1.weight": (1, 512, 7, 7),
                       "module.deblurNet.up4.deChannelConv.double_conv.3.weight": (64, 64, 3, 3),
                       "module.deblurNet.up1.conv.double_conv.0.weight": (512, 1024, 3, 3),
                       "module.deblurNet.inc.double_conv.0.weight": (64, 5, 3, 3)}),
    "aspdc": (298, {"en_res_group1_2.hallucination_d1.hallucination_conv.p_conv.weight": (18, 128, 3, 3),
                    "de_res_group1_2.hallucination_d3.hallucination_conv.m_conv.bias": (9,),
                    "en_res_group2_2.hallucination_d0.m_conv.weight": (9, 128, 3, 3),
                    "de_res_group3_1.1.model.2.weight": (128, 128, 3, 3),
                    "dense_conv.0.weight": (128, 768, 3, 3), "tail.4.weight": (3, 32, 3, 3)}),
    "aspdc-reblur": (54, {"kernel_dconv_1.weight": (9, 16, 3, 3), "body_dconv_3.0.model.0.weight": (128, 128, 3, 3)}),
}


@pytest.mark.parametrize("net", list(KNOWN))
def test_official_names_at_full_size(net):
    with torch.device("meta"):
        model = nets.build(net, **({"signed": True} if net.startswith("aspdc") else {}))
    sd = model.state_dict()
    off = official.to_official(sd, net, {"num_res": 2})
    count, known = KNOWN[net]
    assert len(off) == count
    for k, shape in known.items():
        assert tuple(off[k].shape) == shape, k
    back, opts = official.to_lodetools(off, net)
    assert list(back) == list(sd) or set(back) == set(sd)
    assert official.identify_network(off) == net


def test_bladenet_file_keeps_sau_order():
    """SAUp registers conv1, deChannelConv, sa1: the official file lists sa1 after deChannelConv."""
    with torch.device("meta"):
        off = official.to_official(nets.build("bladenet").state_dict(), "bladenet")
    keys = [k for k in off if k.startswith("module.deblurNet.up3.")]
    subs = list(OrderedDict.fromkeys(k.split(".")[3] for k in keys))
    assert subs == ["conv1", "deChannelConv", "sa1"]


# ---------------------------------------------------------------- same outputs

def _out(model, predict, x):
    with torch.no_grad():
        return predict(model, x) if predict else final_image(model(x))


@pytest.mark.parametrize("net", ["lbag", "mimo-unet", "bladenet", "aspdc"])
def test_official_file_deblurs_like_the_model(net, tmp_path):
    model = _randomised(net)
    path = official_file(net, model, tmp_path / "official.ckpt")
    x = torch.rand(1, 3, 32, 48)
    loaded, predict, multiple = load_model(path)
    ours = final_image(_out(model, None, x))
    assert torch.equal(_out(loaded, predict, x), ours)
    assert not torch.allclose(ours, x, atol=1e-3)              # a real network, not the identity


def test_lbag_file_is_legacy_and_keeps_its_step(tmp_path):
    path = official_file("lbag", _randomised("lbag"), tmp_path / "model_ckpt_steps_7.ckpt")
    assert not zipfile.is_zipfile(path)                         # pre-1.6 serialisation
    rec = official.record_from_official(torch.load(path, weights_only=True))
    assert rec["iteration"] == 7 and rec["net"] == "lbag" and rec["net_opts"] == SMALL["lbag"]


def test_aspdc_official_data_range(tmp_path):
    """The official test script: x -> (x - 0.5) / 0.5, net, clamp to [-1, 1], (y + 1) / 2."""
    model = _randomised("aspdc")
    plain = nets.build("aspdc", **{**SMALL["aspdc"], "signed": False}).eval()
    plain.load_state_dict(model.state_dict())
    path = official_file("aspdc", model, tmp_path / "DeblurringNet_FT.pth")
    loaded, predict, multiple = load_model(path)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = (torch.clamp(plain((x - 0.5) / 0.5), -1, 1) + 1) / 2
    got = predict_tensor(loaded, x, predict=predict, multiple=multiple, tile=0).clamp(0, 1)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_mimo_unet_plus_told_by_net(tmp_path):
    path = official_file("mimo-unet", _randomised("mimo-unet"), tmp_path / "MIMO-UNetPlus.pkl")
    assert official.record_from_official(torch.load(path, weights_only=True), "mimo-unet+")["net"] == "mimo-unet+"


# ---------------------------------------------------------------- bad files

def test_other_network_is_one_line_naming_file_and_key(tmp_path):
    path = official_file("bladenet", _randomised("bladenet"), tmp_path / "blade.pth")
    with pytest.raises(BadInput) as err:
        load_model(path, net="lbag")
    assert str(path) in err.value.message and "module.maskNet." in err.value.message


def test_missing_and_unexpected_keys(tmp_path):
    sd = mimo_names(_randomised("lbag").state_dict())
    first = "Encoder.0.layers.0.main.0.main.0.bias"
    del sd[first]
    torch.save({"global_step": 1, "optimizer_states": [], "state_dict": {"model": sd}}, tmp_path / "a.ckpt")
    with pytest.raises(BadInput, match=re.escape(f"missing key {first!r}")) as err:
        load_model(tmp_path / "a.ckpt")
    assert str(tmp_path / "a.ckpt") in err.value.message
    sd = bladenet_names(_randomised("bladenet").state_dict())
    sd["module.maskNet.extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "b.pth")
    with pytest.raises(BadInput, match="unexpected key 'module.maskNet.extra.weight'"):
        load_model(tmp_path / "b.pth")
    torch.save({"foo": [1, 2]}, tmp_path / "c.pt")
    with pytest.raises(BadInput, match="unknown layout"):
        load_model(tmp_path / "c.pt")


def test_lodetools_file_with_wrong_weights_names_first_key(tmp_path):
    model = _randomised("lbag")
    rec = model_record("lbag", SMALL["lbag"], model)
    rec["model"] = OrderedDict(list(rec["model"].items())[1:])
    save_checkpoint(tmp_path / "m.pt", rec)
    with pytest.raises(BadInput, match="missing key 'encoder.0.0.main.0.0.weight'"):
        load_model(tmp_path / "m.pt")


# ---------------------------------------------------------------- convert-checkpoint

def test_convert_round_trip_lbag(tmp_path):
    model = _randomised("lbag")
    src = official_file("lbag", model, tmp_path / "off.ckpt")
    info = convert_checkpoint(src, tmp_path / "lt.pt")
    assert info == {"from": "lbag", "to": "lodetools", "net": "lbag"}
    assert zipfile.is_zipfile(tmp_path / "lt.pt")
    info = convert_checkpoint(tmp_path / "lt.pt", tmp_path / "back.ckpt")
    assert info["to"] == "official" and not zipfile.is_zipfile(tmp_path / "back.ckpt")
    a = torch.load(src, weights_only=True)["state_dict"]["model"]
    b = torch.load(tmp_path / "back.ckpt", weights_only=True)
    assert list(b["state_dict"]["model"]) == list(a)
    assert all(torch.equal(a[k], b["state_dict"]["model"][k]) for k in a)
    # ReLoBlur's load_checkpoint restores optimizer_states[0] into Adam over the model's parameters
    torch.optim.Adam(model.parameters(), lr=1e-4).load_state_dict(b["optimizer_states"][0])
    with pytest.raises(OutputConflict):
        convert_checkpoint(src, tmp_path / "lt.pt")


def test_convert_aspdc_pair_and_unsigned_refused(tmp_path):
    deb, reb = _randomised("aspdc"), _randomised("aspdc-reblur", seed=1)
    official_file("aspdc", deb, tmp_path / "D.pth")
    official_file("aspdc-reblur", reb, tmp_path / "R.pth")
    info = convert_checkpoint(tmp_path / "D.pth", tmp_path / "pair.pt", reblur=tmp_path / "R.pth")
    assert info["net"] == "aspdc-pair"
    rec = torch.load(tmp_path / "pair.pt", weights_only=True)
    assert rec["net_opts"]["signed"] is True and rec["net_opts"]["reblur_width"] == 4
    pair, _, _ = load_model(tmp_path / "pair.pt")
    assert torch.equal(pair.reblur.kernels[6].weight, reb.kernels[6].weight)
    unsigned = nets.build("aspdc", width=4, num_res=1)
    save_checkpoint(tmp_path / "u.pt", model_record("aspdc", {"width": 4, "num_res": 1}, unsigned, spec=""))
    with pytest.raises(BadConfig, match=r"\[-1, 1\]"):
        convert_checkpoint(tmp_path / "u.pt", tmp_path / "u.pth")


def test_cli_deblur_official_checkpoint(tmp_path):
    """`deblur --checkpoint <ReLoBlur file> --tile 0` writes what the lodetools model gives."""
    from click.testing import CliRunner

    from lodetools.cli import cli
    from lodetools.io.images import read_image, write_image
    model = _randomised("lbag")
    official_file("lbag", model, tmp_path / "off.ckpt")
    save_checkpoint(tmp_path / "lt.pt", model_record("lbag", SMALL["lbag"], model))
    rng = np.random.default_rng(0)
    write_image(tmp_path / "in" / "a.png", rng.random((36, 52, 3)).astype(np.float32), bit_depth=8)
    outs = []
    for ck in ("off.ckpt", "lt.pt"):
        r = CliRunner().invoke(cli, ["deblur", "-c", str(tmp_path / ck), "-i", str(tmp_path / "in"),
                                     "-o", str(tmp_path / ck.replace(".", "_")), "--tile", "0", "-q"])
        assert r.exit_code == 0, r.output
        outs.append(read_image(tmp_path / ck.replace(".", "_") / "a.png"))
    assert np.array_equal(outs[0], outs[1])
    r = CliRunner().invoke(cli, ["deblur", "-c", str(tmp_path / "off.ckpt"), "--net", "bladenet", "-i",
                                 str(tmp_path / "in"), "-o", str(tmp_path / "x")])
    assert r.exit_code != 0


# ---------------------------------------------------------------- tiling

def test_tiles_equal_whole_image_away_from_seams():
    """Tiled inference equals the whole image beyond the receptive field of the seams.

    The receptive radius R is measured (gradient of one output pixel); pixels
    farther than R from every tile edge inside the image see exactly the same
    input in their tile as in the whole image, so they match to float
    rounding (1e-5). Near seams the linear blend of two tiles' outputs stays
    within the networks' output range difference (checked loosely).
    """
    model = _randomised("lbag")
    H, W, tile, overlap = 176, 240, 128, 16
    x = torch.rand(1, 3, H, W, requires_grad=True)
    final_image(model(x))[0, :, 88, 120].sum().backward()
    ys, xs = np.nonzero(x.grad[0].abs().sum(0).numpy())
    radius = int(max(abs(ys - 88).max(), abs(xs - 120).max()))
    assert 4 <= radius < 50
    with torch.no_grad():
        whole = predict_tensor(model, x.detach(), multiple=4, tile=0)[0]
        tiled = predict_tensor(model, x.detach(), multiple=4, tile=tile, overlap=overlap)[0]
    from lodetools.train.inference import tile_spans
    far = np.ones((H, W), bool)
    for axis, n in ((0, H), (1, W)):
        for s0, s1 in tile_spans(n, tile, overlap, 4):
            for edge in (s0, s1):
                if 0 < edge < n:                      # a tile edge inside the image
                    lo, hi = max(0, edge - radius - 1), min(n, edge + radius + 1)
                    if axis == 0:
                        far[lo:hi] = False
                    else:
                        far[:, lo:hi] = False
    diff = (whole - tiled).abs().amax(0).numpy()
    assert far.sum() > 0.01 * far.size
    assert diff[far].max() < 1e-5
    assert diff.max() < 0.5


# ---------------------------------------------------------------- train --init-from

def test_trainer_starts_from_official_weights(tmp_path):
    from tests.support.train_data import make_dataset

    from lodetools.train.options import TrainConfig
    from lodetools.train.trainer import Trainer
    data = make_dataset(tmp_path / "data", n=2, splits=("train",))
    lbag = _randomised("lbag")
    path = official_file("lbag", lbag, tmp_path / "off.ckpt")
    tr = Trainer(TrainConfig(net="lbag", data=str(data), out=str(tmp_path / "r1"), iters=1, batch=1, crop=64,
                             init_from=str(path), device="cpu"), quiet=True)
    assert tr.net_opts["base"] == 8 and tr.net_opts["num_res"] == 1          # options from the file
    assert all(torch.equal(v, tr.model.state_dict()[k]) for k, v in lbag.state_dict().items())
    deb = _randomised("aspdc")
    path = official_file("aspdc", deb, tmp_path / "D.pth")                  # one part of the pair
    tr = Trainer(TrainConfig(net="aspdc", data=str(data), out=str(tmp_path / "r2"), iters=1, batch=1, crop=64,
                             init_from=str(path), net_opts={"width": 4, "num_res": 1, "reblur_width": 4},
                             device="cpu"), quiet=True)
    assert tr.net_opts["signed"] is True
    assert all(torch.equal(v, tr.model.deblur.state_dict()[k]) for k, v in deb.state_dict().items())
    with pytest.raises(BadInput, match="holds network 'bladenet', not 'lbag'"):
        Trainer(TrainConfig(net="lbag", data=str(data), out=str(tmp_path / "r3"), iters=1, batch=1, crop=64,
                            init_from=str(official_file("bladenet", _randomised("bladenet"), tmp_path / "b.pth")),
                            device="cpu"), quiet=True)


def test_gpu_check_runs_on_cpu():
    """benchmarks/gpu_check.py's train-step check runs on the CPU (a smoke test of the script: without
    AMP on the CPU it compares fp32 with itself, so only that it runs and is finite is checked)."""
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "gpu_check", Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py")
    gc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gc)
    r = gc.check_train_step("lbag", "cpu", crop=64, batch=1, opts=gc.SMALL["lbag"])
    assert r["finite"] and not r["amp"]


@pytest.mark.parametrize("obj, message", [
    ({"net": "lbag", "net_opts": {}, "model": {"a.weight": "str"}}, "without a state dict of tensors"),
    ({"net": "lbag", "net_opts": {}, "model": [1, 2]}, "without a state dict of tensors"),
    ({"net": "lbag", "net_opts": [1], "model": {"a": torch.zeros(1)}}, "'net_opts' is not a table"),
    ({"net": "lbag", "net_opts": {"base": "x"}, "model": {"a": torch.zeros(1)}}, "bad network options"),
])
def test_malformed_lodetools_checkpoint_is_one_error(tmp_path, obj, message):
    from lodetools.train.checkpoint import load_model

    path = tmp_path / "bad.pt"
    torch.save(obj, path)
    with pytest.raises(BadInput, match=message) as e:
        load_model(path, "cpu")
    assert str(e.value.path) == str(path)
