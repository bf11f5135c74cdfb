"""Training losses on (B, C, H, W) tensors; each returns a scalar tensor.

* :func:`l1_loss`, :func:`mse_loss` — means over all elements.
* :func:`ssim` / :func:`ssim_loss` — differentiable SSIM with the metrics'
  convention (11x11 gaussian window, sigma 1.5, valid region, c1 = 0.01^2,
  c2 = 0.03^2 for data in [0, 1], per channel then averaged; Wang et al. 2004).
  ReLoBlur appendix Eq. (5) uses ``-SSIM`` as the loss.
* :func:`fft_l1_loss` — L1 between ``rfft2`` spectra; summed over scales by
  the caller it is the multi-scale frequency reconstruction (MSFR) loss
  (ReLoBlur appendix Eq. (6)). Default: the mean complex modulus of the
  difference, as ReLoBlur's training code (``F.l1_loss`` on complex tensors);
  ``form='parts'``: mean of ``|Re|`` and ``|Im|`` (MIMO-UNet's code).
* :func:`dice_loss` — default ``1 - sum(p t) / sum(p + t)`` over the whole
  batch, as LODE's training code; ``form='paper'``: ``1 - 2 sum(p t) /
  (sum(p) + sum(t))`` per image (LODE Eq. (4)).
* :func:`cross_entropy_loss` (2-class logits, LODE Eq. (1)), :func:`bce_loss`.
* :func:`reflect_shifts` / :func:`min_per_image` — ReLoBlur's shift
  tolerance as its training code computes it: the ground truth shifted by
  (dx, dy) in {-1, 0, 1}^2 with reflected borders, the minimum over the 9
  shifts per image, then the batch mean.
* :func:`shift_invariant` — the paper's reading (appendix D, Eqs. (3)-(6)):
  the minimum over shifts of the batch-mean loss on the overlap (here the
  interior all shifts share, so the 9 shifts run as one batch).
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


def _reduce(per_element: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_element.mean()
    if reduction == "none":
        return per_element.flatten(1).mean(1)
    raise ValueError(f"reduction must be 'mean' or 'none', not {reduction!r}")


def l1_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute error (scalar, or (B,) per image with ``reduction='none'``)."""
    return _reduce((pred - target).abs(), reduction)


def mse_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error (scalar, or (B,) per image with ``reduction='none'``)."""
    return _reduce((pred - target) ** 2, reduction)


@functools.lru_cache(maxsize=8)
def _gauss_1d(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def ssim(pred: torch.Tensor, target: torch.Tensor, *, window: int = SSIM_WINDOW,
         sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Mean SSIM per image (Wang et al. 2004), differentiable.

    Parameters
    ----------
    pred, target : (B, C, H, W) tensors in [0, 1]; H, W >= ``window``.
        Computed in float64 for float64 input, else float32.

    Returns
    -------
    (B,) tensor
        SSIM over the valid region, averaged over channels and pixels.
    """
    c = pred.shape[1]
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    g = _gauss_1d(window, float(sigma)).to(pred.device, dtype)
    kx = g.view(1, 1, 1, -1).expand(c, 1, 1, window)
    ky = g.view(1, 1, -1, 1).expand(c, 1, window, 1)
    pred, target = pred.to(dtype), target.to(dtype)
    b = pred.shape[0]
    # one separable gaussian pass over the 5 moment images at once, valid region
    stack = torch.cat([pred, target, pred * pred, target * target, pred * target], dim=0)
    mom = F.conv2d(F.conv2d(stack, kx, groups=c), ky, groups=c)
    mu_x, mu_y, exx, eyy, exy = mom.split(b, dim=0)
    sxx, syy, sxy = exx - mu_x ** 2, eyy - mu_y ** 2, exy - mu_x * mu_y
    num = (2 * mu_x * mu_y + SSIM_C1) * (2 * sxy + SSIM_C2)
    den = (mu_x ** 2 + mu_y ** 2 + SSIM_C1) * (sxx + syy + SSIM_C2)
    return (num / den).flatten(1).mean(1)


