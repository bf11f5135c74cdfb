"""``lodetools eval`` on a small paired dataset."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lodetools.io.images import write_image
from lodetools.io.layout import write_pair
from lodetools.io.manifest import ManifestWriter, write_dataset_json
from lodetools.metrics import psnr, ssim, weighted_psnr
from lodetools.sim.photos import photo

ROOT = Path(__file__).resolve().parents[2]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "lodetools", *args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.fixture()
def dataset(tmp_path):
    root = tmp_path / "data"
    src = photo("chelsea")
    rng = np.random.default_rng(3)
    with ManifestWriter(root / "manifest.jsonl") as w:
        for i, (scene, iid) in enumerate([("s1", "0001"), ("s1", "0002"), ("s2", "0001")]):
            sharp = src[40 * i:40 * i + 48, 60:124]
            mask = np.zeros(sharp.shape[:2], bool)
            mask[10:30, 20:50] = True
            blur = np.clip(sharp + rng.normal(0, 0.05, sharp.shape), 0, 1)
            w.append(write_pair(root, "test", scene, iid, {"blur": blur, "sharp": sharp, "mask": mask}))
        w.append(dict(write_pair(root, "test", "s1", "reference", {"blur": src[:48, :64], "sharp": src[:48, :64]}),
                      static=True))
    write_dataset_json(root, command="test", params={}, recipe=None, counts={})
    return root


def test_eval_scores_match_metric_functions(dataset, tmp_path):
    pred = tmp_path / "pred"
    rng = np.random.default_rng(1)
    expected = {}
    from lodetools.io.images import read_image, read_mask
    for scene, iid in [("s1", "0001"), ("s1", "0002"), ("s2", "0001")]:
        gt = read_image(dataset / f"test/{scene}/sharp/{iid}.png")
        p = np.clip(gt + rng.normal(0, 0.03, gt.shape), 0, 1)
        write_image(pred / "test" / scene / f"{iid}.png", p)
        p8 = read_image(pred / "test" / scene / f"{iid}.png")
        m = read_mask(dataset / f"test/{scene}/mask/{iid}.png")
        expected[f"test/{scene}/{iid}"] = (psnr(p8, gt), ssim(p8, gt), weighted_psnr(p8, gt, m))
    res = cli("eval", "--pred", str(pred), "--gt", str(dataset), "--quiet")
    assert res.returncode == 0, res.stderr
    assert "3 images scored" in res.stdout
    rows = {r["key"]: r for r in csv.DictReader(open(pred / "metrics.csv"))}
    assert set(rows) == set(expected)  # the static reference pair is not scored
    for k, (p, s, pw) in expected.items():
        assert float(rows[k]["psnr"]) == pytest.approx(p, abs=1e-5)
        assert float(rows[k]["ssim"]) == pytest.approx(s, abs=1e-5)
        assert float(rows[k]["psnrw"]) == pytest.approx(pw, abs=1e-5)
    summary = json.loads((pred / "summary.json").read_text())
    assert summary["summary"]["psnr"]["mean"] == pytest.approx(np.mean([e[0] for e in expected.values()]))
    assert "BasicSR" in summary["conventions"]["psnr"]


def test_eval_missing_extra_identical_and_flat_names(dataset, tmp_path):
    from lodetools.io.images import read_image
    pred = tmp_path / "pred"
    # flat <scene>_<id> naming; one identical prediction, one missing, one extra
    write_image(pred / "s1_0001.png", read_image(dataset / "test/s1/sharp/0001.png"))
    write_image(pred / "s2_0001.png", read_image(dataset / "test/s2/sharp/0001.png") * 0.9)
    write_image(pred / "unrelated.png", np.zeros((8, 8, 3)))
    res = cli("eval", "--pred", str(pred), "--gt", str(dataset), "--metrics", "psnr", "--quiet")
    assert res.returncode == 3
    assert "missing prediction: test/s1/0002" in res.stderr
    assert "extra prediction (no ground truth): unrelated.png" in res.stderr
    rows = {r["key"]: r for r in csv.DictReader(open(pred / "metrics.csv"))}
    assert rows["test/s1/0001"]["psnr"] == "inf"
    s = json.loads((pred / "summary.json").read_text())["summary"]["psnr"]
    assert s["n_inf"] == 1 and s["n"] == 1 and np.isfinite(s["mean"])


def test_eval_size_mismatch_and_bad_metric(dataset, tmp_path):
    pred = tmp_path / "pred"
    write_image(pred / "test/s1/0001.png", np.zeros((20, 20, 3)))
    res = cli("eval", "--pred", str(pred), "--gt", str(dataset), "--quiet")
    assert res.returncode == 2
    assert res.stderr.startswith("error: prediction is 20x20 but ground truth test/s1/0001 is 64x48")
    res = cli("eval", "--pred", str(pred), "--gt", str(dataset), "--metrics", "psnr,lpips")
    assert res.returncode == 2 and "unknown metric(s) lpips" in res.stderr
    res = cli("eval", "--pred", str(tmp_path / "nothing"), "--gt", str(dataset))
    assert res.returncode == 2 and "predictions folder not found" in res.stderr
