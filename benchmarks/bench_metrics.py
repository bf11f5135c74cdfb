"""SSIM time at 2152x1436 (ReLoBlur's image size): lodetools vs scikit-image, side by side.

Usage: python benchmarks/bench_metrics.py [--size 2152x1436] [--repeat 3]
Also times what eval computes per image (``image_scores``: PSNR, SSIM and the
weighted pair from one quantisation and one SSIM map) against scikit-image's
PSNR + SSIM. Both compute the same SSIM (gaussian 11x11, sigma 1.5, population covariance,
data range 255, valid region); the script checks they agree and prints the
time of each and the speed ratio.
"""

import argparse
import time

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lodetools.metrics import image_scores, ssim
from lodetools.metrics.batched import ssim_batch


def best(fn, repeat):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="2152x1436")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    rng = np.random.default_rng(0)
    gt = rng.random((h, w, 3)).astype(np.float32)
    pred = np.clip(gt + rng.normal(0, 0.05, gt.shape), 0, 1).astype(np.float32)
    q = lambda x: np.floor(x * 255 + 0.5)  # noqa: E731
    t_ours, v_ours = best(lambda: ssim(pred, gt), a.repeat)
    t_sk, v_sk = best(lambda: structural_similarity(q(gt), q(pred), gaussian_weights=True, sigma=1.5,
                                                    use_sample_covariance=False, data_range=255,
                                                    channel_axis=2), a.repeat)
    import torch
    tp = torch.from_numpy(pred).permute(2, 0, 1)[None]
    tg = torch.from_numpy(gt).permute(2, 0, 1)[None]
    t_t, v_t = best(lambda: ssim_batch(tp, tg).item(), a.repeat)
    print(f"SSIM {w}x{h}: lodetools {t_ours:.3f} s, scikit-image {t_sk:.3f} s, "
          f"ratio {t_sk / t_ours:.2f}x faster; torch (float64, CPU) {t_t:.3f} s")
    print(f"values: lodetools {v_ours:.8f}  scikit-image {v_sk:.8f}  torch {v_t:.8f}  "
          f"|diff| {abs(v_ours - v_sk):.2e}")
    # what eval computes per image: the four metrics from one quantisation and one SSIM map,
    # against scikit-image's PSNR and SSIM alone, interleaved
    mask = np.zeros((h, w), bool)
    mask[h // 4:h // 2, w // 4:w // 2] = True
    p8, g8 = q(pred).astype(np.uint8), q(gt).astype(np.uint8)
    t4, t2 = [], []
    for _ in range(a.repeat):
        t4.append(best(lambda: image_scores(p8, g8, mask), 1)[0])
        t2.append(best(lambda: (peak_signal_noise_ratio(g8, p8, data_range=255),
                                structural_similarity(g8, p8, gaussian_weights=True, sigma=1.5,
                                                      use_sample_covariance=False, data_range=255,
                                                      channel_axis=2)), 1)[0])
    print(f"image_scores psnr,ssim,psnrw,ssimw {min(t4):.3f} s; scikit-image PSNR + SSIM {min(t2):.3f} s; "
          f"ratio {min(t4) / min(t2):.2f}")


if __name__ == "__main__":
    main()
