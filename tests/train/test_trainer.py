"""The trainer: networks learn on a tiny synthetic dataset, resume is exact, CLI errors."""

import csv

import numpy as np
import pytest
import torch

from lodetools.cli import main as cli_main
from lodetools.train.checkpoint import load_checkpoint
from lodetools.train.datasets import CropDataset, load_source
from lodetools.train.inference import predict_tensor
from lodetools.train.options import TrainConfig
from lodetools.train.trainer import Trainer

from tests.support.train_data import make_dataset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data(train_sets):
    return train_sets


def _crop_psnr(trainer, root, n=6):
    """Mean PSNR (dB) of the model's output on fixed training crops (eval mode)."""
    ds = CropDataset(load_source(root, "train"), 64, seed=123, augmentation="none", bapc_p=1.0)
    batch = [ds[g] for g in range(n)]
    blur = torch.stack([b["blur"] for b in batch])
    sharp = torch.stack([b["sharp"] for b in batch])
    model = trainer.model
    model.eval()
    with torch.no_grad():
        pred = trainer.spec.predict(model, blur).clamp(0, 1)
    model.train()
    mse = ((pred - sharp) ** 2).flatten(1).mean(1)
    return float((10 * torch.log10(1 / mse)).mean())


def _cfg(net, data, out, **kw):
    base = dict(net=net, data=data["local"], out=str(out), iters=50, batch=2, crop=64, lr=2e-3,
                cache=True, ckpt_every=1000, seed=0)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("net,opts,extra", [
    ("lbag", {"base": 16, "num_res": 1}, {}),
    ("bladenet", {"width": 8}, {"stages": {"lbp": 0.1, "deblur": 0.3, "joint": 0.6}}),
])
def test_network_learns_and_tiles(net, opts, extra, data, tmp_path):
    """50 CPU iterations raise the PSNR on training crops by >= 1 dB (issue acceptance).

    Note: from a random initialisation; after 50 iterations the tiny networks are
    still below the blurred input's PSNR (~34.5 dB here): beating it needs longer training.
    """
    cfg = _cfg(net, data, tmp_path / net, net_opts=opts, global_data=(data["global"],),
               val_every=50, val_images=2, **extra)
    trainer = Trainer(cfg, quiet=True)
    before = _crop_psnr(trainer, data["local"])
    hist = trainer.run()
    after = _crop_psnr(trainer, data["local"])
    assert len(hist) == 50 and np.isfinite([h[1] for h in hist]).all()
    assert after >= before + 1.0, (before, after)
    # the run folder: final weights, logs, validation with PSNR/SSIM/weighted PSNR
    rec = load_checkpoint(tmp_path / net / "model.pt")
    assert rec["net"] == net and opts.items() <= rec["net_opts"].items()
    with open(tmp_path / net / "val_log.csv") as f:
        val = list(csv.DictReader(f))
    assert len(val) == 1 and 10 < float(val[0]["psnr"]) < 60 and 0 < float(val[0]["ssim"]) <= 1
    assert np.isfinite(float(val[0]["wpsnr"]))
    if net == "bladenet":
        phases = [r["phase"] for r in csv.DictReader(open(tmp_path / net / "train_log.csv"))]
        assert phases[:5] == ["lbp"] * 5 and {"global", "local"} <= set(phases[5:])
    # tiled inference agrees with whole-image inference away from tile seams
    model = trainer.model.eval()
    x = torch.from_numpy(np.random.default_rng(0).random((1, 3, 128, 160), dtype=np.float32))
    kw = dict(predict=trainer.spec.predict, multiple=trainer.spec.multiple)
    whole = predict_tensor(model, x, tile=0, **kw)
    tiled = predict_tensor(model, x, tile=96, overlap=32, **kw)
    assert whole.shape == tiled.shape == x.shape
    keep = _away_from_seams((128, 160), 96, 32, margin=8, multiple=trainer.spec.multiple)
    diff = (whole - tiled).abs()[0][:, keep]
    assert keep.sum() > 1000 and diff.max() < TILE_TOLERANCE[net], diff.max()


#: max |tiled - whole| (images in [0, 1]) at pixels >= 8 px from every tile edge inside the
#: image (tiles 96, overlap 32). BladeNet's U-Net sees 16x-downsampled context and upsamples
#: bilinearly with align_corners=True (as the LODE code), whose sampling grid depends on the
#: input size, so its tiles differ more from the whole image than LBAG's.
TILE_TOLERANCE = {"lbag": 0.02, "bladenet": 0.05}


def _away_from_seams(shape, tile, overlap, margin, multiple=1):
    from lodetools.train.inference import tile_spans
    keep = torch.ones(shape, dtype=torch.bool)
    for axis, n in enumerate(shape):
        for s0, s1 in tile_spans(n, tile, overlap, multiple):
            for edge in (s0, s1):
                if 0 < edge < n:
                    sl = slice(max(0, edge - margin), edge + margin)
                    if axis == 0:
                        keep[sl, :] = False
                    else:
                        keep[:, sl] = False
    return keep


