"""``lodetools train aspdc``: train ASPDC and its reblurring network, three stages."""

import click

from lodetools.commands._train_options import run_train_command, train_options


@click.command("aspdc", epilog="""\b
Example:
  lodetools train aspdc --data gopro_ds --recipe aspdc --out runs/aspdc --iters 3000000
  lodetools train aspdc --data tiny_ds --out runs/t --iters 60 --batch 2 --crop 32 --lr 1e-3 \\
      --net-opts width=4,groups=2,num_res=1,reblur_width=4 --workers 0
""")
@train_options
@click.pass_context
def command(ctx, **params):
    """Train ASPDC (Huo et al., CVPR Workshops 2022): three stages from one command.

    Stages (fractions of --iters; --stages deblur=F,reblur=F,consistency=F):
    'deblur' trains the deblurring network with MSE (Eq. 5); 'reblur' trains
    the reblurring network (dynamic 3x3 filters) with MSE against the blurry
    image (Eq. 6); 'consistency' fine-tunes the deblurring network at lr 1e-5
    with MSE + lambda * MSE(reblur(blurry, deblurred), blurry) (Eq. 7,
    lambda 0.1). --loss mse=,lam=,finetune_lr= change the weights and the
    fine-tuning rate; --net-opts width,groups,num_res,reblur_width the sizes
    (defaults: 15.0M + 1.0M parameters). model.pt deblurs with
    'lodetools deblur'. Logs the training-crop PSNR per iteration.
    """
    run_train_command("aspdc", ctx)
