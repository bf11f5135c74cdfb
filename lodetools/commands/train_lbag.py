"""``lodetools train lbag``: train LBAG (ReLoBlur) on a paired dataset with masks."""

import click

from lodetools.commands._train_options import run_train_command, train_options


@click.command("lbag", epilog="""\b
Example:
  lodetools train lbag --data reloblur_ds --recipe lbag --out runs/lbag --iters 300000
  lodetools train lbag --data tiny_ds --out runs/t --iters 50 --batch 2 --crop 64 \\
      --net-opts base=8,num_res=1
  torchrun --nproc_per_node 4 -m lodetools train lbag --data ds --recipe lbag --out runs/lbag
""")
@train_options
@click.pass_context
def command(ctx, **params):
    """Train LBAG: MIMO-UNet+ with gated heads (ReLoBlur, AAAI 2023).

    Loss per scale (3 scales), shift-invariant over 1-pixel shifts: L1 - SSIM
    + 0.1 FFT + 0.1 gate MSE against the blur mask (0.1 as in the official
    code; the paper says 0.01: --loss gate=0.01). Blur-aware patch cropping,
    horizontal flips. Needs masks (mask/ in the dataset). Resumable
    (--resume), DDP under torchrun, validation with PSNR/SSIM/weighted PSNR.
    """
    run_train_command("lbag", ctx)
