"""Faults and bad input: concurrent shards, --overwrite, full disks, system errors, bombs, orphans, Ctrl-C.

Each test states the property a user relies on; most run the real CLI (as a
subprocess where processes are killed or run concurrently).
"""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.bad_files import bomb_png
from tests.support.clips import make_clip, write_frame_folder

from lodetools.errors import BadInput, SystemProblem, from_os_error
from lodetools.io.manifest import read_manifest
from lodetools.runner import RunOptions, WorkItem, check_output, run_items

ROOT = Path(__file__).resolve().parent.parent
TOY = Path(__file__).resolve().parent / "support" / "toy_pipeline.py"
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def lodetools(*args, cwd=None, check=None):
    p = subprocess.run([sys.executable, "-m", "lodetools", *map(str, args)], capture_output=True, text=True,
                       env=ENV, cwd=cwd)
    if check is not None:
        assert p.returncode == check, p.stderr
    return p


def toy_cmd(out, *args):
    return [sys.executable, str(TOY), "--out", str(out), "--quiet", *map(str, args)]


def summaries(root):
    """Every summary file of a dataset (dataset.json without timestamps), by name."""
    out = {}
    for name in ("dataset.json", "qa.jsonl", "world.json"):
        p = Path(root) / name
        if p.is_file():
            if name.endswith(".json"):
                doc = json.loads(p.read_text())
                doc.pop("created", None), doc.pop("updated", None)
                out[name] = doc
            else:
                out[name] = sorted(p.read_text().splitlines())
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    for i in range(4):
        write_frame_folder(root / "in" / f"c{i}", make_clip(i, 16, size=(32, 48))[0])
    return root / "in"


SYN = ("--windows-per-clip", 2, "--m", 7, "--val-count", 1, "--seed", 3, "-q")


# ---------------------------------------------------------------- shards: summaries are the union
@pytest.fixture(scope="module")
def serial(clips, tmp_path_factory):
    """The serial run's summaries (in process: no interpreter start)."""
    from click.testing import CliRunner

    from lodetools.commands.synthesize import command

    out = tmp_path_factory.mktemp("serial") / "o"
    r = CliRunner().invoke(command, ["--videos", str(clips), "--out", str(out), *map(str, SYN)])
    assert r.exit_code == 0, r.output
    return summaries(out), read_manifest(out)


def test_concurrent_shards_leave_the_serial_summaries(clips, serial, tmp_path):
    procs = [subprocess.Popen([sys.executable, "-m", "lodetools", "synthesize", "--videos", str(clips),
                               "--out", str(tmp_path / "sharded"), *map(str, SYN), "--shard", f"{k}/2"],
                              env=ENV, stderr=subprocess.PIPE, text=True) for k in (1, 2)]
    for p in procs:
        assert p.wait(120) == 0, p.stderr.read()
    assert serial[0]["dataset.json"]["counts"]["pairs"] == 8
    assert summaries(tmp_path / "sharded") == serial[0]
    assert read_manifest(tmp_path / "sharded") == serial[1]


def test_shards_finishing_in_reverse_order_leave_the_union(clips, serial, tmp_path):
    from click.testing import CliRunner

    from lodetools.commands.synthesize import command

    for k in (2, 1):
        r = CliRunner().invoke(command, ["--videos", str(clips), "--out", str(tmp_path / "sharded"),
                                         *map(str, SYN), "--shard", f"{k}/2"])
        assert r.exit_code == 0, r.output
    assert summaries(tmp_path / "sharded") == serial[0]


