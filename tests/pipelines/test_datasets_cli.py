"""Commands on published datasets as downloaded: inspect, eval --input-baseline, train -> deblur -> eval."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from tests.support import datasets_world as world
from lodetools.cli import main as cli_main
from tests.io.test_datasets import COUNTS

#: the split scored per layout (REDS' test set has no sharp images)
SCORED = {"gopro": "test", "reds": "val", "realblur": "test", "hide": "test", "reloblur": "test",
          "bladenet": "test", "plain": "test"}


def _cli(*args) -> int:
    with pytest.raises(SystemExit) as exc:
        cli_main([str(a) for a in args])
    return exc.value.code or 0


@pytest.fixture(scope="module")
def lbag_ckpt(dataset_worlds, tmp_path_factory):
    """A tiny LBAG trained 2 iterations on the ReLoBlur copy (its masks as shipped)."""
    root, _ = dataset_worlds["reloblur"]
    out = tmp_path_factory.mktemp("run") / "lbag"
    before = world.tree(root)
    assert _cli("train", "lbag", "--data", root, "--out", out, "--iters", 2, "--batch", 1, "--crop", 64,
                "--workers", 0, "--net-opts", "base=4,num_res=1", "--val-split", "none", "-q") == 0
    assert world.tree(root) == before
    return out / "model.pt"


def _weighted_psnr(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """ReLoBlur's weighted PSNR, 10 log10(1 / (sum(m d^2) / sum(m) / 3)), on [0, 1] 8-bit values."""
    d2 = ((pred.astype(np.float64) - gt.astype(np.float64)) / 255.0) ** 2
    m = mask.astype(np.float64)[..., None]
    return 10 * math.log10(1.0 / ((m * d2).sum() / m.sum() / 3))


