"""``lodetools train bladenet``: train BladeNet (LODE) on local-blur pairs (+ global-blur pairs)."""

import click

from lodetools.commands._train_options import run_train_command, train_options


@click.command("bladenet", epilog="""\b
Example:
  lodetools train bladenet --data lbs_ds --global-data reds_ds --recipe bladenet \\
      --out runs/bladenet --iters 200000
  lodetools train bladenet --data tiny_ds --out runs/b --iters 60 --batch 2 --crop 64 \\
      --net-opts width=8 --stages lbp=0.2,deblur=0.3,joint=0.5
""")
@train_options
@click.pass_context
def command(ctx, **params):
    """Train BladeNet: LBP U-Net + deblurring U-Net with blur-guided attention (LODE).

    Stages (fractions of --iters, --stages overrides): lbp (LBP alone, CE
    on masks), deblur (LBP frozen; alternating --global-data L1 passes and
    --data local-blur L1 + 0.01 Dice passes), joint (all trained; local
    passes add 0.25 CE). --data must have masks (e.g. `lodetools lbs`
    output). Resumable (--resume), DDP under torchrun.
    """
    run_train_command("bladenet", ctx)
