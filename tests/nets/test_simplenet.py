"""SimpleNet blocks against the paper's equations evaluated independently."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

from lodetools.nets import build
from lodetools.nets.simplenet import LGCR, PVB, DeformResBlock, NonLocalBlock, build_simplenet

torch.set_num_threads(1)


def _count(model):
    return sum(p.numel() for p in model.parameters())


def test_full_size_parameter_count_within_5_percent_of_paper():
    with torch.device("meta"):  # count without allocating or initialising
        net = build_simplenet()
    n = _count(net)
    assert abs(n - 25.1e6) / 25.1e6 < 0.05, n
    # block census of the paper (Sec. 3.4): 6 ResBlocks, 6 PVBs, 3 DRs, 1 LGCR
    kinds = [type(m).__name__ for m in net.modules()]
    assert (kinds.count("ResBlock3"), kinds.count("PVB"), kinds.count("DeformResBlock"),
            kinds.count("LGCR")) == (6, 6, 3, 1)


def test_lgcr_matches_equations_1_to_5_by_hand():
    torch.manual_seed(0)
    r, C, H, W = 3, 4, 5, 6
    m = LGCR(rank=r).double()
    for p in m.parameters():  # random, non-trivial weights (PReLU slopes too)
        torch.nn.init.uniform_(p, -1, 1)
    x = torch.randn(2, C, H, W, dtype=torch.float64)
    got = m(x).detach().numpy()
    xn = x.numpy()
    P = {k: v.detach().numpy() for k, v in m.named_parameters()}

    def frag(v, axis):  # Eq. (1): 1x3 correlation with zero padding, then PReLU
        w, b, a = P[f"conv_{axis}.weight"], P[f"conv_{axis}.bias"], P[f"act_{axis}.weight"]
        vp = np.pad(v, 1)
        out = np.array([[w[i, 0] @ vp[n:n + 3] + b[i] for n in range(len(v))] for i in range(r)])
        return np.where(out > 0, out, a[:, None] * out)

    for b in range(2):
        fc, fh, fw = (frag(xn[b].mean(axis=(1, 2)), "c"), frag(xn[b].mean(axis=(0, 2)), "h"),
                      frag(xn[b].mean(axis=(0, 1)), "w"))
        raw = sum(np.multiply.outer(np.multiply.outer(fc[i], fh[i]), fw[i]) for i in range(r))  # Eq. 2
        gcrw = np.exp(raw) / np.exp(raw).sum()                                                 # Eq. 3
        rr = ndi.correlate(xn[b], P["conv3d.weight"][0, 0], mode="constant") + P["conv3d.bias"][0]  # Eq. 4
        np.testing.assert_allclose(got[b], rr * gcrw + xn[b], rtol=1e-10, atol=1e-12)     # Eq. 5


def test_pvb_and_dr_at_init_equal_plain_conv_formulas():
    """Offset predictors start at zero: DCNv2 = conv with weight * sigmoid(0)."""
    torch.manual_seed(1)
    x = torch.randn(1, 3, 10, 12, dtype=torch.float64)
    pvb = PVB(3).double()
    relu = torch.relu
    feats = [relu(F.conv2d(x, c.weight, c.bias, padding=d, dilation=d))
             for c, d in zip(pvb.dilated, (1, 2, 3))]
    feats.append(F.conv2d(x, pvb.deform.weight * 0.5, pvb.deform.bias, padding=1))       # Eq. 6
    fused = F.conv2d(torch.cat(feats, 1), pvb.fuse.weight * 0.5, pvb.fuse.bias, padding=1)  # Eq. 7
    assert torch.allclose(pvb(x), x + fused, atol=1e-10)                                   # Eq. 8
    dr = DeformResBlock(3).double()
    ref = F.conv2d(relu(F.conv2d(x, dr.deform.weight * 0.5, dr.deform.bias, padding=1)),
                   dr.conv.weight, dr.conv.bias, padding=1) + x                            # Eq. 9
    assert torch.allclose(dr(x), ref, atol=1e-10)


def test_nonlocal_block_is_a_softmax_attention():
    torch.manual_seed(2)
    nl = NonLocalBlock(4, 2).double()
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    X = x.flatten(2)[0]  # (C, N)
    lin = lambda conv: conv.weight[:, :, 0, 0] @ X + conv.bias[:, None]  # noqa: E731
    A = torch.softmax(lin(nl.theta).T @ lin(nl.phi), dim=1)               # (N, N)
    y = lin(nl.g) @ A.T
    ref = X + nl.out.weight[:, :, 0, 0] @ y + nl.out.bias[:, None]
    assert torch.allclose(nl(x).flatten(2)[0], ref, atol=1e-10)


def test_tiny_forward_backward_and_registry():
    torch.manual_seed(3)
    net = build("simplenet", width=4, rank=4)
    x = torch.rand(2, 3, 32, 36)
    y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.mean().backward()
    # every parameter reached by the gradient (offset predictors are zero-initialised
    # but their gradient is not)
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError):
        net(torch.rand(1, 3, 30, 32))



def _crop_psnr(run):
    """Per-iteration training-crop PSNR (dB), stage and input PSNR from a run's train_log.csv."""
    import csv
    rows = list(csv.DictReader(open(run / "train_log.csv")))
    parts = [dict(kv.split("=") for kv in r["parts"].split(";")) for r in rows]
    return (np.array([float(p["psnr"]) for p in parts]), [r["stage"] for r in rows],
            np.array([float(p["psnr_in"]) for p in parts]))


def _lodetools(args):
    """Run the CLI in-process; assert exit code 0."""
    from lodetools.cli import cli, run_command
    with pytest.raises(SystemExit) as exit_:
        run_command(cli, [str(a) for a in args])
    assert exit_.value.code == 0


def test_train_simplenet_cli_psnr_rises(tmp_path):
    """Acceptance: ~50 CPU iterations on tiny synthetic pairs raise crop PSNR >= 1 dB."""
    from tests.support.train_data import make_dataset
    data = make_dataset(tmp_path / "ds", n=2, local=False)
    run = tmp_path / "run"
    _lodetools(["train", "simplenet", "--data", data, "--out", run, "--recipe", "simplenet",
                "--iters", "50", "--batch", "2", "--crop", "32", "--lr", "1e-3", "--lr-step", "0",
                "--net-opts", "width=4,rank=4", "--workers", "0", "--quiet"])
    psnr, _, _ = _crop_psnr(run)
    assert len(psnr) == 50
    assert psnr[-5:].mean() - psnr[:5].mean() >= 1.0, psnr
    # the saved model deblurs (rebuilt from its name and options)
    from lodetools.train.checkpoint import load_checkpoint, rebuild_model
    model = rebuild_model(load_checkpoint(run / "model.pt"))
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)