def test_resume_continues_exactly(data, tmp_path):
    # LBAG with dropout (exercises the RNG state); BladeNet across a stage boundary, alternating
    for net, opts, extra in [("lbag", {"base": 4, "num_res": 1}, {}),
                             ("bladenet", {"width": 4}, {"stages": {"lbp": 1, "deblur": 1, "joint": 1}})]:
        kw = dict(net_opts=opts, iters=6, global_data=(data["global"],), **extra)
        full = Trainer(_cfg(net, data, tmp_path / f"{net}_full", **kw), quiet=True).run()
        first = Trainer(_cfg(net, data, tmp_path / f"{net}_res", **kw), quiet=True, stop_at=3).run()
        assert not (tmp_path / f"{net}_res" / "model.pt").exists()
        second = Trainer(_cfg(net, data, tmp_path / f"{net}_res", **kw), quiet=True, resume=True).run()
        assert [h[0] for h in first + second] == list(range(1, 7))
        assert [h[1] for h in first + second] == [h[1] for h in full]     # bit-identical on CPU
        a = load_checkpoint(tmp_path / f"{net}_full" / "model.pt")["model"]
        b = load_checkpoint(tmp_path / f"{net}_res" / "model.pt")["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)
        rows = list(csv.DictReader(open(tmp_path / f"{net}_res" / "train_log.csv")))
        assert [int(r["iteration"]) for r in rows] == list(range(1, 7))


def _cli(*args):
    """Exit code of ``lodetools train ...`` (through the CLI's error handling)."""
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", *map(str, args)])
    return exc.value.code


def test_train_cli_and_bad_inputs(data, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--out", str(out), "--iters", "2", "--batch", "1", "--crop", "64", "--workers", "0",
              "--net-opts", "base=4,num_res=1", "-q"]
    assert _cli("lbag", "--data", data["local"], "--recipe", "lbag", *common) == 0
    assert (out / "model.pt").exists()
    cfg = (out / "config.json").read_text()
    assert '"lr_step": 100000' in cfg and '"gate": 0.1' in cfg     # values from the recipe
    capsys.readouterr()
    assert _cli("lbag", "--data", data["local"], *common) == 2       # a run is there
    assert "--resume or --overwrite" in capsys.readouterr().err
    assert _cli("lbag", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r2"), "-q") == 2
    assert _cli("lbag", "--data", data["global"], "--out", str(tmp_path / "r3"), "-q") == 2   # no masks
    assert "lbag needs local-blur masks" in capsys.readouterr().err
    assert _cli("lbag", "--data", data["local"], "--out", str(tmp_path / "r4"), "--loss", "nope=1") == 2
    assert "unknown loss weight" in capsys.readouterr().err
    assert _cli("bladenet", "--data", data["local"], "--out", str(tmp_path / "r5"), "--stages", "x=1") == 2
    assert _cli("lbag", "--data", data["local"], "--out", str(tmp_path / "r7"), "--crop", "48") == 2
    assert "must be a multiple of 4 and at least 52" in capsys.readouterr().err
    assert _cli("lbag", "--data", data["local"], "--out", str(tmp_path / "r6"), "--resume") == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_frozen_part_is_not_trained(data, tmp_path):
    """BladeNet's deblur stage freezes the LBP net: weights and BN statistics stay put,
    also across validations (which switch the model to eval and back)."""
    cfg = _cfg("bladenet", data, tmp_path / "frozen", net_opts={"width": 4}, iters=3,
               stages={"lbp": 0, "deblur": 1, "joint": 0}, global_data=(data["global"],),
               val_every=1, val_images=1)
    trainer = Trainer(cfg, quiet=True)
    lbp0 = {k: v.clone() for k, v in trainer.model.lbp.state_dict().items()}
    deb0 = {k: v.clone() for k, v in trainer.model.deblur.state_dict().items()}
    trainer.run()
    assert all(torch.equal(lbp0[k], v) for k, v in trainer.model.lbp.state_dict().items())
    assert not all(torch.equal(deb0[k], v) for k, v in trainer.model.deblur.state_dict().items())


def test_loader_workers_do_not_change_the_run(data, tmp_path):
    kw = dict(net_opts={"base": 4, "num_res": 1, "dropout": 0.0}, iters=2, cache=False)
    serial = Trainer(_cfg("lbag", data, tmp_path / "w0", workers=0, **kw), quiet=True).run()
    parallel = Trainer(_cfg("lbag", data, tmp_path / "w2", workers=2, **kw), quiet=True).run()
    assert [h[1] for h in serial] == [h[1] for h in parallel]
