"""The work runner and run conventions (resume, parallel, shards, errors), on a toy pipeline."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lodetools.io.images import read_image_native
from lodetools.io.manifest import read_manifest

TOY = Path(__file__).resolve().parent / "support" / "toy_pipeline.py"
ROOT = Path(__file__).resolve().parent.parent


def run_toy(out, *args, check=True):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, str(TOY), "--out", str(out), "--quiet", *args],
                       capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"toy pipeline failed ({p.returncode}): {p.stderr}")
    return p


def tree_bytes(root):
    """Every output file (relative path -> bytes), dataset.json without timestamps."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            if rel == "dataset.json":
                doc = json.loads(p.read_text())
                doc.pop("created"), doc.pop("updated")
                out[rel] = json.dumps(doc, sort_keys=True).encode()
            else:
                out[rel] = p.read_bytes()
    return out


def image_bytes(root):
    return {k: v for k, v in tree_bytes(root).items() if k.endswith(".png")}


def test_kill_and_resume_is_byte_identical(tmp_path):
    ref = tmp_path / "ref"
    run_toy(ref, "--count", "16")
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(TOY), "--out", str(out), "--quiet", "--count", "16",
                             "--sleep", "0.15"], env=env, stderr=subprocess.DEVNULL)
    seen_partial = []
    deadline = time.time() + 60
    while time.time() < deadline:  # watch final names: each must be a complete image
        pngs = [p for p in out.rglob("*.png")] if out.exists() else []
        for p in pngs:
            try:
                read_image_native(p)
            except Exception as exc:  # pragma: no cover - this is the failure being tested
                seen_partial.append((p, exc))
        if len(list((out / "train" / "scene" / "mask").glob("*.png")) if out.exists() else []) >= 6:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not seen_partial
    n_before = len(read_manifest(out))
    assert 0 < n_before < 16, "the run was not killed halfway"
    # no temporary file is left under a final name
    assert not [p for p in out.rglob("*.png") if p.name.startswith(".")]
    p = run_toy(out, "--count", "16")
    assert f"{16 - n_before} done" in p.stderr
    assert image_bytes(out) == image_bytes(ref)
    assert (out / "manifest.jsonl").read_bytes() == (ref / "manifest.jsonl").read_bytes()


def test_serial_parallel_and_shards_identical(tmp_path):
    run_toy(tmp_path / "serial", "--count", "10")
    run_toy(tmp_path / "par", "--count", "10", "--workers", "2")
    run_toy(tmp_path / "shard", "--count", "10", "--shard", "1/2")
    run_toy(tmp_path / "shard", "--count", "10", "--shard", "2/2")
    serial = tree_bytes(tmp_path / "serial")
    assert tree_bytes(tmp_path / "par") == serial
    assert image_bytes(tmp_path / "shard") == image_bytes(tmp_path / "serial")
    shards = sorted((tmp_path / "shard" / "manifests").glob("*.jsonl"))
    assert len(shards) == 2 and all(s.stat().st_size for s in shards)  # both shards got work
    assert read_manifest(tmp_path / "shard") == read_manifest(tmp_path / "serial")


def test_truncated_manifest_line_is_redone(tmp_path):
    out = tmp_path / "o"
    run_toy(out, "--count", "5")
    ref = image_bytes(out)
    m = out / "manifest.jsonl"
    data = m.read_bytes()
    m.write_bytes(data[: len(data) - 40])  # cut the last record in the middle
    p = run_toy(out, "--count", "5")
    assert "1 done, 4 already done" in p.stderr
    assert image_bytes(out) == ref
    assert len(read_manifest(out)) == 5


def test_missing_or_corrupt_file_is_redone(tmp_path):
    out = tmp_path / "o"
    run_toy(out, "--count", "4")
    ref = image_bytes(out)
    (out / "train/scene/blur/0001.png").unlink()
    (out / "train/scene/sharp/0002.png").write_bytes(b"garbage")
    p = run_toy(out, "--count", "4")
    assert "2 done, 2 already done" in p.stderr
    assert image_bytes(out) == ref


def test_on_error_skip_and_stop(tmp_path):
    p = run_toy(tmp_path / "skip", "--count", "5", "--bad", "--on-error", "skip", check=False)
    assert p.returncode == 3
    assert "failed train/scene/bad: this item is bad on purpose (scene/bad)" in p.stderr
    assert len(read_manifest(tmp_path / "skip")) == 5
    p = run_toy(tmp_path / "stop", "--count", "5", "--bad", check=False)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == "error: this item is bad on purpose (scene/bad)"
    assert "Traceback" not in p.stderr
    assert len(read_manifest(tmp_path / "stop")) == 3  # items before the bad one stay recorded


def test_different_parameters_need_overwrite(tmp_path):
    run_toy(tmp_path / "o", "--count", "3")
    p = run_toy(tmp_path / "o", "--count", "3", "--seed", "7", check=False)
    assert p.returncode == 2 and "different parameters seed" in p.stderr
    run_toy(tmp_path / "o", "--count", "3", "--seed", "7", "--overwrite")
    recs = read_manifest(tmp_path / "o")
    assert len(recs) == 3


def test_path_traversal_is_sanitised(tmp_path):
    out = tmp_path / "o"
    run_toy(out, "--count", "2", "--scene", "../../escape")
    assert not (tmp_path / "escape").exists() and not (tmp_path.parent / "escape").exists()
    files = [p.relative_to(out).as_posix() for p in out.rglob("*.png")]
    assert files and all(f.startswith("train/___.._escape/") for f in files)
    assert all(out.resolve() in (out / f).resolve().parents for f in files)
    assert all(f.startswith("train/") and ".." not in f.split("/") for f in files)


def test_bad_shard_is_one_line_error(tmp_path):
    p = run_toy(tmp_path / "o", "--shard", "3/2", check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_item_rng_depends_on_seed_and_key():
    from lodetools.runner import item_rng

    a = item_rng(1, "x").random(4)
    assert np.array_equal(a, item_rng(1, "x").random(4))
    assert not np.array_equal(a, item_rng(2, "x").random(4))
    assert not np.array_equal(a, item_rng(1, "y").random(4))
