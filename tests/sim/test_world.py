"""``lodetools sim``: layout, world.json, resume, determinism across workers, errors."""

import json

import pytest

from lodetools.cli import main
from lodetools.errors import LodeError
from lodetools.io.video import count_frames, list_videos

ARGS = ["--preset", "test", "--clips", "3", "--frames", "6", "--size", "48x32", "--quiet"]


def run(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in ("world.json", "dataset.json")}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("w") / "world"
    assert run(["sim", "clips", "--out", str(out), "--seed", "7", "--format", "mixed", *ARGS]) == 0
    return out


def test_layout_and_world_json(world):
    doc = json.loads((world / "world.json").read_text())
    clips = doc["parts"]["clips"]
    assert clips["counts"] == {"clips": 3, "shake": 1, "frames": 18}
    assert clips["names"] == ["clip_000_static", "clip_001_static", "clip_002_shake"]
    assert clips["size"] == [48, 32] and clips["fps"] == 250.0 and doc["seed"] == 7
    # clips/ holds exactly the clips (videos and frame folders), directly usable as --videos
    vids = list_videos(world / "clips")
    assert [v.name for v in vids] == ["clip_000_static.mp4", "clip_001_static", "clip_002_shake.mp4"]
    for v in vids:
        name = v.name.split(".")[0]
        truth = json.loads((world / "clips_truth" / name / "truth.json").read_text())
        assert count_frames(v) == truth["n_frames"] == 6
        assert truth["camera"] == ("shake" if "shake" in name else "static")
        assert len(list((world / "clips_truth" / name / "masks").glob("*.png"))) == 6


def test_rerun_resumes_and_other_params_conflict(world, capsys):
    before = _tree(world)
    assert run(["sim", "clips", "--out", str(world), "--seed", "7", "--format", "mixed", *ARGS]) == 0
    assert "0 done, 3 already done" in capsys.readouterr().err
    assert _tree(world) == before
    assert run(["sim", "clips", "--out", str(world), "--seed", "8", "--format", "mixed", *ARGS]) == 2
    assert "different parameters" in capsys.readouterr().err


def test_workers_give_identical_bytes(world, tmp_path):
    out = tmp_path / "par"
    assert run(["sim", "clips", "--out", str(out), "--seed", "7", "--format", "mixed", "--workers", "2",
                *ARGS]) == 0
    assert _tree(out) == _tree(world)


def test_bad_options_and_missing_parts(tmp_path, capsys):
    assert run(["sim", "clips", "--out", str(tmp_path / "a"), "--size", "20", *ARGS[:2]]) == 2
    assert "WxH" in capsys.readouterr().err
    assert run(["sim", "clips", "--out", str(tmp_path / "b"), "--crf", "gamma:x", *ARGS[:2]]) == 2
    assert "gamma" in capsys.readouterr().err
    assert not (tmp_path / "b" / "clips").exists()
    assert run(["sim", "clips", "--out", str(tmp_path / "c"), "--frames", "3", "--duration", "1",
                *ARGS[:2]]) == 2
    assert "not both" in capsys.readouterr().err
    from lodetools.pipelines.sim import SimParams, clip_plan_of, part_module

    plan = clip_plan_of(SimParams(preset="test", duration=0.1, fps=120.0))
    assert plan.frames == 12 and plan.fps == 120.0

    with pytest.raises(LodeError, match="not available"):
        part_module("no_such_part")


def test_parts_are_called_and_summarised(tmp_path, monkeypatch):
    import sys
    import types

    from lodetools.pipelines.sim import write_part

    calls = []

    def write_fake(out_dir, *, seed, preset):
        calls.append((out_dir, seed, preset))
        return {"seed": seed, "size": [64, 96], "images": [{"name": str(i)} for i in range(5)],
                "nested": {"a": 1}}

    mod = types.ModuleType("lodetools.sim.fake")
    mod.write_fake = write_fake
    monkeypatch.setitem(sys.modules, "lodetools.sim.fake", mod)
    write_part("fake", tmp_path, seed=3, preset="test")
    assert calls == [(tmp_path, 3, "test")]
    info = json.loads((tmp_path / "world.json").read_text())["parts"]["fake"]
    assert info["size"] == [64, 96] and info["counts"] == {"images": 5} and "nested" not in info
    assert info["seed"] == 3 and info["preset"] == "test"


def test_sim_all_writes_every_part(tmp_path):
    out = tmp_path / "all"
    assert run(["sim", "all", "--out", str(out), "--preset", "test", "--clips", "1", "--frames", "4",
                "--quiet"]) == 0
    parts = json.loads((out / "world.json").read_text())["parts"]
    assert set(parts) == {"clips", "rig", "voc"}
    assert parts["rig"]["path"] == "rig" and parts["voc"]["path"] == "VOCdevkit/VOC2012"
    assert (out / "clips" / "clip_000_static.mp4").is_file()
    assert any((out / "rig").rglob("*.dng")) and (out / "VOCdevkit/VOC2012/ImageSets/Segmentation").is_dir()
