"""Tiny synthetic deblurring data and a plain Adam loop for network tests."""

import numpy as np
import torch
import torch.nn.functional as F

from lodetools.metrics.batched import psnr_batch
from lodetools.sim.photos import linear_photo


def blur_pair(name="chelsea", size=(64, 96), length=7):
    """A display-referred photo (1, 3, H, W) and its horizontal box blur of ``length`` px."""
    sharp = torch.from_numpy(linear_photo(name, size) ** (1 / 2.2)).permute(2, 0, 1)[None].float()
    k = torch.full((3, 1, 1, length), 1.0 / length)
    p = length // 2
    blurry = F.conv2d(F.pad(sharp, (p, p, 0, 0), mode="replicate"), k, groups=3)
    return blurry, sharp


def crops(rng, blurry, sharp, n=2, size=32):
    """``n`` random aligned crops (n, 3, size, size) of the pair."""
    H, W = sharp.shape[-2:]
    ys, xs = rng.integers(0, H - size + 1, n), rng.integers(0, W - size + 1, n)
    cut = lambda t: torch.cat([t[..., y:y + size, x:x + size] for y, x in zip(ys, xs)])  # noqa: E731
    return cut(blurry), cut(sharp)


def fit(params, loss_fn, iters, lr, seed=0):
    """Adam on ``params`` for ``iters`` steps; ``loss_fn(blurry, sharp) -> (loss, pred, target)``.

    Returns the per-step training-crop PSNR (dB) of ``pred`` against ``target``.
    """
    rng = np.random.default_rng(seed)
    blurry, sharp = blur_pair()
    opt = torch.optim.Adam(params, lr=lr)
    hist = []
    for _ in range(iters):
        b, s = crops(rng, blurry, sharp)
        loss, pred, target = loss_fn(b, s)
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append(psnr_batch(pred.detach().clamp(0, 1), target).mean().item())
    return np.array(hist)
