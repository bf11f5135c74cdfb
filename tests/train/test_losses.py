"""Losses against hand-computed values and scikit-image."""

import math

import numpy as np
import pytest
import torch

from lodetools.train import losses

torch.set_num_threads(1)


def test_l1_mse_hand_values():
    pred = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).view(1, 1, 2, 2)
    zero = torch.zeros_like(pred)
    assert losses.l1_loss(pred, zero).item() == pytest.approx(1.5)
    assert losses.mse_loss(pred, zero).item() == pytest.approx(3.5)      # (0+1+4+9)/4
    two = torch.cat([pred, zero])
    assert losses.l1_loss(two, zero.expand(2, -1, -1, -1), reduction="none").tolist() == [1.5, 0.0]


def test_ssim_constant_images_hand_value():
    a, b = 0.3, 0.6
    x = torch.full((1, 3, 16, 16), a, dtype=torch.float64)
    y = torch.full((1, 3, 16, 16), b, dtype=torch.float64)
    c1 = 0.01 ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)                   # sigma terms vanish
    assert losses.ssim(x, y).item() == pytest.approx(expected, rel=1e-9)
    assert losses.ssim(x.float(), y.float()).item() == pytest.approx(expected, abs=1e-4)  # float32
    assert losses.ssim_loss(x, x).item() == pytest.approx(-1.0, abs=1e-6)


def test_ssim_matches_skimage_gaussian_valid():
    from skimage.metrics import structural_similarity
    rng = np.random.default_rng(0)
    x = rng.random((40, 52, 3))
    y = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1)
    ref = structural_similarity(x, y, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=1.0)
    t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None]   # noqa: E731
    assert losses.ssim(t(x), t(y)).item() == pytest.approx(ref, abs=1e-9)
    assert losses.ssim(t(x).float(), t(y).float()).item() == pytest.approx(ref, abs=1e-4)


def test_ssim_is_differentiable():
    x = torch.rand(1, 3, 24, 24, requires_grad=True)
    losses.ssim_loss(x, torch.rand(1, 3, 24, 24)).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_fft_l1_of_a_delta():
    # the rfft2 of a unit delta at (0, 0) is 1 + 0j everywhere: modulus 1; mean |re| and |im| = (1 + 0) / 2
    d = torch.zeros(1, 1, 8, 10)
    d[..., 0, 0] = 1
    assert losses.fft_l1_loss(d, torch.zeros_like(d)).item() == pytest.approx(1.0)
    assert losses.fft_l1_loss(d, torch.zeros_like(d), form="parts").item() == pytest.approx(0.5)


def test_fft_l1_is_the_mean_complex_modulus_on_2x2():
    # x = [[1, 2], [3, 4]]: rfft2 (2 x 2 one-sided) = [[10, -2], [-4, 0]], all real;
    # y = [[0, 1], [0, 0]]: rfft2 = [[1, -1], [1, -1]]. Difference [[9, -1], [-5, 1]]: modulus mean 4
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    y = torch.tensor([[0.0, 1.0], [0.0, 0.0]]).view(1, 1, 2, 2)
    assert losses.fft_l1_loss(x, y).item() == pytest.approx((9 + 1 + 5 + 1) / 4)
    # a complex case: a 1 x 3 row [0, 1, 0] has rfft [1, -1/2 - i sqrt(3)/2]: moduli 1, 1 -> 1;
    # as parts: (1 + 0 + 1/2 + sqrt(3)/2) / 4
    r = torch.tensor([0.0, 1.0, 0.0]).view(1, 1, 1, 3)
    assert losses.fft_l1_loss(r, torch.zeros_like(r)).item() == pytest.approx(1.0, abs=1e-6)
    assert losses.fft_l1_loss(r, torch.zeros_like(r), form="parts").item() == pytest.approx(
        (1 + 0.5 + 3 ** 0.5 / 2) / 4, abs=1e-6)


