"""Training and inference for the deblurring networks.

* :func:`training_loss` — each network's training loss on one batch (equal to
  its authors' training code; the paper's form where they differ on request).
* :mod:`lodetools.train.registry` — trainable networks and their training specs
  (how to add a network: see its docstring).
* :mod:`lodetools.train.trainer` — the iteration-based trainer; its settings in
  :mod:`lodetools.train.options`, schedules in :mod:`~lodetools.train.schedule`,
  DDP in :mod:`~lodetools.train.distributed`, logging and validation in
  :mod:`~lodetools.train.callbacks`.
* :mod:`lodetools.train.checkpoint` — checkpoint files and the model they hold.
* :mod:`lodetools.train.datasets` — paired-layout datasets with blur-aware cropping.
* :mod:`lodetools.train.losses` — L1, MSE, SSIM, FFT, Dice, CE and the shift tolerance.
* :mod:`lodetools.train.inference` — tiled inference for full-size images.
"""

from lodetools.train.objective import training_loss

__all__ = ["training_loss"]