@pytest.mark.parametrize("name", list(COUNTS))
def test_inspect_and_input_baseline(dataset_worlds, name, tmp_path, capsys):
    root, truth = dataset_worlds[name]
    before = world.tree(root)
    assert _cli("inspect", root, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == name and info["problems"] == []
    assert {s: (c["pairs"], c["scenes"], c["with_sharp"], c["with_mask"]) for s, c in info["splits"].items()} \
        == COUNTS[name]

    split = SCORED[name]
    out = tmp_path / "ev"
    assert _cli("eval", "--input-baseline", "--gt", root, "--split", split, "--out", out, "-q") == 0
    summary = json.loads((out / "summary.json").read_text())
    scored = {k: t for k, t in truth.items() if k.startswith(split + "/")}
    assert summary["count"] == len(scored) and summary["missing"] == [] and summary["extra"] == []
    # independent reference: scikit-image's PSNR on the 8-bit images the maker wrote
    ref = np.mean([peak_signal_noise_ratio(t.sharp, t.blur, data_range=255) for t in scored.values()])
    assert summary["summary"]["psnr"]["mean"] == pytest.approx(ref, abs=1e-6)
    if all(t.mask is not None for t in scored.values()):
        refw = np.mean([_weighted_psnr(t.blur, t.sharp, t.mask) for t in scored.values()])
        assert summary["summary"]["psnrw"]["mean"] == pytest.approx(refw, abs=1e-6)
    else:
        assert summary["summary"]["psnrw"]["mean"] is None
    assert world.tree(root) == before


@pytest.mark.parametrize("name", list(COUNTS))
def test_deblur_then_eval_matches_every_prediction(dataset_worlds, lbag_ckpt, name, tmp_path, capsys):
    root, truth = dataset_worlds[name]
    split = SCORED[name]
    before = world.tree(root)
    pred = tmp_path / "pred"
    assert _cli("deblur", "-c", lbag_ckpt, "-i", root, "--split", split, "-o", pred, "-q", "--tile", 0) == 0
    keys = {k for k in truth if k.startswith(split + "/")}
    # scene structure kept: one PNG per pair at <split>/<scene>/<id>.png
    assert {p.relative_to(pred).with_suffix("").as_posix() for p in pred.rglob("*.png")} == keys
    assert _cli("eval", "--pred", pred, "--gt", root, "--split", split, "--metrics", "psnr", "-q") == 0
    summary = json.loads((pred / "summary.json").read_text())
    assert summary["count"] == len(keys) and summary["missing"] == [] and summary["extra"] == []
    assert world.tree(root) == before


def test_train_on_a_mask_free_dataset(dataset_worlds, tmp_path, capsys):
    root, truth = dataset_worlds["gopro"]
    common = ["--iters", 1, "--batch", 1, "--crop", 64, "--workers", 0, "--net-opts", "base=4,num_res=1",
              "--val-split", "none", "-q"]
    assert _cli("train", "lbag", "--data", root, "--out", tmp_path / "r1", *common) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no pairs" not in err
    assert err.startswith("error: lbag needs local-blur masks") and "lodetools masks --data" in err \
        and "--masks DIR" in err
    assert not (tmp_path / "r1" / "model.pt").exists()
    # the fix the message names: masks made by `lodetools masks` outside the dataset
    before = world.tree(root)
    masks = tmp_path / "masks"
    assert _cli("masks", "--data", root, "--out", root / "masks", "--no-static", "median", "-q") == 2
    assert "nothing is written inside a downloaded dataset" in capsys.readouterr().err
    assert _cli("masks", "--data", root, "--out", masks, "--no-static", "median", "-q") == 0
    assert world.tree(root) == before
    assert len(list(masks.glob("*/*/mask/*.png"))) == len(truth)
    assert _cli("train", "lbag", "--data", root, "--masks", masks, "--out", tmp_path / "r2", *common) == 0
    assert (tmp_path / "r2" / "model.pt").is_file() and world.tree(root) == before
    cfg = json.loads((tmp_path / "r2" / "config.json").read_text())
    assert cfg["masks"] == str(masks)


def test_recursive_deblur_skips_sharp_images(dataset_worlds, lbag_ckpt, tmp_path):
    shots = tmp_path / "shots"
    blur, sharp, _ = world.make_triplet(3)
    world.write_png(shots / "a.png", blur)
    world.write_png(shots / "a_sharp.png", sharp)
    world.write_png(shots / "day" / "b.png", blur)
    world.write_png(shots / "day" / "gt" / "b.png", sharp)
    world.write_png(shots / "night" / "GT" / "c.png", sharp)
    world.write_png(shots / "night" / "c_blur.png", blur)
    out = tmp_path / "o"
    assert _cli("deblur", "-c", lbag_ckpt, "-i", shots, "-o", out, "--recursive", "-q", "--tile", 0) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == \
        ["a.png", "day/b.png", "night/c_blur.png"]
    out2 = tmp_path / "o2"
    assert _cli("deblur", "-c", lbag_ckpt, "-i", shots, "-o", out2, "-q", "--tile", 0) == 0
    assert sorted(p.name for p in out2.iterdir()) == ["a.png"]


def test_bad_inputs_one_line_nothing_written(dataset_worlds, lbag_ckpt, tmp_path, capsys):
    # a RealBlur list naming a missing file
    root = tmp_path / "rb"
    shutil.copytree(dataset_worlds["realblur"][0], root)
    lst = root / "RealBlur_R_test_list.txt"
    lst.write_text(lst.read_text().replace("gt_1.png", "gt_7.png", 1))
    out = tmp_path / "ev"
    assert _cli("eval", "--input-baseline", "--gt", root, "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "RealBlur_R_test_list.txt line 1 names a missing ground-truth image" in err and "gt_7.png" in err
    assert not out.exists()
    assert _cli("eval", "--input-baseline", "--gt", root, "--out", out, "--layout", "realblur:J") == 0
    # an output folder inside a downloaded dataset
    before = world.tree(root)
    assert _cli("deblur", "-c", lbag_ckpt, "-i", root, "-o", root / "preds", "--layout", "realblur:J", "-q") == 2
    assert "nothing is written inside a downloaded dataset" in capsys.readouterr().err
    assert world.tree(root) == before
    # eval: no predictions, or both
    assert _cli("eval", "--gt", root, "--out", out) == 2
    assert "give --pred DIR or --input-baseline" in capsys.readouterr().err
    assert _cli("eval", "--input-baseline", "--gt", root) == 2
    assert "--input-baseline needs --out" in capsys.readouterr().err
    assert _cli("inspect", root, "--layout", "nope") == 2
    # inspect lists the problem and exits 3
    assert _cli("inspect", root) == 3
    assert "problem: RealBlur_R_test_list.txt line 1" in capsys.readouterr().out


def test_lbs_backgrounds_take_gt_folders_as_sharp(dataset_worlds):
    from lodetools.pipelines.lbs import find_backgrounds
    root, truth = dataset_worlds["realblur"]
    bgs = find_backgrounds(root)
    assert len(bgs) == len(truth) and all(p.parent.name == "gt" for p in bgs)
    root, truth = dataset_worlds["hide"]
    bgs = find_backgrounds(root)
    assert len(bgs) == len(truth) and all(p.parent.name == "GT" for p in bgs)



def test_masks_layout_option_as_eval(dataset_worlds, tmp_path, capsys):
    """masks --layout NAME[:VARIANT], the option eval and train take: GoPro's blur_gamma images on request."""
    root, truth = dataset_worlds["gopro"]
    before = world.tree(root)
    used = {}
    for layout in ("gopro", "gopro:blur_gamma"):
        out = tmp_path / layout.replace(":", "-")
        assert _cli("masks", "--data", root, "--layout", layout, "--out", out, "--no-static", "median", "-q") == 0
        recs = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
        assert len(recs) == len(truth) and all((out / r["files"]["mask"]).is_file() for r in recs)
        used[layout] = {Path(r["files"]["blur"]).parent.name for r in recs}
        assert json.loads((out / "dataset.json").read_text())["parameters"]["layout"] == layout
    assert used == {"gopro": {"blur"}, "gopro:blur_gamma": {"blur_gamma"}}
    assert world.tree(root) == before
    assert _cli("masks", "--data", root, "--layout", "hide", "--out", tmp_path / "m2", "-q") == 2
    assert "not a hide dataset root" in capsys.readouterr().err
    assert _cli("masks", "--data", root, "--layout", "nope", "--out", tmp_path / "m3", "-q") == 2
    assert not (tmp_path / "m2").exists() and not (tmp_path / "m3").exists()


@pytest.mark.parametrize("name", list(COUNTS))
def test_verify_a_downloaded_dataset(dataset_worlds, name, capsys):
    root, truth = dataset_worlds[name]
    before = world.tree(root)
    assert _cli("verify", root) == 0
    out = capsys.readouterr().out
    n = sum(c[0] for c in COUNTS[name].values())
    assert f"{name}" in out and "as downloaded" in out and f" {n} pairs (" in out and "0 broken, 0 problem(s)" in out
    assert world.tree(root) == before


def test_verify_a_downloaded_dataset_lists_what_is_wrong(dataset_worlds, tmp_path, capsys):
    """Unreadable images, a missing partner, a mask of another size: listed, exit 3; an extra file: a note."""
    root = tmp_path / "hide"
    shutil.copytree(dataset_worlds["hide"][0], root)
    base = root / "HIDE_dataset"
    (base / "GT" / "7fromGOPR0997.MP4.png").unlink()                     # a blurred image without its GT
    world.write_png(base / "GT" / "extra.png", world.make_triplet(9)[1])  # a GT image without blurred partner
    blur = base / "train" / "1fromGOPR0950.MP4.png"
    blur.write_bytes(blur.read_bytes()[:200])                             # header intact, pixels cut off
    (base / "train" / "2fromGOPR0950.MP4.png").write_bytes(b"not a png")  # not even a header
    before = world.tree(root)
    assert _cli("verify", root) == 3
    cap = capsys.readouterr()
    assert "hide dataset as downloaded (no manifest), 5 pairs" in cap.out
    err = cap.err
    assert "broken: train/train/1fromGOPR0950.MP4" in err
    assert "problem: " in err and "7fromGOPR0997.MP4.png" in err and "2fromGOPR0950.MP4.png" in err
    assert "note: GT image has no blurred partner" in err and "extra.png" in err
    assert world.tree(root) == before
    # a ReLoBlur mask of another size
    root = tmp_path / "rlb"
    shutil.copytree(dataset_worlds["reloblur"][0], root)
    world.write_png(root / "masks" / "test" / "s09" / "seq1" / "1.png", np.zeros((8, 8), np.uint8))
    assert _cli("verify", root) == 3
    assert "problem: mask is 8x8 but its blurred image is" in capsys.readouterr().err
    # --layout as for the other readers
    assert _cli("verify", root, "--layout", "gopro") == 2
    assert "not a gopro dataset root" in capsys.readouterr().err
