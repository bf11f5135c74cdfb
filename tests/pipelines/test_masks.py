"""``lodetools masks``: in-place update, resume, no clobbering, new dataset, bad inputs, statistics."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lodetools.commands.masks import command
from lodetools.errors import BadConfig, BadInput, OutputConflict
from lodetools.io.images import read_mask
from lodetools.io.layout import read_pairs
from lodetools.io.manifest import read_dataset_json, read_manifest, sha256_file
from tests.support.masks_world import iou, make_scene, write_dataset

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--init-frames", "3", "--erode", "3", "--dilate", "5", "--quiet"]


def run(*args):
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=True)


@pytest.fixture()
def dataset(tmp_path):
    rng = np.random.default_rng(11)
    scenes = [make_scene(rng, (64, 96), n_pairs=3) for _ in range(2)]
    root = tmp_path / "ds"
    truth = write_dataset(root, scenes)
    return root, truth


def test_in_place_masks_match_truth_and_are_recorded(dataset):
    root, truth = dataset
    before = {k: r["sha256"]["blur"] for k, r in read_manifest(root).items()}
    res = run("--data", root, *SMALL)
    assert res.exit_code == 0, res.output
    pairs = {p.key: p for p in read_pairs(root)}
    ious = []
    for key, t in truth.items():
        p = pairs[key]
        assert p.mask == root / p.split / p.scene / "mask" / f"{p.id}.png"
        assert sha256_file(p.mask) == p.record["sha256"]["mask"]
        assert p.record["sha256"]["blur"] == before[key]  # the pair itself is untouched
        assert p.record["mask_provenance"]["background"] == "static pair reference"
        assert p.id not in p.record["mask_provenance"]["history"]
        ious.append(iou(read_mask(p.mask), t))
    assert np.mean(ious) >= 0.7
    assert pairs["train/scene00/reference"].mask is None  # static pairs get no mask
    # statistics: JSON mean equals the mean over the written masks; the plot is a PNG
    stats = json.loads((root / "mask_stats.json").read_text())
    fr = [read_mask(pairs[k].mask).mean() for k in truth]
    assert stats["summary"]["mean"] == pytest.approx(np.mean(fr))
    assert stats["summary"]["count"] == len(truth)
    assert (root / "mask_stats.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = read_dataset_json(root)
    assert doc["command"] == "test-world" and doc["masks"]["parameters"]["lbfmg"]["erode"] == 3
    # the manifest is compacted: one line per pair
    assert len((root / "manifest.jsonl").read_text().splitlines()) == len(truth) + 2


def test_rerun_resumes_and_other_parameters_conflict(dataset):
    root, _ = dataset
    assert run("--data", root, *SMALL).exit_code == 0
    first = {k: r["mask_provenance"]["params_id"] for k, r in read_manifest(root).items() if not r.get("static")}
    stamp = {p: p.stat().st_mtime_ns for p in root.glob("train/*/mask/*.png")}
    res = run("--data", root, *SMALL)
    assert res.exit_code == 0
    assert {p: p.stat().st_mtime_ns for p in root.glob("train/*/mask/*.png")} == stamp
    res = run("--data", root, *SMALL, "--var-threshold", "30")
    assert isinstance(res.exception, OutputConflict)
    res = run("--data", root, *SMALL, "--var-threshold", "30", "--overwrite")
    assert res.exit_code == 0
    again = {k: r["mask_provenance"]["params_id"] for k, r in read_manifest(root).items() if not r.get("static")}
    assert again.keys() == first.keys() and all(again[k] != first[k] for k in first)
    assert read_dataset_json(root)["masks"]["parameters"]["lbfmg"]["var_threshold"] == 30


def test_existing_masks_are_kept_unless_overwrite(tmp_path):
    from lodetools.io.layout import write_pair
    from lodetools.io.manifest import ManifestWriter

    rng = np.random.default_rng(12)
    sc = make_scene(rng, (64, 96), n_pairs=2)
    root = tmp_path / "ds"
    write_dataset(root, [sc])
    marker = np.zeros((64, 96), bool)
    marker[:4, :4] = True
    with ManifestWriter(root / "manifest.jsonl") as w:
        w.append(write_pair(root, "train", "scene00", "0000",
                            {"sharp": sc["pairs"][0][0], "blur": sc["pairs"][0][1], "mask": marker}))
    assert run("--data", root, *SMALL).exit_code == 0
    recs = read_manifest(root)
    np.testing.assert_array_equal(read_mask(root / recs["train/scene00/0000"]["files"]["mask"]), marker)
    assert "mask_provenance" not in recs["train/scene00/0000"]
    assert recs["train/scene00/0001"]["mask_provenance"]["method"] == "lbfmg"
    assert run("--data", root, *SMALL, "--overwrite").exit_code == 0
    recs = read_manifest(root)
    assert recs["train/scene00/0000"]["mask_provenance"]["method"] == "lbfmg"
    assert not np.array_equal(read_mask(root / recs["train/scene00/0000"]["files"]["mask"]), marker)


def test_new_dataset_with_out_leaves_input_alone(dataset, tmp_path):
    root, truth = dataset
    before = (root / "manifest.jsonl").read_bytes()
    out = tmp_path / "out"
    res = run("--data", root, "--out", out, *SMALL)
    assert res.exit_code == 0, res.output
    assert (root / "manifest.jsonl").read_bytes() == before and not (root / "mask_stats.json").exists()
    pairs = {p.key: p for p in read_pairs(out)}
    assert set(pairs) == set(truth) | {"train/scene00/reference", "train/scene01/reference"}
    assert pairs["train/scene01/reference"].record["static"] is True
    for key in truth:
        assert (out / pairs[key].record["files"]["blur"]).read_bytes() == \
            (root / pairs[key].record["files"]["blur"]).read_bytes()
        assert pairs[key].mask.is_file()
    assert read_dataset_json(out)["command"] == "masks"
    assert run("--data", root, "--out", out, *SMALL).exit_code == 0  # resume: nothing to do


def test_unreadable_image_names_the_file(dataset, tmp_path):
    root, _ = dataset
    bad = root / "train" / "scene01" / "blur" / "0001.png"
    bad.write_bytes(b"not a png")
    res = run("--data", root, *SMALL)
    assert isinstance(res.exception, BadInput) and "cannot decode" in str(res.exception)
    assert str(bad) in str(res.exception)
    # the CLI prints one line and exits 2; with --on-error skip the good scene is done (exit 3)
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}")
    p = subprocess.run([sys.executable, "-m", "lodetools", "masks", "--data", str(root), *SMALL],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 2 and p.stderr.strip().startswith("error: cannot decode image")
    p = subprocess.run([sys.executable, "-m", "lodetools", "masks", "--data", str(root), "--on-error", "skip",
                        *SMALL], capture_output=True, text=True, env=env)
    assert p.returncode == 3, p.stderr
    recs = read_manifest(root)
    assert "mask" in recs["train/scene00/0000"]["files"] and "mask" not in recs["train/scene01/0000"]["files"]


def test_size_mismatch_in_a_scene_is_refused(dataset):
    root, _ = dataset
    import cv2

    p = root / "train" / "scene00" / "sharp" / "0002.png"
    cv2.imwrite(str(p), np.zeros((32, 48, 3), np.uint8))
    res = run("--data", root, *SMALL)
    assert isinstance(res.exception, BadInput)
    assert "size mismatch in scene: 48x32 vs 96x64" in str(res.exception) and str(p) in str(res.exception)


def test_scene_without_static_pair_needs_the_median_option(tmp_path):
    rng = np.random.default_rng(13)
    root = tmp_path / "ds"
    truth = write_dataset(root, [make_scene(rng, (64, 96), n_pairs=4, objects=(1, 1), size=(0.2, 0.3))],
                          static=False)
    res = run("--data", root, *SMALL)
    assert isinstance(res.exception, BadInput) and "no static pair" in str(res.exception)
    assert run("--data", root, *SMALL, "--no-static", "median").exit_code == 0
    recs = read_manifest(root)
    assert all(recs[k]["mask_provenance"]["background"] == "median" for k in truth)
    assert read_dataset_json(root)["masks"]["parameters"]["no_static"] == "median"
    assert np.mean([iou(read_mask(root / recs[k]["files"]["mask"]), t) for k, t in truth.items()]) >= 0.6


def test_single_pair_scene_and_single_pair_without_static(tmp_path):
    rng = np.random.default_rng(14)
    root = tmp_path / "ds"
    truth = write_dataset(root, [make_scene(rng, (64, 96), n_pairs=1, objects=(1, 1))])
    assert run("--data", root, *SMALL).exit_code == 0
    (key, t), = truth.items()
    assert iou(read_mask(root / read_manifest(root)[key]["files"]["mask"]), t) >= 0.6
    root2 = tmp_path / "ds2"
    write_dataset(root2, [make_scene(rng, (64, 96), n_pairs=1)], static=False)
    res = run("--data", root2, *SMALL, "--no-static", "median")
    assert isinstance(res.exception, BadInput) and "needs at least 3" in str(res.exception)


def test_bad_invocations(dataset, tmp_path):
    root, _ = dataset
    res = run("--data", root, "--shard", "1/2", *SMALL)
    assert isinstance(res.exception, BadConfig) and "--shard needs --out" in str(res.exception)
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run("--data", empty, *SMALL)
    assert "not a lodetools dataset" in str(res.exception)
    res = run("--data", root, "--split", "val", *SMALL)
    assert "no pairs in split 'val'" in str(res.exception)


def test_recipe_table_is_valid_for_the_command(dataset):
    root, _ = dataset
    res = run("--data", root, "--recipe", "reloblur", "--quiet")
    assert res.exit_code == 0, res.output
    doc = read_dataset_json(root)
    assert doc["masks"]["recipe"].endswith("reloblur.toml")


def test_command_defaults_are_the_recipe_values():
    from lodetools.recipe import load_recipe

    _, rec = load_recipe("reloblur", "masks")
    defaults = {p.name: p.default for p in command.params}
    assert rec and all(defaults[k] == v for k, v in rec.items()), rec


def test_png_compression_reaches_the_mask_pngs(dataset, tmp_path):
    """``--png-compression 0`` stores the masks uncompressed (zlib stored blocks), same pixels as ``fast``."""
    root, truth = dataset
    sizes, pixels = {}, {}
    for level in ("fast", "0"):
        out = tmp_path / f"out-{level}"
        res = run("--data", root, "--out", out, *SMALL, "--png-compression", level)
        assert res.exit_code == 0, res.output
        pairs = {p.key: p for p in read_pairs(out)}
        sizes[level] = {k: pairs[k].mask.stat().st_size for k in truth}
        pixels[level] = {k: read_mask(pairs[k].mask) for k in truth}
        assert read_dataset_json(out)["masks"]["png_compression"] == (0 if level == "0" else "fast")
    for k in truth:
        np.testing.assert_array_equal(pixels["0"][k], pixels["fast"][k])
        h, w = pixels["0"][k].shape
        assert sizes["0"][k] >= h * (w + 1) > sizes["fast"][k]  # stored: every row's filter byte and pixels