def test_a_shard_writing_its_summary_late_does_not_overwrite_the_other(tmp_path):
    """Shard 1 reads the records, then is slow to write; shard 2 finishes meanwhile (the lock orders them)."""
    out = tmp_path / "o"
    slow = subprocess.Popen(toy_cmd(out, "--count", 12, "--shard", "1/2", "--finish-sleep", 3), env=ENV,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    fast = subprocess.Popen(toy_cmd(out, "--count", 12, "--shard", "2/2", "--sleep", 0.1), env=ENV,
                            stderr=subprocess.PIPE, text=True)
    assert slow.wait(60) == 0, slow.stderr.read()
    assert fast.wait(60) == 0, fast.stderr.read()
    assert json.loads((out / "dataset.json").read_text())["counts"]["pairs"] == 12


# ---------------------------------------------------------------- --overwrite keeps the old manifest
def test_overwrite_stopped_by_a_bad_input_keeps_the_old_records(tmp_path):
    out = tmp_path / "o"
    subprocess.run(toy_cmd(out, "--count", 6), env=ENV, check=True)
    p = subprocess.run(toy_cmd(out, "--count", 6, "--seed", 5, "--bad", "--overwrite"), env=ENV,
                       capture_output=True, text=True)
    assert p.returncode == 2 and "this item is bad on purpose" in p.stderr
    v = lodetools("verify", out)
    assert v.returncode == 0 and "6 records" in v.stdout and "0 broken" in v.stdout, v.stdout + v.stderr
    recs = read_manifest(out)
    assert sorted(recs) == [f"train/scene/{i:04d}" for i in range(6)]
    # a complete overwrite keeps only what it wrote
    subprocess.run(toy_cmd(out, "--count", 4, "--seed", 5, "--overwrite"), env=ENV, check=True)
    assert sorted(read_manifest(out)) == [f"train/scene/{i:04d}" for i in range(4)]
    assert lodetools("verify", out).returncode == 0


# ---------------------------------------------------------------- --on-error skip: a bad input is a failure
def test_skipped_truncated_video_is_a_failed_item(tmp_path):
    from lodetools.io.video import write_video

    frames, _ = make_clip(2, 40, size=(32, 48))
    write_video(tmp_path / "in" / "good.mp4", iter(frames), fps=250)
    data = (tmp_path / "in" / "good.mp4").read_bytes()
    (tmp_path / "in" / "trunc.mp4").write_bytes(data[: len(data) * 6 // 10])
    p = lodetools("synthesize", "--videos", tmp_path / "in", "--out", tmp_path / "o", "--m", 7,
                  "--on-error", "skip", "-q")
    assert p.returncode == 3, p.stderr
    assert "failed clip trunc: video is truncated" in p.stderr
    assert {r["scene"] for r in read_manifest(tmp_path / "o").values()} == {"good"}


# ---------------------------------------------------------------- system errors: one line naming the path
def test_os_errors_on_a_named_path_are_one_line(clips, tmp_path):
    err = from_os_error(PermissionError(errno.EACCES, "Permission denied", "/data/x.png"))
    assert isinstance(err, SystemProblem) and err.message == "permission denied (/data/x.png)"
    assert from_os_error(OSError(errno.ENOSPC, "No space left on device")) is None  # no path: a bug
    (tmp_path / "file").write_text("x")
    p = lodetools("synthesize", "--videos", clips, "--out", tmp_path / "file" / "out", "-q")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [f"error: not a directory ({tmp_path / 'file' / 'out'})"]


def _denied(path):
    raise PermissionError(errno.EACCES, "Permission denied", str(path))


def test_item_with_a_system_error_fails_like_a_bad_input(tmp_path):
    items = [WorkItem(f"k{i}", tmp_path / f"in{i}") for i in range(3)]
    s = run_items(items, lambda item, rng: _denied(item.payload) if item.key == "k1" else
                  {"key": item.key, "files": {}}, RunOptions(out=tmp_path / "o", on_error="skip", quiet=True))
    assert s.failed == {"k1": f"permission denied ({tmp_path / 'in1'})"} and not s.bugs
    assert sorted(s.records) == ["k0", "k2"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads every file")
def test_unreadable_input_and_unwritable_out(clips, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    p = lodetools("synthesize", "--videos", clips, "--out", ro / "o", *SYN)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [f"error: permission denied ({ro / 'o'})"]


def _failing_fsync(monkeypatch, after):
    """Make the ``after``-th fsync of a regular file (and later ones) fail as on a full disk."""
    import stat

    real, calls = os.fsync, []

    def fsync(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            calls.append(fd)
            if len(calls) >= after:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def _cli(capsys, *args):
    from lodetools.cli import cli, run_command

    with pytest.raises(SystemExit) as exc:
        run_command(cli, [str(a) for a in args])
    return exc.value.code, capsys.readouterr().err


def test_full_disk_in_synthesize_16_bit_names_the_path_and_keeps_what_was_written(clips, tmp_path, monkeypatch,
                                                                                   capsys):
    out = tmp_path / "o"
    _failing_fsync(monkeypatch, after=8)
    code, err = _cli(capsys, "synthesize", "--videos", clips, "--out", out, *SYN, "--bit-depth", 16)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: no space left on device (")
    assert str(out) in lines[0]
    monkeypatch.undo()
    recs = read_manifest(out)
    assert 0 < len(recs) < 8
    v = lodetools("verify", out)  # what was recorded is intact, and no temporary file is left
    assert v.returncode == 0 and "0 broken" in v.stdout and "temporary" not in v.stdout + v.stderr


def test_full_disk_in_a_checkpoint_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    import torch

    from lodetools.train.checkpoint import save_checkpoint

    ck = tmp_path / "last.pt"
    save_checkpoint(ck, {"iteration": 1})
    before = ck.read_bytes()
    _failing_fsync(monkeypatch, after=1)
    with pytest.raises(OSError) as exc:
        save_checkpoint(ck, {"iteration": 2, "w": torch.zeros(3)})
    assert exc.value.filename == str(ck) and from_os_error(exc.value).message == f"no space left on device ({ck})"
    monkeypatch.undo()
    assert ck.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_full_disk_in_lbs_names_the_path(tmp_path, monkeypatch, capsys):
    from lodetools.sim.voc import write_voc
    from lodetools.color.crf import CRF
    from lodetools.io.images import write_image
    from lodetools.sim.photos import linear_photo

    write_voc(tmp_path / "voc", seed=5, preset="test")
    write_image(tmp_path / "bg" / "a.png", CRF("gamma").to_display(linear_photo("coffee", (48, 64))))
    _failing_fsync(monkeypatch, after=5)
    code, err = _cli(capsys, "lbs", "--voc", tmp_path / "voc", "--backgrounds", tmp_path / "bg",
                     "--out", tmp_path / "o", "--count", 4, "--min-area", 40, "--quiet")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: no space left on device (")
    monkeypatch.undo()
    assert lodetools("verify", tmp_path / "o").returncode == 0


# ---------------------------------------------------------------- decompression bombs
def test_bomb_png_is_refused_from_its_header(tmp_path, monkeypatch):
    import cv2

    from lodetools.io.images import read_image

    bomb = bomb_png(tmp_path / "bomb.png")
    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded a bomb"))
    with pytest.raises(BadInput, match=r"declares 20000x20000 pixels, more than the limit of 100000000"):
        read_image(bomb)
    monkeypatch.setenv("LODETOOLS_MAX_PIXELS", "10")
    small = tmp_path / "small.png"
    from lodetools.io.images import write_image

    write_image(small, np.zeros((4, 4, 3), np.float32))
    with pytest.raises(BadInput, match="more than the limit of 10"):
        read_image(small)


def test_bomb_in_a_frame_folder_is_one_line(tmp_path):
    write_frame_folder(tmp_path / "in" / "c", make_clip(0, 8, size=(32, 48))[0])
    bomb_png(tmp_path / "in" / "c" / "000003.png")
    t = time.time()
    p = lodetools("synthesize", "--videos", tmp_path / "in", "--out", tmp_path / "o", "--m", 3, "-q")
    assert p.returncode == 2 and time.time() - t < 30
    assert p.stderr.strip().splitlines()[-1].startswith("error: image declares 20000x20000 pixels")
    assert len(p.stderr.strip().splitlines()) == 1
    p = lodetools("--max-pixels", 10, "synthesize", "--videos", tmp_path / "in", "--out", tmp_path / "o2",
                  "--m", 3, "-q")
    assert p.returncode == 2 and "more than the limit of 10 " in p.stderr


# ---------------------------------------------------------------- workers die with their parent; Ctrl-C
def _children(pid):
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _start_workers(out):
    proc = subprocess.Popen(toy_cmd(out, "--count", 40, "--workers", 2, "--sleep", 0.5), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 60
    workers = []
    while time.time() < deadline and len(workers) < 2:
        workers = [c for c in _children(proc.pid) if "--multiprocessing-fork" in
                   Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ")]
        time.sleep(0.1)
    assert len(workers) == 2, "the workers did not start"
    while time.time() < deadline and not list(out.rglob("*.png")):
        time.sleep(0.1)
    return proc, workers


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")
def test_workers_die_with_a_killed_parent(tmp_path):
    proc, workers = _start_workers(tmp_path / "o")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    alive = [w for w in workers if _alive(w)]
    for w in alive:  # pragma: no cover - the failure being tested: do not leave them running
        os.kill(w, signal.SIGKILL)
    assert not alive


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")
def test_ctrl_c_with_workers_prints_one_line(tmp_path):
    proc, workers = _start_workers(tmp_path / "o")
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole process group
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["error: aborted"], err
    assert not any(_alive(w) for w in workers)


# ---------------------------------------------------------------- temporaries, reruns, verify
def test_stale_temporaries_are_listed_and_cleaned(tmp_path):
    out = tmp_path / "o"
    subprocess.run(toy_cmd(out, "--count", 3), env=ENV, check=True)
    stale = out / "train/scene/blur/.0001.png.ab12cd34.tmp"
    stale.write_bytes(b"half an image")
    os.utime(stale, (time.time() - 10, time.time() - 10))
    v = lodetools("verify", out)
    assert v.returncode == 3 and f"temporary file: {stale}" in v.stderr
    subprocess.run(toy_cmd(out, "--count", 3), env=ENV, check=True)
    assert not stale.exists()
    assert lodetools("verify", out).returncode == 0


def test_rerun_from_another_working_directory_resumes(clips, tmp_path):
    import shutil

    shutil.copytree(clips, tmp_path / "x" / "clips")
    lodetools("synthesize", "--videos", "x/clips", "--out", "x/o", *SYN, cwd=tmp_path, check=0)
    (tmp_path / "y").mkdir()
    p = lodetools("synthesize", "--videos", "../x/clips", "--out", "../x/o", *SYN[:-1], cwd=tmp_path / "y",
                  check=0)
    assert "0 done, 4 already done" in p.stderr
    # a dataset.json recorded with a relative path (older lodetools) is the same run from its folder
    doc = json.loads((tmp_path / "x/o/dataset.json").read_text())
    params = dict(doc["parameters"])
    doc["parameters"]["videos"] = ["x/clips"]
    (tmp_path / "x/o/dataset.json").write_text(json.dumps(doc))
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        check_output(tmp_path / "x/o", "synthesize", params, overwrite=False)
    finally:
        os.chdir(cwd)


def test_verify_counts_garbage_and_truncated_manifest_lines(tmp_path):
    out = tmp_path / "o"
    subprocess.run(toy_cmd(out, "--count", 3), env=ENV, check=True)
    m = out / "manifest.jsonl"
    lines = m.read_bytes().splitlines(keepends=True)
    m.write_bytes(lines[0] + b"garbage {\n" + lines[1] + lines[2][:30])
    v = lodetools("verify", out)
    assert v.returncode == 3 and "Warning" not in v.stderr and "Traceback" not in v.stderr
    assert "2 records" in v.stdout and "2 broken" in v.stdout
    assert f"broken: {m}: unreadable line 2 (not a manifest record)" in v.stderr
    assert f"broken: {m}: truncated last line 4 (not a manifest record)" in v.stderr


def test_colliding_safe_names_are_one_line(tmp_path):
    a, b = tmp_path / "scène 1", tmp_path / "scène_1"
    items = [WorkItem("train/sc_ne_1/reference", a), WorkItem("train/sc_ne_1/reference", b)]
    with pytest.raises(BadInput) as exc:
        run_items(items, lambda item, rng: {}, RunOptions(out=tmp_path / "o", quiet=True))
    assert str(a) in exc.value.message and str(b) in exc.value.message
    assert "same output 'train/sc_ne_1/reference'" in exc.value.message


# ---------------------------------------------------------------- smaller ones
def test_truncated_dng_prints_only_our_line(tmp_path, capfd):
    from lodetools.io import raw as rawio
    from lodetools.sim import rig

    rig.write_rig(tmp_path / "r", seed=0, preset="test", size=(32, 48), captures=1)
    data = (tmp_path / "r" / "scene01" / "0001_blur.dng").read_bytes()
    bad = tmp_path / "trunc_blur.dng"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput, match="unreadable RAW file"):
        rawio.read_raw(bad, rawio.RigConfig())
    assert capfd.readouterr().err == ""  # LibRaw's own "Unexpected end of file" line is not shown


def test_videos_get_the_umask_mode(tmp_path):
    from lodetools.io.video import write_video

    old = os.umask(0o022)
    try:
        write_video(tmp_path / "a.mp4", iter(make_clip(0, 4, size=(32, 48))[0]), fps=25)
    finally:
        os.umask(old)
    assert (tmp_path / "a.mp4").stat().st_mode & 0o777 == 0o644


def test_resume_of_a_finished_training_says_the_real_iteration(tmp_path, capsys):
    from tests.support.train_data import make_dataset

    make_dataset(tmp_path / "d", n=2, size=(32, 48))
    args = ["train", "simplenet", "--data", tmp_path / "d", "--out", tmp_path / "run", "--iters", 2,
            "--batch", 1, "--crop", 32, "--workers", 0, "--net-opts", "width=4,rank=4", "-q"]
    assert _cli(capsys, *args)[0] == 0
    code, err = _cli(capsys, *args, "--resume")
    assert code == 0 and "to iteration 2;" in err and "model.pt" in err, err


def test_calibrate_color_quiet(tmp_path):
    from lodetools.sim import rig

    rig.write_rig(tmp_path / "r", seed=0, preset="test", size=(32, 48), captures=1)
    lightbox = next((tmp_path / "r").rglob("lightbox_*.dng"), None) or next((tmp_path / "r" / "raw").glob("*.dng"))
    p = lodetools("calibrate", "color", "--lightbox", lightbox, "--camera", "c", "--out", tmp_path / "c.toml",
                  "--patches", "4x3", "-q", check=0)
    assert p.stdout == "" and p.stderr == "" and (tmp_path / "c.toml").is_file()


def test_psnrw_with_a_mask_of_another_size_names_the_mask(tmp_path):
    from lodetools.io.images import write_image
    from lodetools.io.layout import write_pair
    from lodetools.io.manifest import write_dataset_json
    from lodetools.io.manifest import ManifestWriter

    rng = np.random.default_rng(0)
    img = rng.random((32, 48, 3), dtype=np.float32)
    rec = write_pair(tmp_path / "gt", "test", "s", "0001", {"blur": img, "sharp": img, "mask": img[..., 0] > 0.5})
    with ManifestWriter(tmp_path / "gt" / "manifest.jsonl") as w:
        w.append(rec)
    write_dataset_json(tmp_path / "gt", command="toy", params={}, recipe=None, counts={"pairs": 1})
    mask = tmp_path / "gt" / rec["files"]["mask"]
    write_image(mask, np.zeros((16, 16), bool))
    write_image(tmp_path / "pred" / "s" / "0001.png", img)
    p = lodetools("eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--metrics", "psnrw",
                  "--out", tmp_path / "e")
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == [f"error: mask is 16x16 but ground truth test/s/0001 is 48x32 ({mask})"]
