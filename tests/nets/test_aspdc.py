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



def test_train_aspdc_cli_three_stages(tmp_path):
    """Acceptance: the three stages run in sequence from one command (resumable between
    stages); 50 deblurring iterations raise the training-crop PSNR by >= 1 dB, both over the
    first iterations' PSNR and over the blurry input's on the same crops; 50 reblurring
    iterations raise theirs >= 1 dB; fine-tuning leaves the reblurring net as it was.

    The deblurring net starts near the identity (global residual; the authors' Xavier init
    over every convolution, offset/mask predictors included, leaves a small random residual,
    about -1 dB here), so it must learn to sharpen: the data is a uniform, learnable blur (gaussian of std 2 px in
    linear light) of textured photo crops, and the net is tiny but not too narrow (width 16:
    64 channels at 1/4 resolution carry the full-resolution residual; width 4 gained
    ~0.3 dB in 150 iterations on a horizontal box blur)."""
    from lodetools.train.checkpoint import load_checkpoint
    from tests.support.train_data import make_dataset
    from tests.nets.test_simplenet import _crop_psnr, _lodetools
    data = make_dataset(tmp_path / "ds", n=2, local=False, blur_type="gaussian",
                        blur_sigma=2.0)
    run = tmp_path / "run"
    args = ["train", "aspdc", "--data", data, "--out", str(run), "--recipe", "aspdc",
            "--iters", "110", "--batch", "4", "--crop", "48", "--lr", "1e-3",
            "--stages", "deblur=50,reblur=50,consistency=10",
            "--net-opts", "width=16,groups=2,num_res=1,reblur_width=4",
            "--ckpt-every", "100", "--workers", "0", "--quiet"]
    # stop after the reblurring stage, then resume into the fine-tuning stage
    _lodetools(args + ["--stop-at", "100"])
    after_reblur = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    _lodetools(args + ["--resume"])
    psnr, stages, psnr_in = _crop_psnr(run)
    assert stages == ["deblur"] * 50 + ["reblur"] * 50 + ["consistency"] * 10
    d = psnr[:50]
    gain = psnr - psnr_in  # output PSNR minus input PSNR on the same crops
    assert -2.0 < gain[:5].mean() < 0.3, gain[:50]  # starts near the identity
    assert d[-5:].mean() - d[:5].mean() >= 1.0, d
    assert gain[45:50].mean() - gain[:5].mean() >= 1.0, gain[:50]
    r = psnr[50:100]
    assert r[-5:].mean() - r[:5].mean() >= 1.0, r
    # lr 1e-5 fine-tuning starts where deblurring stopped and stays there
    assert abs(gain[100:].mean() - gain[45:50].mean()) < 0.5, gain[100:]
    assert gain[100:].mean() >= 0.5, gain[100:]  # still well above the blurry input
    import csv
    lrs = [float(row["lr"]) for row in csv.DictReader(open(run / "train_log.csv"))]
    assert lrs[0] == 1e-3 and lrs[-1] == 1e-5
    final = load_checkpoint(run / "model.pt")
    assert final["net"] == "aspdc-pair"
    # stage 3 changed the deblurring net only
    re = [k for k in after_reblur if k.startswith("reblur.")]
    de = [k for k in after_reblur if k.startswith("deblur.") and after_reblur[k].is_floating_point()]
    assert all(torch.equal(after_reblur[k], final["model"][k]) for k in re)
    assert not all(torch.equal(after_reblur[k], final["model"][k]) for k in de)


def test_train_aspdc_bad_options_are_one_line_errors(tmp_path, capsys):
    from lodetools.cli import cli, run_command
    from tests.support.train_data import make_dataset
    data = make_dataset(tmp_path / "ds", n=1, local=False)
    base = ["train", "aspdc", "--data", data, "--iters", "2", "--batch", "1", "--workers", "0",
            "--quiet", "--net-opts", "width=4,groups=1,num_res=1,reblur_width=4"]
    for extra, msg in ((["--crop", "36", "--out", str(tmp_path / "a")], "multiple of 8"),
                       (["--crop", "32", "--out", str(tmp_path / "b"), "--net-opts", "bogus=1"],
                        "bad options for network"),
                       (["--crop", "32", "--out", str(tmp_path / "c"), "--loss", "l1=1"],
                        "l1")):
        with pytest.raises(SystemExit) as exit_:
            run_command(cli, base + extra)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.startswith("error:") and msg in err, err
