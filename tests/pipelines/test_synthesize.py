"""``lodetools synthesize``: the averaging formula, the sharp frame, splits, bad inputs, streaming."""

import json
import weakref

import numpy as np
import pytest
from click.testing import CliRunner

from tests.support.clips import make_clip, write_frame_folder
from tests.support.averaging_reference import _srgb_decode, _srgb_encode, _table, reference_blur

from lodetools.color.crf import CRF, parse_crf, table_crf
from lodetools.errors import BadConfig, BadInput
from lodetools.io.images import read_image_native
from lodetools.io.layout import read_pairs
from lodetools.io.video import write_video
from lodetools.synth.averaging import (
    Noise, Saturation, Window, average_frames, odd_lengths, plan_windows, synthesize_windows,
)


def _crf(spec, tmp_path):
    if spec == "table":
        p = tmp_path / "crf.txt"
        np.savetxt(p, _table())
        return str(p), parse_crf(str(p))
    return spec, parse_crf(spec)


def run_cli(*args):
    from lodetools.commands.synthesize import command

    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=True)


# ---------------------------------------------------------------- the formula
@pytest.mark.parametrize("spec", ["gamma:2.2", "linear", "srgb", "table"])
def test_pipeline_matches_float64_formula_and_sharp_is_middle_frame(tmp_path, spec):
    arg, crf = _crf(spec, tmp_path)
    frames, _ = make_clip(3, 24, crf=crf, speed=(4.0, 6.0), objects=2)
    write_frame_folder(tmp_path / "in" / "clipA", frames)
    r = run_cli("--videos", tmp_path / "in", "--out", tmp_path / "out", "--crf", arg,
                "--windows-per-clip", 2, "--quiet")
    assert r.exit_code == 0, r.output + repr(r.exception)
    pairs = read_pairs(tmp_path / "out")
    assert len(pairs) == 2
    for p in pairs:
        prov = p.record["provenance"]
        s, m = prov["start"], prov["m"]
        assert m in (7, 9, 11, 13) and prov["middle"] == s + m // 2 and p.id == f"{s + m // 2:06d}"
        blur = read_image_native(p.blur).astype(np.float64)
        ref = reference_blur(frames[s:s + m], spec)
        assert np.abs(blur - ref).max() <= 1
        assert np.mean(blur != ref) < 0.01  # float32 vs float64: almost always identical
        # the blur really is a blur: it differs from the sharp frame where objects move
        sharp = read_image_native(p.sharp)
        assert sharp.dtype == np.uint8 and np.array_equal(sharp, frames[s + m // 2])
        assert np.abs(blur - sharp).max() > 20


@pytest.mark.parametrize("spec", ["gamma:2.2", "srgb"])
def test_core_16_bit_frames(spec):
    crf = parse_crf(spec)
    frames, _ = make_clip(5, 9, crf=crf, bits=16, speed=(4.0, 6.0))
    blur = average_frames(frames, crf)
    ref = reference_blur(frames, spec, top=65535)
    assert np.abs(np.floor(blur * 65535.0 + 0.5) - ref).max() <= 1


def test_sixteen_bit_output_keeps_sharp_values(tmp_path):
    frames, _ = make_clip(4, 9)
    write_frame_folder(tmp_path / "in" / "c", frames)
    r = run_cli("--videos", tmp_path / "in", "--out", tmp_path / "out", "--m", 9, "--bit-depth", 16, "-q")
    assert r.exit_code == 0, r.output
    (p,) = read_pairs(tmp_path / "out")
    sharp = read_image_native(p.sharp)
    assert sharp.dtype == np.uint16 and np.array_equal(sharp, frames[4].astype(np.uint16) * 257)
    blur = read_image_native(p.blur).astype(np.float64)
    x = [f.astype(np.float64) / 255 for f in frames]
    ref = np.floor(np.mean([v ** 2.2 for v in x], axis=0) ** (1 / 2.2) * 65535 + 0.5)
    assert np.abs(blur - ref).max() <= 1


def test_video_input_sharp_is_decoded_middle_frame(tmp_path):
    frames, _ = make_clip(6, 16)
    write_video(tmp_path / "in" / "v1.mp4", iter(frames), fps=250)
    r = run_cli("--videos", tmp_path / "in", "--out", tmp_path / "out", "--m", 7, "--windows-per-clip", 2, "-q")
    assert r.exit_code == 0, r.output
    from lodetools.io.video import iter_frames

    decoded = list(iter_frames(tmp_path / "in" / "v1.mp4"))
    pairs = read_pairs(tmp_path / "out")
    assert len(pairs) == 2
    for p in pairs:
        prov = p.record["provenance"]
        assert prov["fps"] == 250.0 and prov["source"].endswith("v1.mp4") and prov["crf"] == "gamma:2.2"
        s = prov["start"]
        assert np.array_equal(read_image_native(p.sharp), decoded[s + 3])
        ref = reference_blur(decoded[s:s + 7], "gamma:2.2")
        assert np.abs(read_image_native(p.blur) - ref).max() <= 1


# ---------------------------------------------------------------- saturation and noise
def test_saturation_boosts_clipped_pixels_and_is_recorded(tmp_path):
    frames, _ = make_clip(2, 9, bright=3.0, speed=(4.0, 6.0))  # over-exposed: many pixels at 255
    assert np.mean(frames[0].max(axis=2) == 255) > 0.1
    write_frame_folder(tmp_path / "in" / "c", frames)
    r = run_cli("--videos", tmp_path / "in", "--out", tmp_path / "sat", "--m", 9, "--saturation", "-q")
    assert r.exit_code == 0, r.output
    (p,) = read_pairs(tmp_path / "sat")
    prov = p.record["provenance"]
    a = prov["saturation_gain"]
    assert 0.25 <= a <= 1.75 and prov["saturation"]["gain_min"] == 0.25
    blur = read_image_native(p.blur).astype(np.float64)
    assert np.abs(blur - reference_blur(frames, "gamma:2.2", gain=a)).max() <= 1
    plain = reference_blur(frames, "gamma:2.2")
    assert (blur >= plain - 1).all() and (blur > plain + 5).any()  # brighter smears near highlights


def test_noise_is_poisson_gaussian_and_seeded():
    rng = np.random.default_rng(0)
    frames = [np.full((64, 64, 3), 128, np.uint8)] * 7
    crf = parse_crf("linear")
    noise = Noise(shot=0.001, read=0.01)

    def blur(seed):
        res = list(synthesize_windows(enumerate(frames), [Window(0, 7)], crf, noise=noise,
                                      rng=np.random.default_rng(seed)))
        return res[0].blur

    b1, b2, b3 = blur(1), blur(1), blur(2)
    assert np.array_equal(b1, b2) and not np.array_equal(b1, b3)
    x = 128 / 255
    assert abs(b1.mean() - x) < 0.003
    assert abs(b1.std() - np.sqrt(0.001 * x + 0.01 ** 2)) < 0.002
    del rng


# ---------------------------------------------------------------- windows and splits
def test_plan_windows_non_overlapping_odd_in_range():
    lengths = odd_lengths(7, 13)
    assert lengths == [7, 9, 11, 13]
    for seed in range(30):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(7, 200))
        ws = plan_windows(n, lengths, rng, count=int(rng.integers(0, 5)))
        assert all(w.m in lengths for w in ws)
        assert all(a.stop <= b.start for a, b in zip(ws, ws[1:]))
        assert ws and ws[0].start >= 0 and ws[-1].stop <= n
    ws = plan_windows(100, [7], np.random.default_rng(0), count=0)  # as many as fit
    assert len(ws) == 14
    assert plan_windows(6, [7], np.random.default_rng(0), count=1) == []


@pytest.mark.parametrize("args,msg", [
    (["--m", 8], "even frame count M=8"),
    (["--m", 1], "M=1 out of range"),
    (["--frames-min", 8], "even frame count M=8"),
    (["--frames-min", 11, "--frames-max", 9], "range 11..9 is empty"),
    (["--val-count", 9], "only 3 clips are usable"),
    (["--val-count", 1, "--val-fraction", 0.5], "not both"),
    (["--crf", "gamma:x"], "bad CRF"),
])
def test_bad_configuration_is_a_clear_error_and_writes_nothing(tmp_path, args, msg):
    for i in range(3):
        write_frame_folder(tmp_path / "in" / f"c{i}", make_clip(i, 14)[0])
    r = run_cli("--videos", tmp_path / "in", "--out", tmp_path / "out", "-q", *args)
    assert r.exit_code != 0
    err = r.exception if not isinstance(r.exception, SystemExit) else None
    text = (getattr(err, "message", "") or "") + r.output
    assert msg in text
    assert not list((tmp_path / "out").rglob("*.png")) if (tmp_path / "out").exists() else True


def test_splits_by_video_counts_and_short_clip_skipped(tmp_path):
    for i in range(6):
        write_frame_folder(tmp_path / "in" / f"clip{i}", make_clip(i, 16)[0][:16])
    write_frame_folder(tmp_path / "in" / "tiny", make_clip(9, 5)[0])
    r = run_cli("--videos", tmp_path / "in", "--out", tmp_path / "out", "--m", 7, "--windows-per-clip", 2,
                "--val-count", 2, "--test-count", 1, "--seed", 3, "-q")
    assert r.exit_code == 0, r.output
    pairs = read_pairs(tmp_path / "out")
    split_of = {}
    for p in pairs:
        assert split_of.setdefault(p.scene, p.split) == p.split  # no clip in two splits
    assert sorted(split_of.values()).count("val") == 2 and list(split_of.values()).count("test") == 1
    assert len(split_of) == 6 and len(pairs) == 12 and "tiny" not in split_of
    doc = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert "tiny" in doc["skipped_clips"] and "shorter than M = 7" in doc["skipped_clips"]["tiny"]
    assert doc["counts"]["pairs"] == 12 and doc["counts"]["val"] == 4
    # the same seed gives the same split; a rerun resumes (nothing redone)
    r = run_cli("--videos", tmp_path / "in", "--out", tmp_path / "out", "--m", 7, "--windows-per-clip", 2,
                "--val-count", 2, "--test-count", 1, "--seed", 3, "-q")
    assert r.exit_code == 0 and "0 done, 6 already done" in r.output


def test_corrupt_and_truncated_videos_leave_nothing_half_written(tmp_path):
    frames, _ = make_clip(2, 40)
    write_video(tmp_path / "good" / "a.mp4", iter(frames), fps=250)
    data = (tmp_path / "good" / "a.mp4").read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corrupt.mp4").write_bytes(b"\x00\x01 not a video" * 100)
    r = run_cli("--videos", bad, "--out", tmp_path / "o1", "-q")
    assert r.exit_code != 0 and "corrupt.mp4" in str(r.exception)
    assert not list((tmp_path / "o1").rglob("*.png")) if (tmp_path / "o1").exists() else True
    # truncated: the container claims 40 frames, the data stops after about half
    (bad / "corrupt.mp4").unlink()
    (bad / "trunc.mp4").write_bytes(data[: len(data) * 6 // 10])
    r = run_cli("--videos", bad, "--out", tmp_path / "o2", "--m", 7, "-q")
    assert r.exit_code != 0 and "video is truncated" in str(r.exception)
    assert not (tmp_path / "o2").exists() or not list((tmp_path / "o2").rglob("*.png"))
    # with --on-error skip: reported as a failed clip (exit 3), the good clip still done
    (bad / "good.mp4").write_bytes(data)
    r = run_cli("--videos", bad, "--out", tmp_path / "o3", "--m", 7, "--on-error", "skip", "-q")
    assert r.exit_code == 3, r.output
    doc = json.loads((tmp_path / "o3" / "dataset.json").read_text())
    assert "video is truncated" in doc["skipped_clips"]["trunc"]
    assert {p.scene for p in read_pairs(tmp_path / "o3")} == {"good"}
    assert "failed clip trunc: video is truncated" in r.output


# ---------------------------------------------------------------- streaming / bounded memory
class SpyFrames:
    """Yields frames and counts how many of them are still alive (weakrefs)."""

    def __init__(self, n, shape=(32, 48, 3)):
        self.n, self.shape = n, shape
        self.alive = 0
        self.max_alive = 0
        self.yielded = 0

    def _dead(self):
        self.alive -= 1

    def __iter__(self):
        rng = np.random.default_rng(0)
        for i in range(self.n):
            f = rng.integers(0, 256, self.shape, dtype=np.uint8)
            self.alive += 1
            weakref.finalize(f, self._dead)
            self.yielded += 1
            yield f
            del f
            self.max_alive = max(self.max_alive, self.alive)


def test_core_holds_at_most_one_window_and_streams():
    spy = SpyFrames(400)
    windows = plan_windows(400, [13], np.random.default_rng(0), count=0)
    crf = CRF("gamma", 2.2, name="gamma:2.2")
    n = 0
    for res in synthesize_windows(enumerate(spy), windows, crf):
        n += 1
        # streaming: the reader has not run ahead of this window's last frame
        assert spy.yielded == res.window.stop
        del res
    assert n == len(windows) == 30
    assert spy.max_alive <= 13  # never more than one window of frames


def test_pipeline_never_materialises_a_clip(tmp_path, monkeypatch):
    import lodetools.pipelines.synthesize as pipe

    frames, _ = make_clip(1, 60)
    write_frame_folder(tmp_path / "in" / "long", frames)
    spies = []
    real = pipe.iter_frames

    def spy_iter(path, **kw):
        spy = SpyFrames(0)
        spies.append(spy)
        for f in real(path, **kw):
            g = f.copy()
            spy.alive += 1
            weakref.finalize(g, spy._dead)
            yield g
            del g, f
            spy.max_alive = max(spy.max_alive, spy.alive)

    monkeypatch.setattr(pipe, "iter_frames", spy_iter)
    r = run_cli("--videos", tmp_path / "in", "--out", tmp_path / "out", "--windows-per-clip", 0, "-q")
    assert r.exit_code == 0, r.output
    assert len(read_pairs(tmp_path / "out")) >= 4
    assert spies and spies[0].max_alive <= 13


def test_core_refuses_missing_frames_and_truncation():
    crf = parse_crf("gamma:2.2")
    f = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(BadInput, match="frame 2 missing"):
        list(synthesize_windows([(0, f), (1, f), (3, f)], [Window(0, 7)], crf))
    with pytest.raises(BadInput, match="clip ended after 5 frames"):
        list(synthesize_windows(enumerate([f] * 5), [Window(0, 7)], crf))
    with pytest.raises(BadConfig):
        odd_lengths(7, 12)
    with pytest.raises(BadConfig):
        table_crf(np.zeros((10, 3)))
    assert Saturation().gain_max == 1.75


def test_decoding_failure_mid_clip_removes_written_windows(tmp_path, monkeypatch):
    import lodetools.pipelines.synthesize as pipe

    frames, _ = make_clip(1, 40)
    write_frame_folder(tmp_path / "in" / "c", frames)

    def failing(path, **kw):
        for i, f in enumerate(frames):
            if i == 30:
                raise BadInput("video decoding failed after 30 frames", path)
            yield f

    monkeypatch.setattr(pipe, "iter_frames", failing)
    r = run_cli("--videos", tmp_path / "in", "--out", tmp_path / "out", "--m", 7, "--windows-per-clip", 0,
                "--on-error", "skip", "-q")
    assert r.exit_code == 3 and "decoding failed after 30 frames" in r.output
    assert not list((tmp_path / "out").rglob("*.png"))  # windows 1-4 were written, then removed
    assert not (tmp_path / "out" / "manifest.jsonl").read_text().strip()


def test_lode_recipe(tmp_path):
    for i in range(4):
        write_frame_folder(tmp_path / "in" / f"c{i}", make_clip(i, 14)[0])
    r = run_cli("--videos", tmp_path / "in", "--out", tmp_path / "out", "--recipe", "lode", "-q")
    assert r.exit_code == 0, r.output
    pairs = read_pairs(tmp_path / "out")
    assert len(pairs) == 4  # LODE: one pair per clip
    assert [p.split for p in pairs].count("val") == 1  # round(0.27 * 4)
    assert all(p.record["provenance"]["fps"] == 250 and 7 <= p.record["provenance"]["m"] <= 13
               and p.record["provenance"]["m"] % 2 for p in pairs)
    doc = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert doc["recipe"].endswith("lode.toml") and doc["parameters"]["crf"] == "gamma:2.2"
    # a flag overrides the recipe
    r = run_cli("--videos", tmp_path / "in", "--out", tmp_path / "o2", "--recipe", "lode", "--m", 7,
                "--val-fraction", 0.5, "-q")
    assert r.exit_code == 0
    pairs = read_pairs(tmp_path / "o2")
    assert [p.split for p in pairs].count("val") == 2 and {p.record["provenance"]["m"] for p in pairs} == {7}


def test_serial_and_parallel_runs_give_identical_bytes(tmp_path):
    for i in range(2):
        write_frame_folder(tmp_path / "in" / f"c{i}", make_clip(i, 16, bright=2.0)[0])
    common = ["--videos", tmp_path / "in", "--windows-per-clip", 2, "--saturation", "--noise", "--seed", 7, "-q"]
    assert run_cli(*common, "--out", tmp_path / "a").exit_code == 0
    assert run_cli(*common, "--out", tmp_path / "b", "--workers", 2).exit_code == 0
    a, b = read_pairs(tmp_path / "a"), read_pairs(tmp_path / "b")
    assert [p.record["sha256"] for p in a] == [p.record["sha256"] for p in b]
    assert all(p.record["provenance"]["noise"] == {"shot": 0.002, "read": 0.002} for p in a)
    assert run_cli(*common[:-3], "--seed", 8, "-q", "--out", tmp_path / "c").exit_code == 0
    assert [p.record["sha256"] for p in read_pairs(tmp_path / "c")] != [p.record["sha256"] for p in a]


@pytest.mark.parametrize("spec", ["gamma:2.2", "srgb"])
def test_held_blocks_equal_running_sum_and_buffer_reuse_is_safe(spec):
    from lodetools.synth.averaging import WindowAverager

    crf = parse_crf(spec)
    frames, _ = make_clip(8, 11, size=(300, 40), speed=(4.0, 6.0))  # 300 rows: several row blocks
    results = []
    for hold, kernel in ((True, False), (False, False), (True, True)):
        avg = WindowAverager(crf, frames[0].shape, hold=hold, kernel=kernel)
        avg._rows = 64  # force blocks in the held mode
        avg.reset()
        for f in frames:
            avg.add(f)
        results.append(avg.blurred_codes(8))
    assert np.array_equal(results[0], results[1])
    # the fused kernel (exact rounding of g) vs the numpy path (rounding of a float32 pow)
    diff = np.abs(results[2].astype(int) - results[0])
    assert diff.max() <= 1 and np.mean(diff > 0) <= 0.001
    # a reader that reuses one buffer for every frame
    buf = np.empty_like(frames[0])

    def reusing():
        for i, f in enumerate(frames):
            buf[...] = f
            yield i, buf

    (res,) = synthesize_windows(reusing(), [Window(0, 11)], crf, bit_depth=8)
    assert np.array_equal(res.blur, results[2]) and np.array_equal(res.sharp, frames[5])


def test_png_compression_changes_bytes_not_pixels_and_is_not_a_resume_conflict(tmp_path):
    from lodetools.io.images import encode_image, png_compression_level

    frames, _ = make_clip(9, 7)
    img = frames[3]
    decoded = {}
    for level in ("fast", 0, 3, 9):
        data = encode_image(img, ".png", png_compression=level)
        import cv2

        decoded[level] = (len(data), cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED))
        assert np.array_equal(decoded[level][1][:, :, ::-1], img)
    assert decoded[0][0] > decoded[9][0]  # level 0 stores, level 9 compresses
    with pytest.raises(BadConfig, match="PNG compression"):
        png_compression_level("11")
    write_frame_folder(tmp_path / "in" / "c1", frames)
    r = run_cli("--videos", tmp_path / "in", "--out", tmp_path / "out", "--m", 7, "--png-compression", "9", "-q")
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert doc["png_compression"] == 9 and "png_compression" not in doc["parameters"]
    # another level on the same folder resumes (same pixels): no conflict, nothing redone
    r = run_cli("--videos", tmp_path / "in", "--out", tmp_path / "out", "--m", 7, "-q")
    assert r.exit_code == 0 and "0 done, 1 already done" in r.output, r.output
    r = run_cli("--videos", tmp_path / "in", "--out", tmp_path / "out", "--m", 7, "--png-compression", "x")
    assert r.exit_code != 0
