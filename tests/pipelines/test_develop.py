"""``lodetools calibrate color`` + ``lodetools develop`` on the synthetic rig, against its truth."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from lodetools.cli import main
from lodetools.io.calibration import read_calibration
from lodetools.io.layout import read_pairs
from lodetools.io.raw import read_rig_config, scan_raw_pairs
from lodetools.pipelines.develop import DevelopOptions, develop_scene
from lodetools.sim import rig



def run(argv):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    return exc.value.code


@pytest.fixture(scope="module")
def calibrated(rig_factory):
    """A 128x192 rig (2 scenes x 2 captures; accuracy needs the pixels) and both calibrations."""
    return rig_factory(size=(128, 192), scenes=2, captures=2)


def test_calibrate_color_cli(calibrated, capsys):
    cal = read_calibration(calibrated / "cal" / "blur.toml")
    assert cal.shape == (128, 192) and cal.pattern == "RGGB" and cal.patches == (16, 12)
    assert cal.nonuniformity_before.min() >= 0.10 and cal.nonuniformity_after.max() <= 0.01
    text = (calibrated / "cal" / "blur.toml").read_text()
    assert "sha256" in text and "residual" in text and 'camera = "sim-blur"' in text
    # refuses to overwrite, rejects a bad patch grid
    assert run(["calibrate", "color", "--lightbox", calibrated / "raw" / "lightbox_blur.dng",
                "--camera", "x", "--out", calibrated / "cal" / "blur.toml"]) == 2
    assert "exists" in capsys.readouterr().err
    assert run(["calibrate", "color", "--lightbox", calibrated / "raw" / "lightbox_blur.dng",
                "--camera", "x", "--out", calibrated / "cal" / "x.toml", "--patches", "16by12"]) == 2


def test_develop_command_against_truth(calibrated):
    out = calibrated / "out"
    code = run(["develop", "--raw-pairs", calibrated / "raw", "--out", out, "--recipe", "reloblur",
                "--calib-blur", calibrated / "cal" / "blur.toml",
                "--calib-sharp", calibrated / "cal" / "sharp.toml", "--quiet"])
    assert code in (0, None)
    truth = rig.read_truth(calibrated / "raw")
    pairs = read_pairs(out, split="test")
    assert sorted(p.key for p in pairs) == sorted(
        f"test/{s}/{i}" for s in ("scene01", "scene02") for i in ("0001", "0002", "reference"))
    for p in pairs:
        assert p.record["static"] == (p.id == "reference")
        beta = np.array(p.record["provenance"]["beta"])
        assert np.abs(beta / np.array(truth["beta"]) - 1).max() <= 0.005
        assert p.record["provenance"]["white_balance"]["source"] == "whiteboard"
    qa = [json.loads(line) for line in (out / "qa.jsonl").read_text().splitlines()]
    assert len(qa) == 2
    for q in qa:
        # Delta-L (appendix Eq. (1)) on the static reference pair decreases and ends <= 1 %
        assert q["delta_l_after"]["smoothed"] < q["delta_l_before"]["smoothed"]
        assert q["delta_l_after"]["registered"] < q["delta_l_before"]["registered"]
        assert q["delta_l_after"]["smoothed"] <= 0.01
        assert q["delta_l_before"]["smoothed"] >= 0.02
    ds = json.loads((out / "dataset.json").read_text())
    assert ds["command"] == "develop" and ds["counts"]["static"] == 2
    # a rerun resumes: nothing redone
    assert run(["develop", "--raw-pairs", calibrated / "raw", "--out", out, "--recipe", "reloblur",
                "--calib-blur", calibrated / "cal" / "blur.toml",
                "--calib-sharp", calibrated / "cal" / "sharp.toml", "--quiet"]) in (0, None)


def test_bad_inputs_other_scenes_processed(calibrated, tmp_path, capsys):
    raw = tmp_path / "raw"
    shutil.copytree(calibrated / "raw", raw)
    (raw / "scene01" / "0002_sharp.dng").unlink()  # missing partner
    args = ["develop", "--raw-pairs", raw, "--calib-blur", calibrated / "cal" / "blur.toml",
            "--calib-sharp", calibrated / "cal" / "sharp.toml", "--quiet", "--no-refining-step"]
    assert run([*args, "--out", tmp_path / "o1", "--on-error", "skip"]) == 3
    err = capsys.readouterr().err
    assert "missing partner" in err and "0002_blur.dng" in err
    assert {p.scene for p in read_pairs(tmp_path / "o1")} == {"scene02"}
    # stop at the first bad scene: one line, exit 2
    assert run([*args, "--out", tmp_path / "o2"]) == 2
    assert capsys.readouterr().err.startswith("error: missing partner")
    # corrupt DNG
    shutil.copy(calibrated / "raw" / "scene01" / "0002_sharp.dng", raw / "scene01" / "0002_sharp.dng")
    (raw / "scene02" / "0001_blur.dng").write_bytes(b"\x00" * 1000)
    assert run([*args, "--out", tmp_path / "o3", "--on-error", "skip"]) == 3
    assert "unreadable RAW" in capsys.readouterr().err
    assert {p.scene for p in read_pairs(tmp_path / "o3")} == {"scene01"}
    # size mismatch inside a pair
    shutil.copy(calibrated / "raw" / "scene02" / "0001_blur.dng", raw / "scene02" / "0001_blur.dng")
    rig.write_rig(tmp_path / "small", seed=0, preset="test", size=(64, 96), captures=1)
    shutil.copy(tmp_path / "small" / "scene01" / "0001_blur.dng", raw / "scene02" / "0001_blur.dng")
    assert run([*args, "--out", tmp_path / "o4", "--on-error", "skip"]) == 3
    assert "size mismatch" in capsys.readouterr().err
    # a calibration made for another image size
    assert run(["calibrate", "color", "--lightbox", tmp_path / "small" / "lightbox_blur.dng",
                "--camera", "s", "--out", tmp_path / "small.toml"]) == 0
    assert run(["develop", "--raw-pairs", calibrated / "raw", "--out", tmp_path / "o5",
                "--calib-blur", tmp_path / "small.toml", "--calib-sharp", calibrated / "cal" / "sharp.toml",
                "--quiet"]) == 2
    assert "calibration is for 96x64" in capsys.readouterr().err


def test_develop_scene_api_patterns_and_formats(tmp_path):
    """All four Bayer patterns develop to the same picture; DNG and NPY paths give identical pixels."""
    results = {}
    for pattern, fmt in [("RGGB", "dng"), ("RGGB", "npy"), ("BGGR", "dng"), ("GRBG", "dng"), ("GBRG", "dng")]:
        d = tmp_path / f"{pattern}-{fmt}"
        rig.write_rig(d, seed=5, preset="test", captures=1, pattern=pattern, fmt=fmt)
        ext = {"dng": "dng", "npy": "npy"}[fmt]
        from lodetools.color.correction import fit_cast
        from lodetools.io.raw import read_raw

        fits = {c: (lambda f: fit_cast(f.bayer, f.pattern))(read_raw(d / f"lightbox_{c}.{ext}")) for c in ("blur", "sharp")}
        scene = scan_raw_pairs(d)[0]
        dev = develop_scene(scene, fits["blur"], fits["sharp"], rig=read_rig_config(d),
                            options=DevelopOptions(refining_step=False))
        assert [p.id for p in dev.pairs] == ["reference", "0001"] and dev.pairs[0].static
        assert dev.pairs[0].sharp.shape == (64, 96, 3) and dev.pairs[0].sharp.dtype == np.float32
        results[(pattern, fmt)] = dev
    a, b = results[("RGGB", "dng")], results[("RGGB", "npy")]
    for pa, pb in zip(a.pairs, b.pairs):
        np.testing.assert_array_equal(pa.blur, pb.blur)
        np.testing.assert_array_equal(pa.sharp, pb.sharp)
    ref = a.pairs[0].sharp[4:-4, 4:-4]
    for pattern in ("BGGR", "GRBG", "GBRG"):
        other = results[(pattern, "dng")].pairs[0].sharp[4:-4, 4:-4]
        psnr = 10 * np.log10(1 / np.mean((ref - other) ** 2))
        assert psnr > 25, (pattern, psnr)  # noise and demosaicing differ; a CFA mix-up gives ~15 dB
        np.testing.assert_allclose(other.reshape(-1, 3).mean(0), ref.reshape(-1, 3).mean(0), rtol=0.01)


def test_scene_without_reference_or_whiteboard(tmp_path):
    from lodetools.color.correction import fit_cast
    from lodetools.io.raw import read_raw

    rig.write_rig(tmp_path, seed=4, preset="test", captures=1)
    for name in ("reference_blur", "reference_sharp", "whiteboard_blur", "whiteboard_sharp"):
        (tmp_path / "scene01" / f"{name}.dng").unlink()
    fits = {c: (lambda f: fit_cast(f.bayer, f.pattern))(read_raw(tmp_path / f"lightbox_{c}.dng"))
            for c in ("blur", "sharp")}
    dev = develop_scene(scan_raw_pairs(tmp_path)[0], fits["blur"], fits["sharp"], rig=read_rig_config(tmp_path),
                        options=DevelopOptions(refining_step=False))
    assert [p.id for p in dev.pairs] == ["0001"] and not dev.pairs[0].static
    assert dev.qa == {} and dev.warp is None
    assert dev.wb_source == "metadata"  # the DNG's as-shot neutral
    truth = rig.read_truth(tmp_path)
    np.testing.assert_allclose(dev.wb_gains, 1 / np.array(truth["as_shot_neutral"]), rtol=1e-3)


def _corner_to_centre(img: np.ndarray, k: int = 8) -> np.ndarray:
    """Per channel: mean of the four k x k corners over the mean of the central 2k x 2k block."""
    h, w = img.shape[:2]
    corners = np.mean([img[:k, :k], img[:k, -k:], img[-k:, :k], img[-k:, -k:]], axis=(0, 1, 2))
    return corners / img[h // 2 - k:h // 2 + k, w // 2 - k:w // 2 + k].mean(axis=(0, 1))


def test_develop_without_color_correction(calibrated, tmp_path, capsys):
    """--no-color-correction: no calibration read, recorded, and the true cast stays in the images."""
    from lodetools.io.images import read_image
    from lodetools.io.manifest import read_dataset_json

    raw = calibrated / "raw"
    linear = ["--raw-pairs", raw, "--quiet", "--no-refining-step", "--gamma", "linear", "--no-color-matrix",
              "--white-balance", "none", "--bit-depth", "16"]
    assert run(["develop", *linear, "--out", tmp_path / "cc", "--calib-blur", calibrated / "cal" / "blur.toml",
                "--calib-sharp", calibrated / "cal" / "sharp.toml"]) in (0, None)
    assert run(["develop", *linear, "--out", tmp_path / "raw-cast", "--no-color-correction"]) in (0, None)
    ds = read_dataset_json(tmp_path / "raw-cast")
    assert ds["parameters"]["color_correction"] is False
    assert not any(k.endswith("_sha256") for k in ds["parameters"])
    assert read_dataset_json(tmp_path / "cc")["parameters"]["color_correction"] is True
    pairs = read_pairs(tmp_path / "raw-cast")
    assert len(pairs) == 6 and all(p.record["provenance"]["color_correction"] is False for p in pairs)
    # linear, no matrix, no white balance: uncorrected / corrected = the sharp camera's cast g(x, y),
    # so the quotient of their corner-to-centre ratios is the true cast's
    truth = rig.read_truth(raw)
    cast = np.stack([rig.true_cast(truth, "sharp", c) for c in range(3)], -1)
    ref = "test/scene01/sharp/reference.png"
    cc, nocc = read_image(tmp_path / "cc" / ref), read_image(tmp_path / "raw-cast" / ref)
    assert np.abs(_corner_to_centre(cc) / _corner_to_centre(nocc) - 1).min() >= 0.05  # not corrected
    np.testing.assert_allclose(_corner_to_centre(nocc) / _corner_to_centre(cc), _corner_to_centre(cast), rtol=0.02)


def test_missing_calibration_names_file_and_flag(calibrated, tmp_path, capsys):
    raw = calibrated / "raw"
    assert run(["develop", "--raw-pairs", raw, "--out", tmp_path / "o1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--calib-blur" in err and "--no-color-correction" in err and err.count("\n") == 1
    assert run(["align", "--raw-pairs", raw, "--out", tmp_path / "o2", "--quiet", "--calib-blur",
                tmp_path / "nope.toml", "--calib-sharp", calibrated / "cal" / "sharp.toml"]) == 2
    err = capsys.readouterr().err
    assert "nope.toml" in err and "--no-color-correction" in err
    assert run(["develop", "--raw-pairs", raw, "--out", tmp_path / "o3", "--quiet", "--no-color-correction",
                "--calib-blur", calibrated / "cal" / "blur.toml"]) == 2
    assert "--calib-blur given with --no-color-correction" in capsys.readouterr().err
    assert not any((tmp_path / o).exists() and any((tmp_path / o).iterdir()) for o in ("o1", "o2", "o3"))


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_compiled_demosaics_equal_colour_demosaicing(pattern):
    """The compiled (numba) and the numpy Menon and bilinear demosaics are colour-demosaicing's float32
    computations bit for bit (odd sizes, borders, negative noise, Menon with and without the refining step)."""
    from colour.utilities import set_default_float_dtype
    from colour_demosaicing import demosaicing_CFA_Bayer_bilinear, demosaicing_CFA_Bayer_Menon2007

    from lodetools.color.isp import demosaic

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:37, :50]
    cfa = (0.5 + 0.4 * np.sin(xx / 3.0) * np.cos(yy / 4.0) + rng.normal(0, 0.05, xx.shape)).astype(np.float32)
    for refining in (True, False):
        set_default_float_dtype(np.float32)
        try:
            ref = demosaicing_CFA_Bayer_Menon2007(cfa, pattern, refining_step=refining)
        finally:
            set_default_float_dtype(np.float64)
        for engine in ("numba", "numpy"):
            ours = demosaic(cfa, pattern, refining_step=refining, engine=engine)
            assert ours.dtype == np.float32 and ours.shape == (37, 50, 3)
            np.testing.assert_array_equal(ours, ref)
    set_default_float_dtype(np.float32)
    try:
        ref = demosaicing_CFA_Bayer_bilinear(cfa, pattern)
    finally:
        set_default_float_dtype(np.float64)
    for engine in ("numba", "numpy"):
        np.testing.assert_array_equal(demosaic(cfa, pattern, method="bilinear", engine=engine), ref)


def test_shipped_calibrations_by_name(tmp_path, capsys):
    """``--calib-blur sim-blur``: the shipped calibrations of the demo rig's cameras (seed 0, 320x240)."""
    from importlib.resources import files

    from lodetools.io.manifest import read_dataset_json

    raw = tmp_path / "raw"
    rig.write_rig(raw, seed=0, preset="test", size=(240, 320), scenes=1, captures=1)
    args = ["develop", "--raw-pairs", raw, "--quiet", "--no-refining-step"]
    assert run([*args, "--out", tmp_path / "o", "--calib-blur", "sim-blur", "--calib-sharp", "sim-sharp"]) == 0
    (q,) = [json.loads(line) for line in (tmp_path / "o" / "qa.jsonl").read_text().splitlines()]
    assert q["delta_l_after"]["smoothed"] <= 0.01 < 0.02 <= q["delta_l_before"]["smoothed"]  # the cast is removed
    params = read_dataset_json(tmp_path / "o")["parameters"]
    shipped = files("lodetools") / "calibration" / "sim-blur.toml"
    assert params["calib_blur"] == str(shipped)
    assert params["calib_blur_sha256"] == hashlib.sha256(shipped.read_bytes()).hexdigest()
    capsys.readouterr()
    assert run([*args, "--out", tmp_path / "o2", "--calib-blur", "sim-blurr", "--calib-sharp", "sim-sharp"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sim-blurr" in err and "shipped calibrations: sim-blur, sim-sharp" in err
    assert not (tmp_path / "o2").exists() or not any((tmp_path / "o2").iterdir())


def test_bad_rig_toml_or_calibration_size_fail_naming_the_file(calibrated, tmp_path, capsys):
    """A bad rig.toml fails before anything is written, also without colour correction; a calibration
    made for another image size names the RAW file and the camera."""
    raw = tmp_path / "raw"
    shutil.copytree(calibrated / "raw", raw)
    (raw / "rig.toml").write_text("x = [\n")
    assert run(["develop", "--raw-pairs", raw, "--out", tmp_path / "o1", "--quiet", "--no-color-correction"]) == 2
    assert "rig.toml" in capsys.readouterr().err
    assert not (tmp_path / "o1").exists()
    assert run(["develop", "--raw-pairs", calibrated / "raw", "--out", tmp_path / "o2", "--quiet",
                "--calib-blur", "sim-blur", "--calib-sharp", "sim-sharp"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "calibration is for 320x240 images" in err and "camera's calibration" in err
    assert ".dng" in err
