"""The synthetic beam-splitter rig: determinism, DNG round trip, self-consistent truth."""

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import rawpy

from lodetools.color.correction import cast_bayer
from lodetools.io.bayer import channel_map
from lodetools.sim import rig


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def rig_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("rig")
    rig.write_rig(out, seed=3, preset="test")
    return out


def _read_norm(path):
    """(normalised Bayer, pattern string) straight from rawpy."""
    with rawpy.imread(str(path)) as r:
        raw = r.raw_image_visible.astype(np.float64)
        cols = r.raw_colors_visible
        black = np.asarray(r.black_level_per_channel, np.float64)[cols]
        white = float(r.white_level)
        desc = r.color_desc.decode()
        pat = "".join(desc[i] for i in r.raw_pattern.ravel())
    return (raw - black) / (white - black), pat


def test_same_seed_same_bytes_other_seed_differs(rig_dir, tmp_path):
    rig.write_rig(tmp_path / "a", seed=3, preset="test")
    rig.write_rig(tmp_path / "b", seed=4, preset="test", scenes=1, captures=1)
    assert _digest(tmp_path / "a") == _digest(rig_dir)
    da, db = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert da["scene01/reference_sharp.dng"] != db["scene01/reference_sharp.dng"]


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
@pytest.mark.parametrize("bits", [16, 12])
def test_dng_round_trip(tmp_path, pattern, bits):
    rng = np.random.default_rng(1)
    dn = rng.integers(0, 2 ** bits - 1, (32, 48)).astype(np.uint16)
    black = [11, 12, 13, 14]
    p = tmp_path / "x.dng"
    p.write_bytes(rig.dng_bytes(dn, pattern=pattern, bits=bits, black=black, white=2 ** bits - 5,
                                neutral=[0.5, 1, 0.7], xyz_to_camera=np.eye(3), model="t"))
    with rawpy.imread(str(p)) as r:
        assert np.array_equal(r.raw_image_visible, dn)
        desc = r.color_desc.decode()
        assert "".join(desc[i] for i in r.raw_pattern.ravel()) == pattern
        # black per CFA position, as written
        cols = r.raw_colors_visible[:2, :2].ravel()
        assert [r.black_level_per_channel[c] for c in cols] == black
        assert r.white_level == 2 ** bits - 5
        assert np.allclose(r.camera_whitebalance[:3], [2.0, 1.0, 1 / 0.7], rtol=1e-4)
    # the pattern as colour letters, position by position
    letters = "".join("RGB"[c] for c in channel_map((2, 2), pattern).ravel())
    assert letters == pattern


def test_rig_pattern_written(tmp_path):
    for pattern in ("BGGR", "GBRG"):
        rig.write_rig(tmp_path / pattern, seed=0, preset="test", size=(32, 48), captures=0,
                      pattern=pattern)
        with rawpy.imread(str(tmp_path / pattern / "scene01" / "reference_sharp.dng")) as r:
            desc = r.color_desc.decode()
            letters = "".join(desc[i] for i in r.raw_pattern.ravel())
        assert letters == pattern


def test_lightbox_divided_by_cast_is_flat(rig_dir):
    truth = rig.read_truth(rig_dir)
    h, w = truth["size"]
    for cam in ("blur", "sharp"):
        norm, _ = _read_norm(rig_dir / f"lightbox_{cam}.dng")
        cast = cast_bayer(truth["cameras"][cam]["cast"], (h, w), truth["pattern"])
        cmap = channel_map((h, w), truth["pattern"])
        flat = norm / cast
        for c in range(3):
            sel = cmap == c
            before = [norm[sel & blk].mean() for blk in _blocks(h, w)]
            after = [flat[sel & blk].mean() for blk in _blocks(h, w)]
            assert (max(before) - min(before)) / max(before) > 0.05
            # block means of ~100-400 px: noise ~0.1 %; flat to well under 1 %
            assert (max(after) - min(after)) / max(after) < 0.01


