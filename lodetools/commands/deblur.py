"""``lodetools deblur``: deblur images with a trained checkpoint (tiled, any size)."""

from pathlib import Path

import click

from lodetools.commands._dataset_options import layout_option
from lodetools.commands._options import png_option


@click.command("deblur", epilog="""\b
Example:
  lodetools deblur --checkpoint runs/lbag/model.pt --input photos/ --out deblurred/
  lodetools deblur --checkpoint runs/lbag/model.pt --input reloblur_ds --split test \\
      --out preds/ && lodetools eval --pred preds/ --gt reloblur_ds --split test
  lodetools deblur --checkpoint runs/lbag/model.pt --input ReLoBlur --split test --out preds/
  lodetools deblur --checkpoint runs/lbag/model.pt --input shots/ --recursive --out deblurred/
  lodetools deblur --checkpoint model_ckpt_steps_600000.ckpt --tile 0 --input ReLoBlur --out preds/
""")
@click.option("--checkpoint", "-c", required=True, type=click.Path(path_type=Path),
              help="model.pt or checkpoints/last.pt of a `lodetools train` run (it names the network "
                   "and its options), or a checkpoint saved by the authors' code: LBAG (ReLoBlur), "
                   "MIMO-UNet(+), BladeNet, ASPDC (recognised from its contents).")
@click.option("--net", type=click.Choice(["lbag", "mimo-unet", "mimo-unet+", "bladenet", "aspdc"]), default=None,
              help="The network the checkpoint must hold; needed only for a bare state dict whose keys "
                   "do not tell (otherwise a check).")
@click.option("--input", "-i", "inp", required=True, type=click.Path(path_type=Path),
              help="An image file, a folder of images, or a dataset in any layout `lodetools inspect` "
                   "knows (its blurred images of --split).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: <name>.png per image, or <split>/<scene>/<id>.png for a dataset.")
@click.option("--split", default="test", show_default=True,
              help="Dataset split when --input is a dataset; 'all' for every split.")
@layout_option
@click.option("--recursive", "-r", is_flag=True,
              help="A folder of images: read its sub-folders too (output keeps their paths). Sharp images "
                   "and masks (*_sharp, *_gt, sharp/, gt/, GT/, mask/) are never inputs.")
@click.option("--tile", type=click.IntRange(min=0), default=512, show_default=True,
              help="Largest tile side in pixels; each axis is cut into the fewest equal tiles that fit "
                   "(0: whole image at once, as the authors' inference scripts run; tiles differ from it "
                   "only near the seams).")
@click.option("--overlap", type=click.IntRange(min=0), default=32, show_default=True,
              help="Smallest tile overlap in pixels, blended with a linear ramp.")
@click.option("--device", default="auto", show_default=True, help="auto (cuda > mps > cpu) or a torch device.")
@click.option("--amp/--no-amp", default=True, show_default=True, help="fp16 autocast on CUDA (faster; outputs differ slightly from --no-amp and from the CPU).")
@click.option("--overwrite", is_flag=True, help="Redo images whose output already exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@png_option
def command(checkpoint, net, inp, out, split, layout, recursive, tile, overlap, device, amp, overwrite, quiet,
            png_compression):
    """Deblur images with a trained network; outputs are 8-bit PNGs of the input's size.

    The image is padded to the network's multiple and processed in
    overlapping tiles so 2152x1436 images fit in memory; existing outputs
    are skipped (a rerun resumes) unless --overwrite.
    """
    from lodetools.commands._options import params_from_click
    from lodetools.pipelines.deblur import DeblurInputs, DeblurParams, run
    from lodetools.io.images import png_compression_level
    from lodetools.runner import RunOptions

    values = dict(checkpoint=checkpoint, source=inp, split=None if split == "all" else split, layout=layout,
                  recursive=recursive, tile=tile, overlap=overlap, amp=amp, net=net)
    summary = run(params_from_click(DeblurInputs, values), params_from_click(DeblurParams, values),
                  RunOptions(out=out, overwrite=overwrite, quiet=quiet, device=device,
                             png_compression=png_compression_level(png_compression)))
    click.echo(f"deblurred {len(summary.done)} image(s), skipped {len(summary.skipped)} existing, into {out}",
               err=True)
