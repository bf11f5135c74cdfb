"""CUDA paths against the CPU / fp32 ones (skipped without CUDA; see conftest.py).

The checks are the functions of benchmarks/gpu_check.py, which take a device
and run on the CPU too (tests/nets/test_official.py runs one there).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

_spec = importlib.util.spec_from_file_location(
    "gpu_check", Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_check)


def test_c2f_torch_engine_on_cuda_matches_cpu_engine():
    r = gpu_check.check_c2f("cuda", (240, 320))
    assert r["mean_px"] < 1e-3 and r["max_px"] < 0.05          # float32 rounding, not another solution
    assert r["true_shift_error_px"] < 0.1


@pytest.mark.parametrize("net", gpu_check.NETS)
def test_amp_channels_last_step_matches_fp32(net):
    r = gpu_check.check_train_step(net, "cuda", crop=64, batch=2, opts=gpu_check.SMALL[net])
    assert r["amp"] and r["finite"]
    assert r["loss_rel_diff"] < 0.02                            # fp16 has ~3 significant digits
    assert r["grad_cosine"] > 0.99


def test_tiled_deblur_on_cuda_matches_whole_image():
    r = gpu_check.check_deblur("lbag", "cuda", (272, 400), tile=128, overlap=32, opts=gpu_check.SMALL["lbag"])
    assert r["mean_diff"] < 1e-3


def test_official_checkpoint_on_cuda_equals_cpu(tmp_path):
    from tests.nets.test_official import _randomised, official_file

    from lodetools.train.checkpoint import load_model
    path = official_file("lbag", _randomised("lbag"), tmp_path / "off.ckpt")
    x = torch.rand(1, 3, 64, 96)
    cpu, predict, _ = load_model(path, "cpu")
    gpu, _, _ = load_model(path, "cuda")
    torch.backends.cudnn.allow_tf32 = False        # exact fp32 convolutions, as on the CPU
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.no_grad():
        torch.testing.assert_close(predict(gpu, x.cuda()).cpu(), predict(cpu, x), rtol=1e-4, atol=1e-4)
