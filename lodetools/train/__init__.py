"""Training and inference for the deblurring networks.

* :mod:`lodetools.train.datasets` — paired-layout datasets with blur-aware cropping.
* :mod:`lodetools.train.losses` — L1, MSE, SSIM, FFT, Dice, CE and the shift-invariant wrapper.
* :mod:`lodetools.train.trainer` — the iteration-based trainer and the registry of
  per-network training specs (how to add a network: see its docstring).
* :mod:`lodetools.train.inference` — tiled inference for full-size images.
"""
