"""Colour correction (ReLoBlur Eqs. (3)-(5)) and photometric beta (Eqs. (6)-(7)) against the rig's truth."""

import numpy as np
import pytest

from lodetools.color import correction as cc
from lodetools.color.photometric import apply_beta, estimate_beta, quad_channels, register_quads
from lodetools.errors import BadConfig
from lodetools.io.bayer import channel_map
from lodetools.io.calibration import read_calibration, write_calibration
from lodetools.io.raw import read_raw
from lodetools.sim import rig

#: accuracy tests need more pixels than the 64x96 frames of the other tests:
#: the static-region means and the patch fits converge with the image area
ACC_SIZE = (128, 192)


@pytest.fixture(scope="module")
def acc_rig(tmp_path_factory):
    out = tmp_path_factory.mktemp("accrig")
    rig.write_rig(out, seed=0, preset="test", size=ACC_SIZE, scenes=2, captures=2)
    return out


def test_eval_poly_by_hand():
    a = np.arange(1.0, 11.0)  # x^3, x^2y, xy^2, y^3, x^2, xy, y^2, x, y, 1
    x, y = 0.5, -1.0
    hand = 1 * x**3 + 2 * x * x * y + 3 * x * y * y + 4 * y**3 + 5 * x * x + 6 * x * y + 7 * y * y \
        + 8 * x + 9 * y + 10
    assert cc.eval_poly(a, x, y) == pytest.approx(hand)
    img = cc.poly_image(a, (5, 7))
    norm = cc.normalisation((5, 7))
    assert img[4, 0] == pytest.approx(cc.eval_poly(a, (0 - norm["cx"]) / norm["sx"], (4 - norm["cy"]) / norm["sy"]))


def test_fit_recovers_exact_polynomial():
    rng = np.random.default_rng(0)
    shape = (48, 64)
    coeffs = np.zeros((3, 10))
    coeffs[:, :9] = rng.uniform(-0.03, 0.03, (3, 9))
    coeffs[:, 9] = 1.0
    frame = 0.5 * cc.cast_bayer(coeffs, shape, "GRBG")
    fit = cc.fit_cast(frame, "GRBG", (8, 6))
    # a patch mean of a cubic is not the cubic at the patch centre: compare the shapes
    for c in range(3):
        g = cc.poly_image(fit.coeffs[c], shape)
        t = cc.poly_image(coeffs[c], shape)
        np.testing.assert_allclose(g / g.mean(), t / t.mean(), rtol=2e-3)
    flat = cc.correct_bayer(frame, fit)
    assert np.ptp(flat) / flat.max() < 5e-3