def _blocks(h, w, n=4):
    for i in range(n):
        for j in range(n):
            m = np.zeros((h, w), bool)
            m[i * h // n:(i + 1) * h // n, j * w // n:(j + 1) * w // n] = True
            yield m


def test_blur_capture_is_mean_of_subframes(rig_dir):
    truth = rig.read_truth(rig_dir)
    h, w = truth["size"]
    scene = truth["scenes"]["scene01"]
    params = {"mix": truth["mix"], "sensitivity": truth["sensitivity"], "pattern": truth["pattern"],
              "gain": {c: truth["cameras"][c]["gain"] for c in ("blur", "sharp")},
              "cast": {c: truth["cameras"][c]["cast"] for c in ("blur", "sharp")}}
    r = rig.render_capture(scene, "0001", (h, w), "blur")
    assert r["frames"].shape[0] == scene["subframes"]
    mean = rig.long_exposure(r["frames"])
    np.testing.assert_allclose(mean, r["frames"].astype(np.float64).mean(0), atol=1e-6)
    cap = scene["captures"]["0001"]
    expect = rig.sensor_signal(rig.lens(mean), params, "blur", cap["exposure"], scene["illuminant"])
    single = rig.sensor_signal(rig.lens(r["frames"][0]), params, "blur", cap["exposure"], scene["illuminant"])
    norm, _ = _read_norm(rig_dir / "scene01" / "0001_blur.dng")
    resid = norm - np.clip(expect, 0, 1)
    fw, rn = truth["sensor"]["full_well_e"], truth["sensor"]["read_noise_e"]
    sigma = np.sqrt(np.clip(expect, 0, 1) / fw + (rn / fw) ** 2)
    z = resid / sigma
    assert abs(z.mean()) < 0.15 and 0.8 < z.std() < 1.2
    # the single first sub-frame does not explain the moving objects
    moving = r["masks"].any(0) & ~r["masks"].all(0)
    assert moving.sum() > 20
    z1 = (norm - np.clip(single, 0, 1)) / sigma
    assert np.abs(z1[moving]).mean() > 3 * np.abs(z[moving]).mean()


def _psnr(a, b):
    return 10 * np.log10(a.max() ** 2 / np.mean((a - b) ** 2))


def test_flow_aligns_reference_pair(rig_dir):
    truth = rig.read_truth(rig_dir)
    h, w = truth["size"]
    scene = truth["scenes"]["scene01"]
    s = rig.render_capture(scene, None, (h, w), "sharp")["frames"][0]
    b = rig.long_exposure(rig.render_capture(scene, None, (h, w), "blur")["frames"])
    flow = np.load(rig_dir / scene["misalignment"]["flow"])
    assert flow.shape == (h, w, 2) and flow.dtype == np.float32
    X, Y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    warped = cv2.remap(b, X + flow[..., 0], Y + flow[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    m = 6
    before = _psnr(s[m:-m, m:-m], b[m:-m, m:-m])
    after = _psnr(s[m:-m, m:-m], warped[m:-m, m:-m])
    assert after > before + 10 and after > 35


def test_masks_and_truth_files(rig_dir):
    truth = rig.read_truth(rig_dir)
    cap = truth["scenes"]["scene01"]["captures"]["0001"]
    blur = cv2.imread(str(rig_dir / cap["mask_blur"]), cv2.IMREAD_GRAYSCALE) > 0
    sharp = cv2.imread(str(rig_dir / cap["mask_sharp"]), cv2.IMREAD_GRAYSCALE) > 0
    assert sharp.any() and (blur >= sharp).all() and blur.sum() > sharp.sum()
    assert np.allclose(np.array(truth["beta"]) * np.array(truth["cameras"]["blur"]["gain"]), 1)


def test_bad_rig_options(tmp_path):
    from lodetools.errors import BadConfig

    with pytest.raises(BadConfig):
        rig.write_rig(tmp_path, seed=0, preset="test", size=(33, 48))
    with pytest.raises(BadConfig):
        rig.write_rig(tmp_path, seed=0, preset="test", pattern="RGBW")
