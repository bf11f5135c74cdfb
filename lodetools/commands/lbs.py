"""``lodetools lbs``: BladeNet's Local Blur Synthesis (LODE section 4.1)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lodetools.commands._options import params_from_click, png_option, run_options, run_options_from
from lodetools.recipe import resolve_params

_P = dict(show_default=True)


@click.command("lbs")
@click.option("--voc", type=click.Path(path_type=Path), default=None,
              help="PASCAL VOC 2012 folder (VOCdevkit/VOC2012, VOCdevkit, or their parent). "
                   "Exactly one of --voc and --coco.")
@click.option("--coco", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Instead of --voc: a COCO instances file as COCO ships it "
                   "(annotations/instances_train2017.json); polygon and RLE masks, crowd regions left out.")
@click.option("--coco-images", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The COCO images folder; default: <root>/<split>/ beside annotations/ "
                   "(train2017/ for instances_train2017.json).")
@click.option("--backgrounds", required=True, type=click.Path(path_type=Path),
              help="Sharp backgrounds: any folder of images (recursive; only the images under "
                   "'sharp'/'*_sharp' folders when there are such) or a lodetools paired dataset.")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Number of samples to synthesise (required; a recipe may give it).")
@click.option("--voc-split", type=click.Choice(["train", "val", "trainval", "all"]), default="trainval", **_P,
              help="VOC segmentation list the objects come from ('all': every SegmentationObject PNG); "
                   "with --coco the split is the annotation file.")
@click.option("--min-area", type=click.IntRange(min=1), default=1000, **_P,
              help="Minimum object area in pixels (VOC: void band excluded; COCO: the annotated area); "
                   "smaller instances are dropped.")
@click.option("--moving", type=click.IntRange(min=1), default=2, **_P,
              help="Moving objects per sample (paper: 2).")
@click.option("--static-min", type=click.IntRange(min=0), default=1, **_P, help="Fewest static objects per sample.")
@click.option("--static-max", type=click.IntRange(min=0), default=2, **_P, help="Most static objects per sample.")
@click.option("--frames-min", type=click.IntRange(min=1), default=7, **_P,
              help="Shortest trajectory L (odd; paper 7, authors' code 5).")
@click.option("--frames-max", type=click.IntRange(min=1), default=13, **_P,
              help="Longest trajectory L (odd; paper 13, authors' code 21).")
@click.option("--translate-px", type=click.FloatRange(min=0), default=1.0, **_P,
              help="Translation per step and axis: 0 or this many pixels (code: 1).")
@click.option("--signed-translation/--positive-translation", default=False, **_P,
              help="Random direction per object and axis, or always towards +x/+y as the authors' code.")
@click.option("--scale-step", type=click.FloatRange(min=0), default=0.01, **_P,
              help="Relative scale change per step, uniform in +-this (code: 1 %).")
@click.option("--rotate-deg", type=click.FloatRange(min=0), default=0.3, **_P,
              help="Rotation per step in degrees, uniform in +-this (code: 0.3).")
@click.option("--p-scale", type=click.FloatRange(0, 1), default=0.5, **_P, help="Probability that a step scales.")
@click.option("--p-rotate", type=click.FloatRange(0, 1), default=0.5, **_P, help="Probability that a step rotates.")
@click.option("--object-scale", type=click.FloatRange(min=0, min_open=True), default=1.2, **_P,
              help="Rescaling of every cut-out (paper: 1.2).")
@click.option("--footprint-threshold", type=click.FloatRange(0, 1, max_open=True), default=0.0, **_P,
              help="A pixel is in a moving object's footprint (the mask) where its alpha exceeds this.")
@click.option("--crf", default="gamma:2.2", **_P,
              help="Camera response: gamma:G, srgb, linear or an inverse-CRF table file.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="train", **_P,
              help="Split the samples are written to.")
@click.option("--scene", default="lbs", **_P, help="Scene folder name of the samples.")
@click.option("--bit-depth", type=click.Choice(["8", "16"]), default="8", **_P, help="PNG bit depth of blur/sharp.")
@run_options
@png_option
@click.pass_context
def command(ctx, **_):
    """Synthesise locally blurred pairs from VOC or COCO objects moving over sharp backgrounds.

    BladeNet's Local Blur Synthesis (LODE paper, section 4.1): objects cut
    from PASCAL VOC 2012 (SegmentationObject instances, the 255 boundary band
    left out) or COCO (--coco: instance polygons or RLE masks, crowd regions
    left out), rescaled by 1.2, are pasted on a sharp background. --moving of
    them (2) follow a random trajectory of L frames (L odd in
    [--frames-min, --frames-max]); at each step they shift by 0 or
    --translate-px per axis and may scale and rotate slightly, in a random
    order. Static objects
    are pasted at fixed places (behind the moving ones). Frames are composited
    in linear light; blur = CRF(mean of frames), sharp = the middle frame,
    mask = union of the moving objects' footprints over all frames. Writes the
    paired layout (blur/, sharp/, mask/) with the objects' VOC or COCO
    sources (<image>#<instance or annotation id>) and class ids in manifest.jsonl. Objects larger than a background are skipped
    for it; a background that no object fits in fails its sample.

    The recipe 'bladenet-lbs' holds the paper's values and cites them.

    Example (the mini VOC of the synthetic world, any folder of sharp images):

    \b
      lodetools sim voc --out sim --seed 0
      lodetools lbs --voc sim --backgrounds sharp-frames/ --out lbs-out \\
          --count 100 --recipe bladenet-lbs --workers 2
      lodetools lbs --coco coco/annotations/instances_train2017.json \\
          --backgrounds REDS/train/train_sharp --out lbs-coco --count 10000
    """
    from lodetools.pipelines.lbs import LbsInputs, LbsParams, run
    from lodetools.runner import report

    values, recipe = resolve_params(ctx)
    summary = run(params_from_click(LbsInputs, values), params_from_click(LbsParams, values),
                  run_options_from(values, desc="lbs", recipe=recipe))
    sys.exit(report(summary, what="samples"))
