"""Metrics against scikit-image, hand-computed cases, and the torch versions."""

import cv2
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lodetools.metrics import aligned_metrics, delta_l, psnr, ssim, weighted_psnr, weighted_ssim
from lodetools.metrics.batched import (psnr_batch, ssim_batch, weighted_psnr_batch,
                                       weighted_ssim_batch)
from lodetools.sim.photos import photo


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    gt = photo("astronaut")[100:164, 120:216].copy()
    pred = np.clip(gt + rng.normal(0, 0.04, gt.shape) + 0.02, 0, 1).astype(np.float32)
    return pred, gt


def q(x):
    return np.floor(np.clip(x, 0, 1) * 255 + 0.5)


def t(x):
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]


def test_psnr_equals_skimage(pair):
    pred, gt = pair
    assert abs(psnr(pred, gt) - peak_signal_noise_ratio(q(gt), q(pred), data_range=255)) < 1e-6
    assert abs(psnr(pred, gt, mode="float") - peak_signal_noise_ratio(
        gt.astype(np.float64), pred.astype(np.float64), data_range=1)) < 1e-6


def test_ssim_equals_skimage_gaussian(pair):
    pred, gt = pair
    ref = structural_similarity(q(gt), q(pred), gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=255, channel_axis=2)
    assert abs(ssim(pred, gt) - ref) < 1e-6
    ref_f = structural_similarity(gt.astype(np.float64) * 255, pred.astype(np.float64) * 255,
                                  gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                  data_range=255, channel_axis=2)
    assert abs(ssim(pred, gt, mode="float") - ref_f) < 1e-6


def test_identical_images():
    x = photo("coffee")[:32, :40]
    assert psnr(x, x) == float("inf")
    assert ssim(x, x) == pytest.approx(1.0)
    assert weighted_psnr(x, x, np.ones(x.shape[:2])) == float("inf")


def test_weighted_psnr_hand_computed():
    gt = np.zeros((2, 2, 3))
    pred = np.zeros((2, 2, 3))
    pred[0, 0] = [51 / 255, 0, 0]        # one masked pixel off by 0.2 in one channel
    pred[1, 1] = [1, 1, 1]               # an unmasked pixel far off: ignored
    mask = np.array([[1, 1], [0, 0]])
    # sum(m d^2) = 0.04 ; sum(m) = 2 ; / 3 channels -> mse = 0.04 / 6
    assert weighted_psnr(pred, gt, mask) == pytest.approx(10 * np.log10(6 / 0.04))
    assert np.isnan(weighted_psnr(pred, gt, np.zeros((2, 2))))


def test_weighted_with_all_ones_mask_equals_plain(pair):
    pred, gt = pair
    ones = np.ones(gt.shape[:2])
    assert weighted_psnr(pred, gt, ones) == pytest.approx(psnr(pred, gt), abs=1e-9)
    assert weighted_ssim(pred, gt, ones) == pytest.approx(ssim(pred, gt), abs=1e-12)


def test_weighted_ssim_only_sees_masked_region(pair):
    pred, gt = pair
    mask = np.zeros(gt.shape[:2])
    mask[20:40, 30:60] = 1
    spoiled = pred.copy()
    spoiled[:, :10] = 0  # far from the mask (more than the 5 px window radius)
    assert weighted_ssim(spoiled, gt, mask) == pytest.approx(weighted_ssim(pred, gt, mask))
    assert weighted_psnr(spoiled, gt, mask) == pytest.approx(weighted_psnr(pred, gt, mask))


def test_delta_l_hand_computed():
    sharp = np.array([[1.0, 2.0], [3.0, 4.0]])
    blur = np.array([[1.0, 1.0], [3.0, 5.0]])
    assert delta_l(sharp, blur) == pytest.approx((0 + 1 + 0 + 1) / 10)


def test_aligned_psnr_recovers_known_homography():
    gt = photo("astronaut")[60:188, 60:252].copy()
    h, w = gt.shape[:2]
    hom = np.array([[1.01, 0.004, 1.6], [-0.003, 0.995, -1.2], [1e-5, 0, 1]], np.float64)
    pred = cv2.warpPerspective(gt, hom, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    pred = np.clip(pred * 0.93, 0, 1)  # an exposure difference the scaling step removes
    res = aligned_metrics(pred, gt)
    assert res["converged"]
    assert res["psnr"] >= psnr(pred, gt) + 10
    assert res["ssim"] > ssim(pred, gt)


def test_torch_versions_agree(pair):
    pred, gt = pair
    mask = np.zeros(gt.shape[:2], np.float32)
    mask[10:50, 20:70] = 1
    tp, tg, tm = t(pred), t(gt), torch.from_numpy(mask)[None, None]
    assert abs(psnr_batch(tp, tg).item() - psnr(pred, gt)) < 1e-4
    assert abs(ssim_batch(tp, tg).item() - ssim(pred, gt)) < 1e-6
    assert abs(weighted_psnr_batch(tp, tg, tm).item() - weighted_psnr(pred, gt, mask)) < 1e-4
    assert abs(weighted_ssim_batch(tp, tg, tm).item() - weighted_ssim(pred, gt, mask)) < 1e-6
    assert abs(psnr_batch(tp, tg, quantize=False).item() - psnr(pred, gt, mode="float")) < 1e-4
    batch = psnr_batch(torch.cat([tp, tg]), torch.cat([tg, tg]))
    assert batch.shape == (2,) and torch.isinf(batch[1])


def test_image_scores_equal_the_single_metrics(pair):
    """One quantisation and one SSIM map give the values of psnr/ssim/weighted_* called one by one."""
    from lodetools.io.images import float_to_uint
    from lodetools.metrics import image_scores

    pred, gt = pair
    mask = np.zeros(gt.shape[:2], bool)
    mask[10:40, 20:70] = True
    ref = {"psnr": psnr(pred, gt), "ssim": ssim(pred, gt), "psnrw": weighted_psnr(pred, gt, mask),
           "ssimw": weighted_ssim(pred, gt, mask)}
    assert image_scores(pred, gt, mask) == ref
    # 8-bit images as stored (what eval reads) score exactly as their float32 decodings
    p8, g8 = float_to_uint(pred), float_to_uint(gt)
    assert image_scores(p8, g8, mask) == image_scores(p8 / np.float32(255), g8 / np.float32(255), mask)
    assert image_scores(p8, g8, mask) == ref
    out = image_scores(pred, gt, None, ("ssimw", "psnr"))
    assert list(out) == ["ssimw", "psnr"] and np.isnan(out["ssimw"]) and out["psnr"] == ref["psnr"]
    with pytest.raises(ValueError):
        image_scores(pred, gt, mask, ("psnra",))
