"""The ``lbs`` pipeline: BladeNet's Local Blur Synthesis over a VOC (or COCO) and a folder of backgrounds.

Inputs are the objects' segmentation dataset, a PASCAL VOC 2012 folder (see
:mod:`lodetools.io.voc`) or a COCO instances file and its images (the LODE
paper: "VOC or COCO"; see :mod:`lodetools.io.coco`), and sharp backgrounds: any folder of images (searched recursively; if some
images sit in folders named ``sharp`` or ``*_sharp``, as in GoPro/REDS, only
those are used) or a paired dataset written by lodetools (its ``sharp/``
images). Every sample is one work item: it picks a background, the moving and
static objects, synthesises the pair (:func:`lodetools.synth.lbs.local_blur_sample`)
and writes ``blur/``, ``sharp/`` and ``mask/`` in the paired layout, with the
VOC (``<image>#<instance>``) or COCO (``<image>#<annotation id>``) sources and
class ids of the objects in the manifest provenance.

A bad VOC or COCO entry (missing image, corrupt or inconsistent labels) stops the
run with an error naming it, or with ``--on-error skip`` is left out with a
warning. Objects that do not fit in the chosen background (after the 1.2
rescale) are skipped for that background; a background that no object fits in fails its
sample with a :class:`~lodetools.errors.BadInput` naming it (``--on-error
skip`` goes on with the other samples).
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from lodetools.color.crf import CRF, parse_crf
from lodetools.errors import BadConfig, BadInput, MissingInput
from lodetools.io.images import IMAGE_EXTENSIONS, natural_key, read_image
from lodetools.io.layout import item_key, read_pairs, write_pair
from lodetools.io.manifest import DATASET_JSON, write_dataset_json
from lodetools.io import coco as coco_io
from lodetools.io import voc as voc_io
from lodetools.io.coco import CocoSource
from lodetools.io.voc import InstanceRef
from lodetools.runner import (RunOptions, RunSummary, WorkItem, check_output, png_setting, recorded_parameters,
                              run_items)
from lodetools.synth.lbs import LBSParams, linear_cutout, local_blur_sample, scaled_shape

COMMAND = "lbs"
#: zero-alpha margin of every cut-out (see :func:`lodetools.io.voc.cut_instance`)
PAD = 1


def _is_sharp_dir(name: str) -> bool:
    """``sharp``, ``gt``/``GT`` (RealBlur, HIDE) or ``*_sharp`` (REDS ``train_sharp``)."""
    low = name.lower()
    return low in ("sharp", "gt") or low.endswith("_sharp")


def find_backgrounds(folder) -> list[Path]:
    """Background images: a paired dataset's sharp images or every image under a folder.

    Parameters
    ----------
    folder : str or os.PathLike
        A lodetools paired dataset (has ``dataset.json``), or any folder of
        images (searched recursively, hidden entries skipped). When some images
        are in folders named ``sharp`` or ``*_sharp`` (GoPro, REDS) only those
        are taken.

    Returns
    -------
    list of pathlib.Path
        In natural order of their relative paths.

    Raises
    ------
    MissingInput
        If the folder does not exist or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInput("backgrounds folder not found", folder)
    if (folder / DATASET_JSON).is_file():
        return [p.sharp for p in read_pairs(folder, require=("sharp",))]
    paths = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).parts
        if p.suffix.lower() in IMAGE_EXTENSIONS and not any(s.startswith(".") for s in rel) and p.is_file():
            paths.append(p)
    sharp = [p for p in paths if any(_is_sharp_dir(s) for s in p.relative_to(folder).parts[:-1])]
    paths = sharp or paths
    if not paths:
        raise MissingInput("no images in the backgrounds folder", folder)
    return sorted(paths, key=lambda p: natural_key(p.relative_to(folder).as_posix()))


def instance_shapes(refs: list[InstanceRef], scale: float) -> np.ndarray:
    """``(N, 2)`` int array: each instance's cut-out ``(h, w)`` after rescaling."""
    out = np.zeros((len(refs), 2), np.int64)
    for i, r in enumerate(refs):
        y0, x0, y1, x1 = r.bbox
        out[i] = scaled_shape((y1 - y0 + 2 * PAD, x1 - x0 + 2 * PAD), scale)
    return out


def _centre(matrix: np.ndarray, shape) -> list[float]:
    h, w = shape
    c = np.asarray(matrix) @ np.array([(w - 1) / 2.0, (h - 1) / 2.0, 1.0])
    return [round(float(c[0]), 3), round(float(c[1]), 3)]