@pytest.mark.parametrize("camera", ["blur", "sharp"])
def test_fit_matches_true_cast_and_flattens_lightbox(acc_rig, camera):
    truth = rig.read_truth(acc_rig)
    h, w = truth["size"]
    frame = read_raw(acc_rig / f"lightbox_{camera}.dng")
    fit = cc.fit_cast(frame.bayer, frame.pattern, (16, 12))
    for c in range(3):
        g = cc.poly_image(fit.coeffs[c], (h, w), fit.norm)
        t = rig.true_cast(truth, camera, c)
        ratio = (g / g[h // 2, w // 2]) / (t / t[h // 2, w // 2])
        assert np.abs(ratio - 1).max() < 0.005, (camera, c, np.abs(ratio - 1).max())
    assert fit.nonuniformity_before.min() >= 0.10
    assert fit.nonuniformity_after.max() <= 0.01
    # and the correction applied per pixel flattens the frame (patch means)
    means, _, _ = cc.patch_means(cc.correct_bayer(frame.bayer, fit, frame.pattern), frame.pattern, (16, 12))
    assert cc.nonuniformity(means).max() <= 0.01


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_all_bayer_patterns(tmp_path, pattern):
    rig.write_rig(tmp_path, seed=1, preset="test", size=(96, 128), captures=0, pattern=pattern)
    truth = rig.read_truth(tmp_path)
    frame = read_raw(tmp_path / "lightbox_sharp.dng")
    assert frame.pattern == pattern
    fit = cc.fit_cast(frame.bayer, frame.pattern, (16, 12))
    h, w = truth["size"]
    for c in range(3):
        g = cc.poly_image(fit.coeffs[c], (h, w))
        t = rig.true_cast(truth, "sharp", c)
        assert np.abs((g / g[h // 2, w // 2]) / (t / t[h // 2, w // 2]) - 1).max() < 0.005
    assert fit.nonuniformity_after.max() <= 0.01 < 0.10 <= fit.nonuniformity_before.min()


def test_calibration_file_round_trip_and_checks(tmp_path, acc_rig):
    frame = read_raw(acc_rig / "lightbox_blur.dng")
    fit = cc.fit_cast(frame.bayer, frame.pattern, (16, 12))
    p = tmp_path / "cam.toml"
    write_calibration(p, fit, camera="cam", provenance={"lightbox": "x"})
    back = read_calibration(p)
    np.testing.assert_array_equal(back.coeffs, fit.coeffs)
    assert back.shape == fit.shape and back.pattern == fit.pattern and back.norm == fit.norm
    np.testing.assert_array_equal(cc.correct_bayer(frame.bayer, back), cc.correct_bayer(frame.bayer, fit))
    with pytest.raises(BadConfig, match="calibration is for 192x128"):
        cc.correct_bayer(frame.bayer[:64, :96], back)
    with pytest.raises(BadConfig, match="CFA"):
        cc.correct_bayer(frame.bayer, back, "BGGR")
    bad = tmp_path / "bad.toml"
    bad.write_text("camera = 'x'\n")
    with pytest.raises(BadConfig):
        read_calibration(bad)


def test_beta_static_within_half_percent(acc_rig):
    truth = rig.read_truth(acc_rig)
    true_beta = np.array(truth["beta"])
    fits = {c: (lambda f: cc.fit_cast(f.bayer, f.pattern))(read_raw(acc_rig / f"lightbox_{c}.dng"))
            for c in ("blur", "sharp")}
    err = {"static": [], "full": []}
    for scene, spec in truth["scenes"].items():
        warp = None  # registered once per scene on its static reference pair, as develop does
        for cid in ["reference", *spec["captures"]]:
            b = read_raw(acc_rig / scene / f"{cid}_blur.dng")
            s = read_raw(acc_rig / scene / f"{cid}_sharp.dng")
            cb, cs = cc.correct_bayer(b.bayer, fits["blur"]), cc.correct_bayer(s.bayer, fits["sharp"])
            if warp is None:
                warp = register_quads(quad_channels(cb, b.pattern), quad_channels(cs, s.pattern))
            for region in err:
                beta, _ = estimate_beta(cb, cs, b.pattern, region=region, warp=warp,
                                        saturated=b.saturated | s.saturated)
                err[region].append(np.abs(beta / true_beta - 1).max())
    assert max(err["static"]) <= 0.005, err
    # the paper's whole-image means are biased by misalignment and moving objects
    assert np.mean(err["full"]) > 2 * np.mean(err["static"])


def test_apply_beta_by_channel():
    bayer = np.ones((4, 4), np.float32)
    out = apply_beta(bayer, [2.0, 3.0, 5.0], "GBRG")
    np.testing.assert_array_equal(out[:2, :2], [[3, 5], [2, 3]])


def test_isp_steps_against_references():
    import colour
    from colour_demosaicing import demosaicing_CFA_Bayer_Menon2007

    from lodetools.color.isp import apply_matrix, demosaic, encode_gamma, white_balance_from_patch

    x = np.linspace(0, 1, 301, dtype=np.float32)
    np.testing.assert_allclose(encode_gamma(x), colour.models.eotf_inverse_sRGB(x.astype(np.float64)), atol=1e-6)
    np.testing.assert_allclose(encode_gamma(x, "2.2"), x ** (1 / 2.2), atol=1e-6)
    rng = np.random.default_rng(0)
    cfa = rng.random((24, 32))
    ours = demosaic(cfa, "GBRG")  # float32 inside colour-science
    np.testing.assert_allclose(ours, demosaicing_CFA_Bayer_Menon2007(cfa, "GBRG"), atol=1e-5)
    assert colour.constants.DTYPE_FLOAT_DEFAULT == np.float64  # restored after the float32 run
    m = rng.random((3, 3))
    img = rng.random((5, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(apply_matrix(img, m), np.einsum("ij,hwj->hwi", m, img), rtol=1e-5)
    board = cc.cast_bayer(np.tile([0, 0, 0, 0, 0, 0, 0, 0, 0, 1.0], (3, 1)), (20, 20), "RGGB")
    board *= np.array([0.4, 0.8, 0.5])[channel_map((20, 20), "RGGB")]
    np.testing.assert_allclose(white_balance_from_patch(board, "RGGB"), [2.0, 1.0, 1.6])


def test_register_quads_recovers_large_and_small_shifts():
    import cv2

    from lodetools.sim.photos import linear_photo

    big = linear_photo("astronaut", (160, 200))
    img = big[20:140, 20:180]
    for dx, dy in [(9.0, -6.0), (0.7, 0.4)]:
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        moved = cv2.warpAffine(big, m, (200, 160))[20:140, 20:180]  # moved(p + d) = img(p)
        w = register_quads(moved, img)
        assert abs(w[0, 2] - dx) < 0.1 and abs(w[1, 2] - dy) < 0.1, w
