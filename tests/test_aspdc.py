"""ASPDC deblurring and reblurring networks."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

from lodetools.nets import build
from lodetools.nets.aspdc import (ASPDCModule, DynamicFilter, build_aspdc, build_reblur,
                                  consistency_loss)

torch.set_num_threads(1)


def _count(model):
    return sum(p.numel() for p in model.parameters())


def test_full_size_parameter_counts_match_authors_code():
    with torch.device("meta"):
        deblur, reblur = build_aspdc(), build_reblur()
    # reference notes: 15,016,503 and 998,802 parameters in the official code
    assert abs(_count(deblur) - 15_016_503) / 15_016_503 < 0.01
    assert abs(_count(reblur) - 998_802) / 998_802 < 0.01
    assert sum(isinstance(m, ASPDCModule) for m in deblur.modules()) == 6


def test_aspdc_module_equations_3_4_at_init():
    """Zero-initialised predictors: each branch is conv(r, 0.5 * w_i); Eq. (3) fuses them."""
    torch.manual_seed(0)
    m = ASPDCModule(4).double()
    x = torch.randn(1, 4, 12, 12, dtype=torch.float64)
    out = m(x)
    a = m.last_attention
    assert torch.allclose(a.sum(1), torch.ones_like(a[:, 0]))  # Eq. (4)
    r = F.leaky_relu(F.conv2d(x, m.res_conv[0].weight, m.res_conv[0].bias, padding=1), 0.1)
    fo = sum(a[:, i:i + 1] * F.conv2d(r, b.weight * 0.5, b.bias, padding=1)
             for i, b in enumerate(m.branches))  # Eq. (3)
    ref = F.conv2d(fo, m.fusion.weight, m.fusion.bias, padding=1) + x
    assert torch.allclose(out, ref, atol=1e-10)
    # branch 1 predicts masks only, padded to the feature size (the repo's bug fixed)
    assert m.branches[0].zero_offset and m.branches[0].conv_offset.padding == (1, 1)
    assert [b.conv_offset.dilation[0] for b in m.branches[1:]] == [1, 2, 4]


def test_dynamic_filter_uniform_is_reflect_box_blur_and_loop_reference():
    torch.manual_seed(1)
    x = torch.randn(1, 2, 7, 9, dtype=torch.float64)
    f = DynamicFilter(3)
    box = f(x, torch.zeros(1, 9, 7, 9, dtype=torch.float64)).numpy()
    # torch "reflect" is scipy "mirror" (edge pixel not repeated)
    ref = ndi.uniform_filter(x.numpy(), size=(1, 1, 3, 3), mode="mirror")
    np.testing.assert_allclose(box, ref, atol=1e-12)
    logits = torch.randn(1, 9, 7, 9, dtype=torch.float64)
    k = torch.softmax(logits, 1).numpy()
    xp = np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    loop = np.zeros_like(box)
    for t in range(9):
        i, j = divmod(t, 3)
        loop += k[:, t:t + 1] * xp[:, :, i:i + 7, j:j + 9]
    np.testing.assert_allclose(f(x, logits).numpy(), loop, atol=1e-12)


def test_tiny_networks_forward_backward_and_consistency_loss():
    torch.manual_seed(2)
    deblur = build("aspdc", width=4, groups=2, num_res=1)
    reblur = build("aspdc-reblur", width=4)
    blurry, sharp = torch.rand(2, 3, 32, 40), torch.rand(2, 3, 32, 40)
    out = deblur(blurry)
    assert out.shape == blurry.shape
    loss = consistency_loss(out, sharp, blurry, reblur, lam=0.1)
    ref = F.mse_loss(out, sharp) + 0.1 * F.mse_loss(reblur(blurry, out), blurry)
    assert torch.allclose(loss, ref)
    loss.backward()
    assert all(p.grad is not None for p in deblur.parameters())
    # the reblurred image depends on both the blurry and the sharp input
    b = blurry.clone().requires_grad_()
    s = sharp.clone().requires_grad_()
    reblur(b, s).sum().backward()
    assert b.grad.abs().sum() > 0 and s.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        deblur(torch.rand(1, 3, 30, 32))
    with pytest.raises(ValueError):
        reblur(torch.rand(1, 3, 36, 32), torch.rand(1, 3, 36, 32))


def test_tiny_aspdc_three_stages_train():
    """Deblur (Eq. 5) and reblur (Eq. 6) stages raise crop PSNR >= 1 dB; then Eq. (7)."""
    from lodetools.nets.aspdc import stage_loss
    from tests._tiny_blur import fit
    torch.manual_seed(0)
    deblur = build_aspdc(width=4, groups=2, num_res=1)
    reblur = build_reblur(width=4)

    def stage(name, target_is_blurry):
        def loss_fn(b, s):
            loss, pred = stage_loss(name, deblur, reblur, b, s)
            return loss, pred, (b if target_is_blurry else s)
        return loss_fn

    h1 = fit(deblur.parameters(), stage("deblur", False), iters=50, lr=1e-3)
    assert h1[-5:].mean() - h1[:5].mean() >= 1.0, h1
    h2 = fit(reblur.parameters(), stage("reblur", True), iters=40, lr=1e-3)
    assert h2[-5:].mean() - h2[:5].mean() >= 1.0, h2
    frozen = {k: v.clone() for k, v in reblur.state_dict().items()}
    h3 = fit(deblur.parameters(), stage("consistency", False), iters=10, lr=1e-5)
    assert np.isfinite(h3).all() and abs(h3.mean() - h1[-5:].mean()) < 3
    # fine-tuning changes only the deblurring net
    assert all(torch.equal(v, reblur.state_dict()[k]) for k, v in frozen.items())