def _source_kind(objects) -> str:
    return "coco" if isinstance(objects, CocoSource) else "voc"


def load_object(objects, ref):
    """Cut out an indexed object from its source: a VOC2012 folder or a :class:`~lodetools.io.coco.CocoSource`."""
    io = coco_io if isinstance(objects, CocoSource) else voc_io
    return io.load_cutout(objects, ref, pad=PAD)


def make_sample(item: WorkItem, rng: np.random.Generator, *, out, objects, refs, shapes, backgrounds,
                bg_root, params: LBSParams, crf: CRF, split: str, scene: str, bit_depth: int,
                png_compression=None) -> dict:
    """Synthesise and write one sample; return its manifest record.

    ``objects`` is the segmentation source the ``refs`` were indexed from (see :func:`load_object`).

    Raises
    ------
    BadInput
        If no object fits in the chosen background, or an input is corrupt.
    """
    kind = _source_kind(objects)
    bg_path = Path(backgrounds[int(rng.integers(len(backgrounds)))])
    background = read_image(bg_path)
    H, W = background.shape[:2]
    fitting = np.nonzero((shapes[:, 0] <= H) & (shapes[:, 1] <= W))[0]
    if fitting.size == 0:
        h, w = shapes[np.argmin(shapes.prod(axis=1))]
        raise BadInput(f"no {kind.upper()} instance fits in this {W}x{H} background (the smallest, rescaled by "
                       f"{params.object_scale:g}, is {w}x{h})", bg_path)
    n_static = int(rng.integers(params.static_min, params.static_max + 1))
    n = params.moving + n_static
    picks = rng.choice(fitting, size=n, replace=bool(fitting.size < n))
    cuts = []
    for j in picks:
        vc = load_object(objects, refs[j])
        cuts.append(linear_cutout(vc.rgb, vc.alpha, crf, scale=params.object_scale, source=vc.source))
    moving, static = cuts[:params.moving], cuts[params.moving:]
    sample = local_blur_sample(rng, crf.to_linear(background), moving, static, params=params, crf=crf)
    rec = write_pair(out, split, scene, item.payload,
                     {"blur": sample.blur, "sharp": sample.sharp, "mask": sample.mask}, bit_depth=bit_depth,
                     png_compression=png_compression)
    objects = []
    for k, (j, c) in enumerate(zip(picks, cuts)):
        ref = refs[j]
        o = {"role": "moving" if k < params.moving else "static", kind: ref.source,
             "class_id": ref.class_id, "class_name": ref.class_name,
             "size": [int(c.alpha.shape[1]), int(c.alpha.shape[0])]}
        if k < params.moving:
            traj = sample.trajectories[k]
            o["start"], o["end"] = _centre(traj[0], c.alpha.shape), _centre(traj[-1], c.alpha.shape)
        else:
            o["position"] = _centre(sample.static_poses[k - params.moving], c.alpha.shape)
        objects.append(o)
    try:
        bg_name = bg_path.relative_to(bg_root).as_posix()
    except ValueError:
        bg_name = str(bg_path)
    rec["provenance"] = {
        "background": bg_name, "size": [W, H], "frames": sample.n_frames, "crf": crf.name,
        "class_ids": [o["class_id"] for o in objects if o["role"] == "moving"],
        "static_class_ids": [o["class_id"] for o in objects if o["role"] == "static"],
        "objects": objects, "blurred_fraction": round(float(sample.mask.mean()), 6),
    }
    return rec


@dataclass(frozen=True)
class LbsInputs:
    """What ``lbs`` reads.

    Attributes
    ----------
    voc : pathlib.Path or None
        PASCAL VOC 2012 folder (``VOCdevkit/VOC2012``, ``VOCdevkit``, or their parent).
    backgrounds : pathlib.Path
        Sharp backgrounds: a folder of images or a paired dataset (:func:`find_backgrounds`).
    coco : pathlib.Path, optional
        Instead of ``voc``: a COCO ``instances_<split>.json`` (:func:`lodetools.io.coco.coco_source`).
    coco_images : pathlib.Path, optional
        The COCO images folder; default ``<root>/<split>/`` beside ``annotations/``.
    """

    voc: Path | None
    backgrounds: Path
    coco: Path | None = None
    coco_images: Path | None = None


