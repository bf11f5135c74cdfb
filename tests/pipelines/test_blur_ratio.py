"""``lodetools stats blur-ratio``: LODE section 5.1 / Figure 3 on synthetic-world clips (known motion)."""

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from tests.support.clips import make_clip, write_frame_folder

from lodetools.errors import BadConfig
from lodetools.masks.ratio import THRESHOLDS, blurred_area_ratio, frames_for_fps, ratio_curve

SIZE = (96, 144)


def test_ratio_by_hand_and_thresholds():
    assert len(THRESHOLDS) == 51 and THRESHOLDS[0] == 0 and THRESHOLDS[-1] == 5.0
    assert np.allclose(np.diff(THRESHOLDS), 0.1)
    flow = np.zeros((2, 5, 2), np.float32)
    flow[0, 0] = (3, 4)      # norm 5
    flow[0, 1] = (0, 1)      # norm 1
    flow[0, 2] = (0, -2)     # norm 2
    flow[1, 0] = (0.25, 0)   # norm 0.25
    r = blurred_area_ratio(flow, [0, 0.25, 0.5, 1, 4.9, 5])
    assert np.allclose(r, [4 / 10, 3 / 10, 3 / 10, 2 / 10, 1 / 10, 0])  # strictly greater than t
    assert [frames_for_fps(f) for f in (120, 240, 250, None)] == [2, 3, 3, 3]


def _clips(shake, n=3):
    """Synthetic-world clips (``lodetools.sim.clips``) at 60 fps, so that objects move a few
    pixels between the first and the third frame; with or without camera shake."""
    return [make_clip(seed, 3, size=SIZE, shake=shake, speed=(2.0, 3.0), objects=2,
                      object_size=(0.35, 0.45), fps=60) for seed in range(n)]


@pytest.fixture(scope="module")
def worlds():
    return {"static": _clips(False), "shake": _clips(True)}


def test_static_clips_low_threshold_ratio_is_the_moving_area(worlds):
    curves, truths = [], []
    for frames, masks in worlds["static"]:
        c = ratio_curve(frames)
        assert np.all(np.diff(c) <= 0)  # non-increasing in the threshold
        curves.append(c)
        truths.append(masks[0].mean())  # area of the moving objects in the first frame
    c = np.mean(curves, axis=0)
    truth = float(np.mean(truths))
    i = int(np.argmin(np.abs(THRESHOLDS - 1.0)))
    assert 0.05 < truth < 0.3
    assert abs(c[i] - truth) < 0.35 * truth, (c[i], truth)
    assert c[-1] < 0.02  # objects move about 3 px over the span: nothing above 5 px


def test_shake_clips_have_a_higher_curve(worlds):
    static = np.mean([ratio_curve(f) for f, _ in worlds["static"]], axis=0)
    shake = np.mean([ratio_curve(f) for f, _ in worlds["shake"]], axis=0)
    sl = slice(5, 31)  # 0.5 .. 3 px
    assert np.all(shake[sl] >= static[sl])
    assert shake[10] > 0.5 > static[10]


def _run(*args):
    from lodetools.commands.stats_blur_ratio import command

    return CliRunner().invoke(command, [str(a) for a in args])


def test_command_curves_csv_plot_and_pairs(tmp_path, worlds):
    for name, clips in worlds.items():
        for i, (frames, _) in enumerate(clips):
            write_frame_folder(tmp_path / name / f"c{i}", frames)
    r = _run("--videos", tmp_path / "static", "--videos", tmp_path / "shake", "--label", "local",
             "--label", "global", "--out", tmp_path / "out", "-q")
    assert r.exit_code == 0, r.output + repr(r.exception)
    rows = list(csv.reader((tmp_path / "out" / "blur_ratio.csv").open()))
    assert rows[0] == ["threshold", "local", "global"] and len(rows) == 52
    local = np.array([float(x[1]) for x in rows[1:]])
    glob = np.array([float(x[2]) for x in rows[1:]])
    assert np.all(np.diff(local) <= 0) and np.all(np.diff(glob) <= 0)
    assert glob[10] > local[10]
    assert (tmp_path / "out" / "blur_ratio.png").read_bytes()[:4] == b"\x89PNG"
    clips = list(csv.reader((tmp_path / "out" / "blur_ratio_clips.csv").open()))
    assert len(clips) == 1 + 6 and clips[1][3:5] == ["0", "2"]  # 3-frame clips: frames 0..2
    # same seed: the same result on a rerun (resumed); bad label count
    r = _run("--videos", tmp_path / "static", "--videos", tmp_path / "shake", "--label", "local",
             "--label", "global", "--out", tmp_path / "out", "-q")
    assert r.exit_code == 0 and "0 done, 6 already done" in r.output
    r = _run("--videos", tmp_path / "static", "--label", "a", "--label", "b", "--out", tmp_path / "o2")
    assert isinstance(r.exception, BadConfig) and "2 --label values for 1 datasets" in str(r.exception)


def test_pairs_dataset_reads_source_frames_and_skips_orphans(tmp_path):
    from lodetools.commands.synthesize import command as synth

    frames, _ = make_clip(4, 12, size=SIZE, objects=2)
    write_frame_folder(tmp_path / "vids" / "clipA", frames)
    r = CliRunner().invoke(synth, ["--videos", str(tmp_path / "vids"), "--out", str(tmp_path / "pairs"),
                                   "--m", "7", "--fps", "250", "-q"])
    assert r.exit_code == 0, r.output
    r = _run("--pairs", tmp_path / "pairs", "--out", tmp_path / "out", "-q")
    assert r.exit_code == 0, r.output + repr(r.exception)
    rec = next(iter(json.loads(l) for l in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()))
    pair = json.loads((tmp_path / "pairs" / "manifest.jsonl").read_text().splitlines()[0])
    mid = pair["provenance"]["middle"]
    assert rec["frames"] == [mid, mid + 2] and rec["fps"] == 250
    assert np.allclose(rec["curve"], ratio_curve(frames[mid:mid + 3]))
    # --layout as eval's: forced lodetools reads the manifest (same curve); forced plain reads the
    # blur/ + sharp/ folders, which carry no source video, so every pair is skipped
    r = _run("--pairs", tmp_path / "pairs", "--layout", "lodetools", "--out", tmp_path / "out-l", "-q")
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert json.loads((tmp_path / "out-l" / "manifest.jsonl").read_text().splitlines()[0])["curve"] == rec["curve"]
    r = _run("--pairs", tmp_path / "pairs", "--layout", "plain", "--out", tmp_path / "out-p", "-q")
    assert r.exit_code != 0 and "no video to measure" in str(r.exception)
    r = _run("--pairs", tmp_path / "pairs", "--layout", "nope", "--out", tmp_path / "out-n", "-q")
    assert r.exit_code == 2 and "unknown layout 'nope'" in r.output
    # the source video gone: the pair is skipped and reported, nothing to measure
    import shutil

    shutil.rmtree(tmp_path / "vids")
    r = _run("--pairs", tmp_path / "pairs", "--out", tmp_path / "out2", "-q")
    assert r.exit_code != 0 and "no video to measure" in str(r.exception)
