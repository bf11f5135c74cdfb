"""Training losses on (B, C, H, W) tensors; each returns a scalar tensor.

* :func:`l1_loss`, :func:`mse_loss` — means over all elements.
* :func:`ssim` / :func:`ssim_loss` — differentiable SSIM with the metrics'
  convention (11x11 gaussian window, sigma 1.5, valid region, c1 = 0.01^2,
  c2 = 0.03^2 for data in [0, 1], per channel then averaged; Wang et al. 2004).
  ReLoBlur appendix Eq. (5) uses ``-SSIM`` as the loss.
* :func:`fft_l1_loss` — L1 between ``rfft2`` spectra (real and imaginary
  parts), MIMO-UNet's frequency reconstruction term; summed over scales by
  the caller it is the multi-scale frequency reconstruction (MSFR) loss
  (ReLoBlur appendix Eq. (6)).
* :func:`dice_loss` — ``1 - 2 sum(p t) / (sum(p) + sum(t))`` (LODE Eq. (4)).
* :func:`cross_entropy_loss` (2-class logits, LODE Eq. (1)), :func:`bce_loss`.
* :func:`shift_invariant` — minimum of a loss over the prediction shifted by
  (k, l) in {-1, 0, 1}^2, computed on the overlap (ReLoBlur appendix D, Eqs. (3)-(6)).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = 0.01 ** 2
SSIM_C2 = 0.03 ** 2


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    return (pred - target).abs().mean()


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error."""
    return ((pred - target) ** 2).mean()


@functools.lru_cache(maxsize=8)
def _gauss_1d(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return (g / g.sum()).float()


def ssim(pred: torch.Tensor, target: torch.Tensor, *, window: int = SSIM_WINDOW,
         sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Mean SSIM per image (Wang et al. 2004), differentiable.

    Parameters
    ----------
    pred, target : (B, C, H, W) tensors in [0, 1]; H, W >= ``window``.

    Returns
    -------
    (B,) tensor
        SSIM over the valid region, averaged over channels and pixels.
    """
    c = pred.shape[1]
    g = _gauss_1d(window, float(sigma)).to(pred.device, torch.float32)
    kx = g.view(1, 1, 1, -1).expand(c, 1, 1, window)
    ky = g.view(1, 1, -1, 1).expand(c, 1, window, 1)
    pred, target = pred.float(), target.float()

    def blur(x):  # separable gaussian, valid region
        return F.conv2d(F.conv2d(x, kx, groups=c), ky, groups=c)

    mu_x, mu_y = blur(pred), blur(target)
    sxx = blur(pred * pred) - mu_x ** 2
    syy = blur(target * target) - mu_y ** 2
    sxy = blur(pred * target) - mu_x * mu_y
    num = (2 * mu_x * mu_y + SSIM_C1) * (2 * sxy + SSIM_C2)
    den = (mu_x ** 2 + mu_y ** 2 + SSIM_C1) * (sxx + syy + SSIM_C2)
    return (num / den).flatten(1).mean(1)


def ssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``-mean SSIM`` (ReLoBlur appendix Eq. (5))."""
    return -ssim(pred, target).mean()


def fft_l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the ``rfft2`` spectra, real and imaginary parts stacked (MIMO-UNet FFT loss)."""
    fp = torch.fft.rfft2(pred.float())
    ft = torch.fft.rfft2(target.float())
    return l1_loss(torch.view_as_real(fp), torch.view_as_real(ft))


def dice_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Dice loss ``1 - 2 |P T| / (|P| + |T|)`` per image, averaged (LODE Eq. (4)).

    Parameters
    ----------
    pred : (B, 1, H, W) tensor, non-negative (e.g. the summed attention maps)
    target : (B, 1, H, W) tensor of 0/1
    eps : float
        Added to numerator and denominator (an empty mask predicted empty gives 0).
    """
    p, t = pred.float().flatten(1), target.float().flatten(1)
    return (1 - (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)).mean()


def cross_entropy_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Pixel-wise cross-entropy of (B, 2, H, W) logits against a (B, 1, H, W) 0/1 mask (LODE Eq. (1))."""
    return F.cross_entropy(logits.float(), mask[:, 0].round().long())


def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits (B, 1, H, W) against 0/1 targets."""
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


def _overlap(pred: torch.Tensor, target: torch.Tensor, k: int, l: int):
    """Overlap of ``pred`` shifted by k px along x and l px along y with ``target``."""
    h, w = pred.shape[-2:]
    ys, yd = (slice(0, h - l), slice(l, h)) if l >= 0 else (slice(-l, h), slice(0, h + l))
    xs, xd = (slice(0, w - k), slice(k, w)) if k >= 0 else (slice(-k, w), slice(0, w + k))
    return pred[..., ys, xs], target[..., yd, xd]


def shift_invariant(loss_fn, pred: torch.Tensor, target: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """``min over (k, l) in {-r..r}^2 of loss_fn(Shift_{k,l}(pred), target)`` on the overlap.

    ReLoBlur appendix D, Eqs. (3)-(6): compensates the ~1 px alignment error
    of real pairs. The minimum is taken over the batch loss (a scalar).
    """
    losses = [loss_fn(*_overlap(pred, target, k, l))
              for l in range(-radius, radius + 1) for k in range(-radius, radius + 1)]
    return torch.stack(losses).min()


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB for data in [0, 1]."""
    return 10 * math.log10(1.0 / max(mse, 1e-12))