@dataclass(frozen=True)
class LbsParams:
    """What ``lbs`` computes (BladeNet's Local Blur Synthesis, LODE section 4.1).

    Attributes
    ----------
    count : int
        Number of samples to synthesise (required).
    synthesis : LBSParams
        Objects and their motion per sample (paper values, then the authors' code).
    voc_split : {'train', 'val', 'trainval', 'all'}
        VOC segmentation list the objects come from (``all``: every
        SegmentationObject PNG); a COCO split is its annotation file.
    min_area : int
        Minimum object area in pixels (VOC: void band excluded; COCO: the annotated area).
    crf : str
        Camera response: ``gamma:G``, ``srgb``, ``linear`` or an inverse-CRF
        table file; frames are composited in linear light, blur = CRF(mean).
    split : {'train', 'val', 'test'}
        Split the samples are written to.
    scene : str
        Scene folder name of the samples.
    bit_depth : {8, 16}
        PNG bit depth of blur/sharp.
    """

    count: int | None = None
    synthesis: LBSParams = LBSParams()
    voc_split: Literal["train", "val", "trainval", "all"] = "trainval"
    min_area: int = 1000
    crf: str = "gamma:2.2"
    split: Literal["train", "val", "test"] = "train"
    scene: str = "lbs"
    bit_depth: Literal[8, 16] = 8


def run(inputs: LbsInputs, params: LbsParams, opts: RunOptions) -> RunSummary:
    """Index the objects (VOC or COCO), find the backgrounds, synthesise ``params.count`` samples into ``opts.out``.

    Returns
    -------
    RunSummary
        ``info['voc_skipped']``: VOC or COCO entries left out (with ``on_error='skip'``).

    Raises
    ------
    BadConfig
        No or a bad ``count``, bad synthesis parameters, not exactly one of ``voc`` and ``coco``
        (``coco_images`` without ``coco``).
    OutputConflict
        ``opts.out`` holds a run with other parameters (without ``overwrite``).
    """
    if params.count is None or int(params.count) < 1:
        raise BadConfig("--count must be given (a positive number of samples)")
    lp = params.synthesis.check()
    crf = parse_crf(params.crf)
    if (inputs.voc is None) == (inputs.coco is None):
        raise BadConfig("give exactly one segmentation source: --voc DIR or --coco INSTANCES_JSON")
    if inputs.coco_images is not None and inputs.coco is None:
        raise BadConfig("--coco-images needs --coco")
    bad: list | None = [] if opts.on_error == "skip" else None
    if inputs.coco is not None:
        objects = coco_io.coco_source(inputs.coco, inputs.coco_images)
        refs = coco_io.index_instances(objects, min_area=int(params.min_area), skipped=bad)
        read = {"coco": inputs.coco, "coco_images": objects.images}
    else:
        objects = voc_io.find_voc_root(inputs.voc)
        refs = voc_io.index_instances(objects, split=params.voc_split, min_area=int(params.min_area), skipped=bad)
        read = {"voc": inputs.voc}
    kind = _source_kind(objects)
    for msg in bad or ():
        print(f"warning: skipped {kind.upper()} entry: {msg}", file=sys.stderr)
    bg_root = Path(inputs.backgrounds)
    backgrounds = find_backgrounds(bg_root)
    recorded = recorded_parameters(params, opts, **read, backgrounds=inputs.backgrounds)
    check_output(opts.out, COMMAND, recorded, overwrite=opts.overwrite)
    split, scene = params.split, params.scene
    items = [WorkItem(item_key(split, scene, f"{i:06d}"), f"{i:06d}") for i in range(int(params.count))]
    fn = functools.partial(make_sample, out=opts.out, objects=objects, refs=refs,
                           shapes=instance_shapes(refs, lp.object_scale), backgrounds=backgrounds,
                           bg_root=bg_root, params=lp, crf=crf, split=split, scene=scene,
                           bit_depth=int(params.bit_depth), png_compression=opts.png_compression)
    classes = sorted({r.class_id for r in refs})
    summary = run_items(items, fn, opts, finish=lambda summary: write_dataset_json(
        opts.out, command=COMMAND, params=recorded, recipe=opts.recipe, counts={"pairs": len(summary.records)},
        extra={"sources": {kind: str(objects.annotations if kind == "coco" else objects),
                           f"{kind}_instances": len(refs), f"{kind}_classes": classes,
                           "backgrounds": str(bg_root), "background_images": len(backgrounds)},
               "png_compression": png_setting(opts)}))
    summary.out = Path(opts.out)
    summary.info = {"voc_skipped": list(bad or [])}
    return summary
