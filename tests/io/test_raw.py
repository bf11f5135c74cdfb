"""RAW reading: rawpy (DNG) and rig.toml-described Bayer TIFF/NPY, levels, patterns, errors."""

import shutil

import numpy as np
import pytest
import rawpy

from lodetools.errors import BadConfig, BadInput, MissingInput
from lodetools.io import raw as rawio
from lodetools.sim import rig


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_dng_and_array_paths_identical(tmp_path, pattern):
    rig.write_rig(tmp_path / "dng", seed=2, preset="test", captures=1, pattern=pattern)
    rig.write_rig(tmp_path / "npy", seed=2, preset="test", captures=1, pattern=pattern, fmt="npy")
    rig.write_rig(tmp_path / "tif", seed=2, preset="test", captures=1, pattern=pattern, fmt="tiff")
    truth = rig.read_truth(tmp_path / "dng")
    for name in ("scene01/0001_blur", "scene01/reference_sharp", "lightbox_sharp"):
        d = rawio.read_raw(tmp_path / "dng" / f"{name}.dng")
        n = rawio.read_raw(tmp_path / "npy" / f"{name}.npy")
        t = rawio.read_raw(tmp_path / "tif" / f"{name}.tiff")
        cam = "blur" if name.endswith("blur") else "sharp"
        assert d.pattern == n.pattern == t.pattern == pattern
        assert d.black == n.black == [float(b) for b in truth["sensor"]["black_level"][cam]]
        assert d.white == n.white == truth["sensor"]["white_level"]
        np.testing.assert_array_equal(d.bayer, n.bayer)
        np.testing.assert_array_equal(n.bayer, t.bayer)
        # values as written: (DN - black) / (white - black)
        with rawpy.imread(str(tmp_path / "dng" / f"{name}.dng")) as r:
            dn = r.raw_image_visible.astype(np.float32)
        black = np.tile(np.reshape(d.black, (2, 2)), (dn.shape[0] // 2, dn.shape[1] // 2)).astype(np.float32)
        np.testing.assert_allclose(d.bayer, (dn - black) / (np.float32(d.white) - black), rtol=1e-6)
    # metadata read by libraw alone (no rig.toml): the DNG's colour matrix is the rig's camera -> sRGB
    d = rawio.read_raw(tmp_path / "dng" / "scene01" / "0001_sharp.dng", rawio.RigConfig())
    np.testing.assert_allclose(d.camera_to_srgb, truth["camera_to_srgb"], atol=2e-3)
    np.testing.assert_allclose(d.neutral, truth["as_shot_neutral"], atol=1e-3)


def test_errors(tmp_path):
    rig.write_rig(tmp_path / "r", seed=0, preset="test", size=(32, 48), captures=1)
    with pytest.raises(MissingInput):
        rawio.read_raw(tmp_path / "r" / "nope.dng")
    corrupt = tmp_path / "bad_blur.dng"
    corrupt.write_bytes((tmp_path / "r" / "scene01" / "0001_blur.dng").read_bytes()[:300])
    with pytest.raises(BadInput, match="unreadable"):
        rawio.read_raw(corrupt)
    junk = tmp_path / "junk.nef"
    junk.write_bytes(b"not a raw file at all" * 10)
    with pytest.raises(BadInput, match="unreadable"):
        rawio.read_raw(junk)
    # NPY without a rig.toml, wrong shape, bad rig.toml
    lone = tmp_path / "lone"
    lone.mkdir()
    np.save(lone / "x_blur.npy", np.zeros((8, 8), np.uint16))
    with pytest.raises(MissingInput, match="rig.toml"):
        rawio.read_raw(lone / "x_blur.npy")
    (lone / "rig.toml").write_text('pattern = "RGGB"\nblack_level = 0\nwhite_level = 1000\n')
    np.save(lone / "y_blur.npy", np.zeros((8, 8, 3), np.uint16))
    with pytest.raises(BadInput, match="single-channel"):
        rawio.read_raw(lone / "y_blur.npy", rawio.read_rig_config(lone))
    (lone / "rig.toml").write_text('pattern = "RGBW"\nblack_level = 0\nwhite_level = 1000\n')
    with pytest.raises(BadConfig, match="pattern"):
        rawio.read_raw(lone / "x_blur.npy", rawio.read_rig_config(lone))
    (lone / "rig.toml").write_text("pattern = [\n")
    with pytest.raises(BadConfig, match="TOML"):
        rawio.read_rig_config(lone)


def test_pair_checks(tmp_path):
    rig.write_rig(tmp_path / "a", seed=0, preset="test", size=(32, 48), captures=0)
    rig.write_rig(tmp_path / "b", seed=0, preset="test", size=(32, 64), captures=0)
    rig.write_rig(tmp_path / "c", seed=0, preset="test", size=(32, 48), captures=0, pattern="GBRG")
    a = rawio.read_raw(tmp_path / "a" / "scene01" / "reference_blur.dng")
    with pytest.raises(BadInput, match="size mismatch"):
        rawio.check_pair(a, rawio.read_raw(tmp_path / "b" / "scene01" / "reference_sharp.dng"))
    with pytest.raises(BadInput, match="pattern mismatch"):
        rawio.check_pair(a, rawio.read_raw(tmp_path / "c" / "scene01" / "reference_sharp.dng"))
    rawio.check_pair(a, rawio.read_raw(tmp_path / "a" / "scene01" / "reference_sharp.dng"))


class _FakeRaw:
    def __init__(self, pattern, num_colors=3, desc=b"RGBG"):
        self.raw_pattern = pattern
        self.num_colors = num_colors
        self.color_desc = desc


def test_non_bayer_sensor_rejected():
    with pytest.raises(BadInput, match="not a Bayer"):
        rawio._pattern_from_rawpy(_FakeRaw(None), "x.raf")  # e.g. a linear/Foveon file
    with pytest.raises(BadInput, match="not a Bayer"):
        rawio._pattern_from_rawpy(_FakeRaw(np.zeros((6, 6), int)), "x.raf")  # X-Trans 6x6
    with pytest.raises(BadInput, match="not a Bayer"):
        rawio._pattern_from_rawpy(_FakeRaw(np.array([[0, 1], [2, 3]]), 4, b"CMYG"), "x.crw")
    assert rawio._pattern_from_rawpy(_FakeRaw(np.array([[1, 0], [2, 3]])), "x.dng") == "GRBG"


def test_scan_scene_pairs_and_missing_partner(tmp_path):
    rig.write_rig(tmp_path, seed=0, preset="test", size=(32, 48), captures=2)
    scenes = rawio.scan_raw_pairs(tmp_path)
    assert [s.name for s in scenes] == ["scene01"]  # truth/ holds no RAW pairs
    s = scenes[0]
    assert s.reference and s.whiteboard and list(s.captures) == ["0001", "0002"] and not s.problems
    (tmp_path / "scene01" / "0002_sharp.dng").unlink()
    s = rawio.scan_scene(tmp_path / "scene01")
    assert list(s.captures) == ["0001"]
    assert "missing partner" in s.problems[0][1] and s.problems[0][0].name == "0002_blur.dng"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MissingInput):
        rawio.scan_raw_pairs(empty)
    shutil.rmtree(empty)


def test_12_bit_rig_reads_like_16_bit(tmp_path):
    rig.write_rig(tmp_path / "a", seed=1, preset="test", size=(32, 48), captures=0, bits=16)
    rig.write_rig(tmp_path / "b", seed=1, preset="test", size=(32, 48), captures=0, bits=12)
    a = rawio.read_raw(tmp_path / "a" / "scene01" / "reference_sharp.dng")
    b = rawio.read_raw(tmp_path / "b" / "scene01" / "reference_sharp.dng")
    assert b.white == 3890 and b.black == [float(v) for v in rig.black_levels(12, "sharp")]
    # the same photons, quantised to 12 instead of 16 bits
    assert np.abs(a.bayer - b.bayer).max() <= 0.5 / (b.white - max(b.black)) + 0.5 / (a.white - max(a.black)) + 1e-6


def test_libraw_silencing_from_several_threads_restores_stderr(tmp_path):
    """Pipelines read RAW files on several threads: however their silenced sections interleave,
    file descriptor 2 is the original stream afterwards (a regression: it stayed /dev/null)."""
    import os
    import threading

    rig.write_rig(tmp_path / "r", seed=0, preset="test", size=(32, 48), captures=1)
    files = sorted((tmp_path / "r").rglob("*.dng"))
    before = os.fstat(2)
    barrier = threading.Barrier(4)

    def read_many():
        barrier.wait()
        for f in files * 3:
            rawio.read_raw(f)

    threads = [threading.Thread(target=read_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    assert os.path.realpath("/proc/self/fd/2") != os.devnull
