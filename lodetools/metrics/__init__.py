"""Image quality metrics, each computed one way and saying which.

======================  =====================================================
function                convention
======================  =====================================================
:func:`psnr`            BasicSR: 8-bit rounding, float64, RGB, crop_border 0
                        (``mode='float'``: no rounding)
:func:`ssim`            MATLAB/BasicSR: 11x11 gaussian sigma 1.5, valid
                        region, per channel then averaged, c1=(0.01*255)^2,
                        c2=(0.03*255)^2 on the 0..255 scale
:func:`weighted_psnr`   ReLoBlur official code: 10 log10(1 / (sum(m d^2) / sum(m) / 3))
:func:`weighted_ssim`   ReLoBlur official code: SSIM map x mask (cropped 5 px) / sum(mask)
:func:`image_scores`    the four above at once: one quantisation, one SSIM map
:func:`aligned_metrics` RealBlur: intensity scaling, ECC homography, masked PSNR/SSIM
:func:`delta_l`         ReLoBlur appendix Eq. (1)
======================  =====================================================

Batched torch versions for validation during training are in
:mod:`lodetools.metrics.batched`.
"""

from lodetools.metrics.aligned import aligned_metrics
from lodetools.metrics.delta_l import delta_l
from lodetools.metrics.psnr_ssim import psnr, ssim, ssim_map
from lodetools.metrics.weighted import image_scores, weighted_psnr, weighted_ssim

__all__ = ["psnr", "ssim", "ssim_map", "weighted_psnr", "weighted_ssim", "image_scores", "aligned_metrics",
           "delta_l"]
