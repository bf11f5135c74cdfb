"""Deformable convolution against a direct loop-based DCNv2 reference."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lodetools.nets.deform import (DeformConv2d, ModulatedDeformConvPack, deform_conv2d,
                                   deform_conv2d_torch)

torch.set_num_threads(1)


def _bilinear_zero(img, y, x):
    """Bilinear sample of img (H, W) at (y, x); pixels outside the image are 0."""
    H, W = img.shape
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    val = 0.0
    for yy in (y0, y0 + 1):
        for xx in (x0, x0 + 1):
            if 0 <= yy < H and 0 <= xx < W:
                val += (1 - abs(y - yy)) * (1 - abs(x - xx)) * img[yy, xx]
    return val


def reference_dcn(x, offset, weight, bias, stride, padding, dilation, mask):
    """DCNv2 (Zhu et al. 2019, Eq. (3)) by explicit loops, numpy float64."""
    B, C, H, W = x.shape
    Cout, Cg, kh, kw = weight.shape
    K = kh * kw
    Gw = C // Cg
    G = offset.shape[1] // (2 * K)
    Ho, Wo = offset.shape[2:]
    out = np.zeros((B, Cout, Ho, Wo))
    for b in range(B):
        for o in range(Cout):
            gw = o // (Cout // Gw)
            for yo in range(Ho):
                for xo in range(Wo):
                    acc = bias[o] if bias is not None else 0.0
                    for ci in range(Cg):
                        c = gw * Cg + ci
                        g = c // (C // G)
                        for i in range(kh):
                            for j in range(kw):
                                k = i * kw + j
                                dy = offset[b, g * 2 * K + 2 * k, yo, xo]
                                dx = offset[b, g * 2 * K + 2 * k + 1, yo, xo]
                                m = 1.0 if mask is None else mask[b, g * K + k, yo, xo]
                                py = yo * stride - padding + i * dilation + dy
                                px = xo * stride - padding + j * dilation + dx
                                acc += weight[o, ci, i, j] * m * _bilinear_zero(x[b, c], py, px)
                    out[b, o, yo, xo] = acc
    return out


CASES = [  # (C_in, C_out, k, stride, padding, dilation, groups, offset_groups, H, W)
    (2, 3, 3, 1, 1, 1, 1, 1, 5, 6),
    (4, 2, 3, 2, 1, 1, 2, 2, 7, 6),
    (2, 2, 3, 1, 2, 2, 1, 2, 5, 5),
    (3, 2, 2, 1, 0, 1, 1, 1, 4, 5),
    (1, 2, 3, 1, 1, 1, 1, 1, 1, 4),  # a single row: needs the zero border
]


@pytest.mark.parametrize("case", CASES)
def test_matches_loop_reference_with_outside_samples(case):
    Cin, Cout, k, s, p, d, g, og, H, W = case
    rng = np.random.default_rng(sum(case))
    Ho = (H + 2 * p - d * (k - 1) - 1) // s + 1
    Wo = (W + 2 * p - d * (k - 1) - 1) // s + 1
    x = rng.standard_normal((2, Cin, H, W))
    # offsets up to +-3 px: many taps land partly or wholly outside the image
    offset = rng.uniform(-3, 3, (2, 2 * og * k * k, Ho, Wo))
    mask = rng.uniform(0, 1, (2, og * k * k, Ho, Wo))
    weight = rng.standard_normal((Cout, Cin // g, k, k))
    bias = rng.standard_normal(Cout)
    ref = reference_dcn(x, offset, weight, bias, s, p, d, mask)
    t = lambda a: torch.from_numpy(a)
    got = deform_conv2d_torch(t(x), t(offset), t(weight), t(bias), s, p, d, t(mask))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-9, atol=1e-9)
    # float32 path (the one networks use) within single precision
    got32 = deform_conv2d(t(x).float(), t(offset).float(), t(weight).float(),
                          t(bias).float(), s, p, d, t(mask).float())
    np.testing.assert_allclose(got32.numpy(), ref, rtol=1e-4, atol=1e-4)


def test_samples_fully_outside_give_bias_only():
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    offset = torch.full((1, 18, 4, 4), 50.0, dtype=torch.float64)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64)
    out = deform_conv2d_torch(x, offset, w, b, 1, 1, 1, None)
    assert torch.allclose(out, b.view(1, 3, 1, 1).expand_as(out))


def test_zero_offset_unit_mask_equals_conv2d():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 8, dtype=torch.float64)
    w = torch.randn(6, 2, 3, 3, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    for s, p, d in [(1, 1, 1), (2, 1, 1), (1, 2, 2)]:
        ref = F.conv2d(x, w, b, s, p, d, groups=2)
        off = torch.zeros(2, 18, *ref.shape[-2:], dtype=torch.float64)
        got = deform_conv2d_torch(x, off, w, b, s, p, d, torch.ones(2, 9, *ref.shape[-2:],
                                                                      dtype=torch.float64))
        assert torch.allclose(got, ref, atol=1e-10)


def test_gradcheck_float64():
    torch.manual_seed(1)
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    # non-integer offsets keep every sample off the bilinear kinks
    offset = (torch.rand(1, 18, 4, 5, dtype=torch.float64) * 2.6 - 1.3 + 0.05).requires_grad_()
    mask = torch.rand(1, 9, 4, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    fn = lambda *a: deform_conv2d_torch(a[0], a[1], a[2], a[3], 1, 1, 1, a[4])
    assert torch.autograd.gradcheck(fn, (x, offset, w, b, mask), eps=1e-6, atol=1e-5)


def test_pack_starts_as_half_masked_conv_and_learns_offsets():
    torch.manual_seed(2)
    layer = ModulatedDeformConvPack(3, 4, 3, offset_dilation=2).double()
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    ref = F.conv2d(x, layer.weight * 0.5, layer.bias, padding=1)
    assert torch.allclose(layer(x), ref, atol=1e-10)
    layer(x).square().sum().backward()
    assert layer.conv_offset.weight.grad.abs().sum() > 0
    zero = ModulatedDeformConvPack(3, 4, 3, zero_offset=True)
    assert zero.conv_offset.out_channels == 9
    assert zero(torch.randn(1, 3, 8, 8)).shape == (1, 4, 8, 8)


def test_bad_shapes_raise():
    x = torch.randn(1, 2, 5, 5)
    w = torch.randn(3, 2, 3, 3)
    with pytest.raises(ValueError):
        deform_conv2d_torch(x, torch.zeros(1, 18, 4, 4), w, padding=1)
    with pytest.raises(ValueError):
        deform_conv2d_torch(x, torch.zeros(1, 18, 5, 5), w, padding=1, mask=torch.ones(1, 8, 5, 5))
    with pytest.raises(ValueError):
        DeformConv2d(3, 4, groups=2)


def test_row_chunking_gives_identical_results(monkeypatch):
    import lodetools.nets.deform as dm
    torch.manual_seed(3)
    x = torch.randn(1, 3, 11, 7, dtype=torch.float64)
    off = torch.randn(1, 18, 6, 4, dtype=torch.float64) * 2
    mask = torch.rand(1, 9, 6, 4, dtype=torch.float64)
    w = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    whole = dm.deform_conv2d_torch(x, off, w, None, 2, 1, 1, mask)
    monkeypatch.setattr(dm, "_COLS_BUDGET", 1)  # one output row at a time
    chunked = dm.deform_conv2d_torch(x, off, w, None, 2, 1, 1, mask)
    assert torch.allclose(chunked, whole, atol=1e-12)


def test_half_precision_input_samples_in_float32():
    """bfloat16 features at x ~ 1500 px: coordinates must not be rounded to bfloat16."""
    torch.manual_seed(4)
    x = torch.randn(1, 1, 2, 1600)
    off = torch.full((1, 2, 2, 1600), 0.3)  # 1x1 kernel: sample at (y + 0.3, x + 0.3)
    w = torch.ones(1, 1, 1, 1)
    ref = deform_conv2d_torch(x.double(), off.double(), w.double())
    got = deform_conv2d_torch(x.bfloat16(), off.bfloat16(), w.bfloat16())
    assert got.dtype == torch.bfloat16
    # error of bfloat16 rounding of the values only (not of the coordinates)
    assert (got.double() - ref).abs().max() < 0.05
