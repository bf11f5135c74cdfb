"""LBAG and BladeNet: parameter counts of the full-size networks, gating, shapes."""

import pytest
import torch

from lodetools import nets
from lodetools.nets.blocks import count_parameters
from lodetools.nets.mimo import MIMOUNetPlain

torch.set_num_threads(1)


def _count_on_meta(fn):
    with torch.device("meta"):
        return count_parameters(fn())


def test_full_size_parameter_counts():
    # MIMO-UNet / MIMO-UNet+ (Cho et al. 2021) and LBAG as in the reference notes
    assert _count_on_meta(lambda: MIMOUNetPlain(num_res=8)) == 6_807_171
    assert _count_on_meta(lambda: MIMOUNetPlain(num_res=20, dropout=0.1)) == 16_107_651
    lbag = _count_on_meta(lambda: nets.build("lbag"))
    assert lbag == pytest.approx(16_109_670, rel=0.01)
    with torch.device("meta"):
        blade = nets.build("bladenet")
    assert count_parameters(blade) == pytest.approx(40_778_568, rel=0.01)     # paper: 40.8M
    assert count_parameters(blade.lbp) == pytest.approx(17_267_458, rel=0.01)
    assert count_parameters(blade.deblur) == pytest.approx(23_511_110, rel=0.01)


def test_lbag_gate_and_residual():
    torch.manual_seed(0)
    m = nets.build("lbag", base=8, num_res=1).eval()
    x = torch.rand(2, 3, 32, 48)
    out = m(x)
    assert [t.shape for t in out.images] == [(2, 3, 8, 12), (2, 3, 16, 24), (2, 3, 32, 48)]
    for g in out.gates:
        assert g.shape[1] == 1 and g.min() >= 0.1 - 1e-7 and g.max() <= 1
    # zero heads: z = 0 -> gate = sigmoid(0) = 0.5 and out = 0 * gate + input at that scale
    for conv in (m.convs_out[0][0], m.convs_out[1][0], m.feat_extract[5][0]):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    out = m(x)
    x2 = torch.nn.functional.interpolate(x, scale_factor=0.5, mode="nearest")
    assert torch.equal(out.images[2], x) and torch.equal(out.images[1], x2)
    assert torch.allclose(out.gates[0], torch.full_like(out.gates[0], 0.5))
    # a strongly negative gate logit is clamped at 0.1 (ReLoBlur official code)
    m.feat_extract[5][0].bias.data[0] = -20.0
    m.feat_extract[5][0].bias.data[1:] = 1.0
    out = m(x)
    assert torch.allclose(out.gates[2], torch.full_like(out.gates[2], 0.1))
    assert torch.allclose(out.images[2], x + 0.1)


def test_bladenet_outputs():
    torch.manual_seed(0)
    m = nets.build("bladenet", width=4).eval()
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        out = m(x)
        lbp_only = m(x, parts="lbp")
    assert out.final.shape == (1, 3, 32, 48) and out.mask_logits.shape == (1, 2, 32, 48)
    assert out.final.min() > 0 and out.final.max() < 1                   # sigmoid output
    assert out.attention.shape == (1, 1, 32, 48)
    assert 0 <= out.attention.min() and out.attention.max() <= 3          # sum of 3 sigmoid maps
    assert torch.equal(lbp_only.mask_logits, out.mask_logits) and lbp_only.final is None
    # the deblur net sees the LBP logits: changing them changes the output (train-mode BN:
    # with fresh running statistics the untrained eval-mode signal is vanishingly small)
    m.train()
    with torch.no_grad():
        z0, _ = m.deblur(torch.cat([x, out.mask_logits], 1))
        z1, atts = m.deblur(torch.cat([x, out.mask_logits + 5], 1))
    assert (z0 - z1).abs().max() > 1e-3 and len(atts) == 3


def test_unknown_network():
    with pytest.raises(ValueError, match="unknown network"):
        nets.build("nope")