def ssim_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``-SSIM`` (ReLoBlur appendix Eq. (5)); scalar, or (B,) with ``reduction='none'``."""
    s = -ssim(pred, target)
    return s.mean() if reduction == "mean" else s


def fft_l1_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean",
                form: str = "modulus") -> torch.Tensor:
    """L1 distance of the ``rfft2`` spectra of (B, C, H, W) tensors.

    Parameters
    ----------
    form : {'modulus', 'parts'}
        ``'modulus'`` (default): mean over (C, H, W // 2 + 1) of ``|F(p) -
        F(t)|``, the complex modulus, which is what ``F.l1_loss`` computes on
        complex tensors in ReLoBlur's ``fft_loss``. ``'parts'``: mean of
        ``|Re|`` and ``|Im|`` of the difference, real and imaginary parts
        stacked, as MIMO-UNet's code (Cho et al. 2021).
    reduction : {'mean', 'none'}
        Scalar, or (B,) per image.
    """
    d = torch.fft.rfft2(pred.float()) - torch.fft.rfft2(target.float())
    if form == "modulus":
        return _reduce(d.abs(), reduction)
    if form == "parts":
        return _reduce(torch.view_as_real(d).abs(), reduction)
    raise ValueError(f"form must be 'modulus' or 'parts', not {form!r}")


def dice_loss(pred: torch.Tensor, target: torch.Tensor, form: str = "official",
              eps: float = 1e-6) -> torch.Tensor:
    """Dice loss of (B, 1, H, W) maps against 0/1 masks.

    Parameters
    ----------
    pred : (B, 1, H, W) tensor, non-negative (e.g. the summed attention maps)
    target : (B, 1, H, W) tensor of 0/1
    form : {'official', 'paper'}
        ``'official'`` (default): ``1 - sum(p t) / sum(p + t)`` with the sums
        over the whole batch and no epsilon, as LODE's training code
        (``criterion.DiceLoss``: the factor 2 is commented out there).
        ``'paper'``: ``1 - 2 sum(p t) / (sum(p) + sum(t))`` per image, then
        averaged (LODE Eq. (4)), ``eps`` added to numerator and denominator.
    """
    p, t = pred.float(), target.float()
    if form == "official":
        return 1 - (p * t).sum() / (p + t).sum()
    if form == "paper":
        p, t = p.flatten(1), t.flatten(1)
        return (1 - (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)).mean()
    raise ValueError(f"form must be 'official' or 'paper', not {form!r}")


def cross_entropy_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Pixel-wise cross-entropy of (B, 2, H, W) logits against a (B, 1, H, W) 0/1 mask (LODE Eq. (1))."""
    return F.cross_entropy(logits.float(), mask[:, 0].round().long())


def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits (B, 1, H, W) against 0/1 targets."""
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


def reflect_shifts(target: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """(B * S, C, H, W): each image's ``S = (2r+1)^2`` shifts, image-major.

    Shift (dx, dy) (dy outer, dx inner) moves the content by dx to the right
    and dy down, the uncovered border filled by reflection, as ReLoBlur's
    training code does with ``F.pad(g, [dx, -dx, dy, -dy], mode='reflect')``.
    """
    h, w = target.shape[-2:]
    r = radius
    padded = F.pad(target, (r, r, r, r), mode="reflect")
    shifts = [padded[..., r - dy:r - dy + h, r - dx:r - dx + w]
              for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    return torch.stack(shifts, 1).flatten(0, 1)


def min_per_image(per_image: torch.Tensor, n_shifts: int) -> torch.Tensor:
    """(B*S,) image-major losses of :func:`reflect_shifts` -> mean over images of the min over shifts."""
    return per_image.view(-1, n_shifts).amin(1).mean()


def shifted_stack(pred: torch.Tensor, target: torch.Tensor, radius: int = 1):
    """All shifts of ``pred`` against ``target`` stacked along the batch.

    For every (k, l) in {-r..r}^2 (k along x, l along y) the common interior
    ``pred[r:H-r, r:W-r]`` is paired with ``target`` shifted by (k, l); the
    result is (S*B, C, H-2r, W-2r) twice, S = (2r+1)^2 shifts, shift-major.
    """
    h, w = pred.shape[-2:]
    r = radius
    p = pred[..., r:h - r, r:w - r]
    gs = [target[..., r + l:h - r + l, r + k:w - r + k]
          for l in range(-r, r + 1) for k in range(-r, r + 1)]
    return p.repeat(len(gs), *([1] * (pred.dim() - 1))), torch.cat(gs, dim=0), len(gs)


def min_over_shifts(per_image: torch.Tensor, n_shifts: int) -> torch.Tensor:
    """(S*B,) per-image losses of :func:`shifted_stack` -> min over shifts of the batch mean."""
    return per_image.view(n_shifts, -1).mean(1).min()


def shift_invariant(loss_fn, pred: torch.Tensor, target: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """``min over (k, l) in {-r..r}^2 of loss_fn(pred, Shift_{k,l}(target))``.

    ReLoBlur appendix D, Eqs. (3)-(6): compensates the ~1 px alignment error
    of real pairs. The paper compares each shift on its overlap; here every
    shift uses the same interior (the overlap minus the r-pixel frame all
    shifts share), so the 9 shifts run as one batch. ``loss_fn(p, g,
    reduction='none')`` must return per-image losses (B,); the minimum is
    taken over the batch-mean loss.
    """
    if radius <= 0:
        return loss_fn(pred, target, reduction="none").mean()
    p, g, n = shifted_stack(pred, target, radius)
    return min_over_shifts(loss_fn(p, g, reduction="none"), n)


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB for data in [0, 1]."""
    return 10 * math.log10(1.0 / max(mse, 1e-12))
