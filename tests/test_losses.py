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
    # the rfft2 of a unit delta at (0, 0) is 1 + 0j everywhere: mean |re| and |im| = (1 + 0) / 2
    d = torch.zeros(1, 1, 8, 10)
    d[..., 0, 0] = 1
    assert losses.fft_l1_loss(d, torch.zeros_like(d)).item() == pytest.approx(0.5)


def test_dice_hand_value():
    p = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    t = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 1, 2, 2)
    assert losses.dice_loss(p, t).item() == pytest.approx(1 - 2 * 1 / (2 + 2), abs=1e-6)
    assert losses.dice_loss(t, t).item() == pytest.approx(0.0, abs=1e-6)


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
