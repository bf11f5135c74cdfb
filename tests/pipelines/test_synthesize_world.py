"""End to end on the synthetic capture world: ``sim clips`` -> ``synthesize`` / ``stats blur-ratio``.

The world's clips are lossless H.264 videos with their exact 8-bit frames and
per-frame truth (moving-object masks, coverage, static vs shaking camera).
"""

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from lodetools.io.images import read_image_native, read_mask
from lodetools.io.layout import read_pairs


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from lodetools.commands.sim import command as sim

    root = tmp_path_factory.mktemp("world")
    # 60 fps: objects and camera move a few pixels per frame (motion per frame scales with 1/fps)
    r = CliRunner().invoke(sim, ["clips", "--out", str(root), "--preset", "test", "--format", "both",
                                 "--clips", "4", "--shake-clips", "2", "--fps", "60", "--seed", "1", "-q"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    return root


def _frames(world, clip):
    d = world / "clips_truth" / clip / "frames"
    return [read_image_native(p) for p in sorted(d.glob("*.png"))]


def test_synthesize_on_world_clips(world, tmp_path):
    from lodetools.commands.synthesize import command

    r = CliRunner().invoke(command, ["--videos", str(world / "clips"), "--out", str(tmp_path / "out"),
                                     "--windows-per-clip", "2", "--val-count", "1", "--seed", "5", "-q"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    pairs = read_pairs(tmp_path / "out")
    assert len(pairs) == 8 and len({p.scene for p in pairs}) == 4
    assert sum(p.split == "val" for p in pairs) == 2  # one clip, both its windows
    for p in pairs:
        prov = p.record["provenance"]
        frames = _frames(world, p.scene)
        s, m = prov["start"], prov["m"]
        assert prov["fps"] == 60.0 and m in (7, 9, 11, 13) and prov["clip_frames"] == len(frames) == 30
        assert np.array_equal(read_image_native(p.sharp), frames[s + m // 2])  # bit-exact middle frame
        lin = np.mean([(f / 255.0) ** 2.2 for f in frames[s:s + m]], axis=0)  # LODE Eqs. (6)-(7), float64
        ref = np.floor(lin ** (1 / 2.2) * 255 + 0.5)
        assert np.abs(read_image_native(p.blur) - ref).max() <= 1


def test_blur_ratio_on_world_clips(world, tmp_path):
    from lodetools.commands.stats_blur_ratio import command

    r = CliRunner().invoke(command, ["--videos", str(world / "clips"), "--frames", "3",
                                     "--out", str(tmp_path / "stats"), "-q"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    rows = list(csv.DictReader((tmp_path / "stats" / "blur_ratio_clips.csv").open()))
    assert len(rows) == 4
    curves = {row["clip"]: np.array([float(row[f"{t / 10:.1f}"]) for t in range(51)]) for row in rows}
    for c in curves.values():
        assert np.all(np.diff(c) <= 0)
    static = [k for k in curves if k.endswith("static")]
    shake = [k for k in curves if k.endswith("shake")]
    assert len(static) == len(shake) == 2
    # static camera: at a low threshold (0.5 px) the ratio is about the true area of the moving
    # objects (the union of their footprints over the measured frames, from the world's truth)
    got, truth = [], []
    for k in static:
        row = next(r for r in rows if r["clip"] == k)
        a, b = int(row["first_frame"]), int(row["last_frame"])
        masks = [read_mask(world / "clips_truth" / k / "masks" / f"{i:06d}.png") for i in (a, b)]
        got.append(curves[k][5])
        truth.append((masks[0] | masks[1]).mean())
    assert 0.05 < np.mean(truth) < 0.4
    assert abs(np.mean(got) - np.mean(truth)) < 0.5 * np.mean(truth), (got, truth)
    # camera shake: a higher curve
    s_mean = np.mean([curves[k] for k in static], axis=0)
    g_mean = np.mean([curves[k] for k in shake], axis=0)
    assert np.all(g_mean[5:31] >= s_mean[5:31]) and g_mean[10] > s_mean[10] + 0.2
    doc = json.loads((tmp_path / "stats" / "dataset.json").read_text())
    assert doc["counts"]["videos"] == 4