def test_dice_hand_value():
    # official (LODE code): 1 - sum(p t) / sum(p + t) over the batch; paper Eq. (4): factor 2, per image
    p = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    t = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 1, 2, 2)
    assert losses.dice_loss(p, t).item() == pytest.approx(1 - 1 / 4, abs=1e-6)
    assert losses.dice_loss(p, t, form="paper").item() == pytest.approx(1 - 2 * 1 / (2 + 2), abs=1e-6)
    assert losses.dice_loss(t, t).item() == pytest.approx(0.5, abs=1e-6)     # no factor 2: 1 - 2/4
    assert losses.dice_loss(t, t, form="paper").item() == pytest.approx(0.0, abs=1e-6)


def test_dice_official_is_batch_wide_paper_is_per_image():
    # image 1: p = t = one pixel; image 2: p has 3 pixels, t 1 of them
    p = torch.zeros(2, 1, 2, 2)
    t = torch.zeros(2, 1, 2, 2)
    p[0, 0, 0, 0] = t[0, 0, 0, 0] = 1
    p[1, 0].view(-1)[:3] = 1
    t[1, 0, 0, 0] = 1
    # batch-wide: sum(p t) = 2, sum(p + t) = 4 + 2 = 6 -> 1 - 2/6
    assert losses.dice_loss(p, t).item() == pytest.approx(1 - 2 / 6, abs=1e-6)
    # per image: 1 - 2/2 = 0 and 1 - 2/4 = 0.5 -> mean 0.25
    assert losses.dice_loss(p, t, form="paper").item() == pytest.approx(0.25, abs=1e-5)


def test_reflect_shifts_and_per_image_min():
    g = torch.arange(9.0).view(1, 1, 3, 3)
    s = losses.reflect_shifts(g, 1)
    assert s.shape == (9, 1, 3, 3)
    # shift (dx, dy) = (1, 0) is index 5 (dy outer, dx inner): content moves right, border reflected
    assert s[5, 0].tolist() == [[1, 0, 1], [4, 3, 4], [7, 6, 7]]
    assert torch.equal(s[4], g[0])                                     # (0, 0)
    # per-image minimum, then the mean, differs from the minimum of the batch mean:
    # image 1 losses over 3 shifts (1, 5, 9), image 2 (6, 2, 9)
    per = torch.tensor([1.0, 5.0, 9.0, 6.0, 2.0, 9.0])
    assert losses.min_per_image(per, 3).item() == pytest.approx((1 + 2) / 2)
    assert losses.min_over_shifts(torch.tensor([1.0, 6.0, 5.0, 2.0, 9.0, 9.0]), 3).item() == pytest.approx(3.5)


def test_cross_entropy_and_bce_hand_values():
    mask = torch.ones(1, 1, 2, 2)
    assert losses.cross_entropy_loss(torch.zeros(1, 2, 2, 2), mask).item() == pytest.approx(math.log(2))
    logits = torch.zeros(1, 2, 2, 2)
    logits[:, 1] = math.log(3)                                           # p(blurred) = 3/4
    assert losses.cross_entropy_loss(logits, mask).item() == pytest.approx(-math.log(0.75), rel=1e-6)
    assert losses.bce_loss(torch.zeros(1, 1, 2, 2), mask).item() == pytest.approx(math.log(2))


def test_shift_invariant_forgives_one_pixel_shift():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 20, 24, generator=g)
    pred = torch.roll(target, shifts=(1, -1), dims=(2, 3))                # misaligned by (1, -1) px
    assert losses.l1_loss(pred, target).item() > 0.1
    assert losses.shift_invariant(losses.l1_loss, pred, target).item() == pytest.approx(0.0, abs=1e-7)
    assert losses.shift_invariant(losses.ssim_loss, pred, target).item() == pytest.approx(-1.0, abs=1e-5)
    # a 2-px shift is not forgiven: the minimum equals the best of the 9 interior comparisons
    far = torch.roll(target, shifts=(2, 0), dims=(2, 3))
    direct = min(losses.l1_loss(far[..., 1:-1, 1:-1], target[..., 1 + l:19 + l, 1 + k:23 + k]).item()
                 for l in (-1, 0, 1) for k in (-1, 0, 1))
    assert losses.shift_invariant(losses.l1_loss, far, target).item() == pytest.approx(direct, rel=1e-6)
    assert direct > 0.05
