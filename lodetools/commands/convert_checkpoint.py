"""``lodetools convert-checkpoint``: between lodetools' checkpoint format and the authors'."""

from pathlib import Path

import click


@click.command("convert-checkpoint", epilog="""\b
Examples:
  lodetools convert-checkpoint model_ckpt_steps_600000.ckpt lbag.pt      # ReLoBlur's LBAG -> lodetools
  lodetools convert-checkpoint runs/lbag/model.pt lbag_official.ckpt     # and back
  lodetools convert-checkpoint DeblurringNet_FT.pth aspdc.pt --reblur ReBlurringNet.pth
""")
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", type=click.Choice(["lodetools", "official"]), default=None,
              help="Format written; default: lodetools for an official file, official for a lodetools file.")
@click.option("--net", type=click.Choice(["lbag", "mimo-unet", "mimo-unet+", "bladenet", "aspdc", "aspdc-reblur"]),
              default=None,
              help="The network SRC must hold; needed only for a bare state dict whose keys do not tell "
                   "(otherwise a check).")
@click.option("--reblur", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="ASPDC: the official reblurring net's file (ReBlurringNet.pth) to join to SRC; the "
                   "result is the deblurring + reblurring pair `lodetools train aspdc` fine-tunes.")
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
def command(src, dst, to, net, reblur, overwrite):
    """Convert a checkpoint SRC into DST, in lodetools' format or the authors'.

    Official formats: LBAG (ReLoBlur: {'global_step', 'optimizer_states',
    'state_dict': {'model'}}, legacy serialisation), MIMO-UNet and MIMO-UNet+
    ({'model'}), BladeNet (DataParallel state dict, 'module.' keys), ASPDC
    ({'epoch', 'deblurring_state_dict'}, the reblurring net's
    {'blurring_state_dict'}; one file with both keys serves both official
    loaders). The weights are renamed, never changed: both give the same
    output. ASPDC's official weights work on [-1, 1] data; lodetools records
    that as the network option signed=true.
    """
    from lodetools.train.checkpoint import convert_checkpoint
    info = convert_checkpoint(src, dst, to=to, net=net, reblur=reblur, overwrite=overwrite)
    click.echo(f"wrote {info['net']} in the {info['to']} format (read as {info['from']}) to {dst}", err=True)
