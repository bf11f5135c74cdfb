"""``lodetools train simplenet``: train SimpleNet (PVB, LGCR, Deformable ResBlocks)."""

import click

from lodetools.commands._train_options import run_train_command, train_options


@click.command("simplenet", epilog="""\b
Example:
  lodetools train simplenet --data gopro_ds --recipe simplenet --out runs/simplenet --iters 2200000
  lodetools train simplenet --data tiny_ds --out runs/t --iters 50 --batch 2 --crop 32 \\
      --net-opts width=4,rank=4 --lr 1e-3 --workers 0
  torchrun --nproc_per_node 4 -m lodetools train simplenet --data ds --recipe simplenet --out runs/s
""")
@train_options
@click.pass_context
def command(ctx, **params):
    """Train SimpleNet (Li et al., ICCV 2021) with the L1 loss.

    Auto-encoder with six ResBlocks, six PVBs, three Deformable ResBlocks and
    one LGCR (CP rank 64); 24.8M parameters at the default width 70
    (--net-opts width=W,rank=R for smaller models). Adam, lr 1e-4, batch 8
    (recipe 'simplenet'). Deformable convolutions run in pure torch (or
    torchvision's op when installed). Logs the training-crop PSNR per
    iteration in train_log.csv; resumable (--resume), DDP under torchrun.
    """
    run_train_command("simplenet", ctx)
