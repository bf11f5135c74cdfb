"""The ``deblur`` pipeline: run a trained checkpoint over images or a dataset split.

Inputs and outputs:

* a file ``x.jpg`` -> ``<out>/x.png``;
* a folder of images -> ``<out>/<name>.png`` for each (natural order;
  ``recursive``: sub-folders too, as ``<out>/<sub>/<name>.png``); sharp images
  and masks (``*_sharp``, ``gt/``, ``GT/``, ``sharp/``, ``mask/``) are skipped;
* a paired dataset in any layout :mod:`lodetools.io.datasets` reads
  (lodetools' own, GoPro, REDS, RealBlur, HIDE, ReLoBlur, ...) -> its
  blurred images of ``split`` written as ``<out>/<split>/<scene>/<id>.png``
  (the pair key, scene paths kept), the layout ``lodetools eval --pred``
  matches against the ground truth. Nothing is written inside the dataset.

Every output is an 8-bit PNG of the input's size, written atomically; files
already present are skipped unless ``overwrite`` (a rerun resumes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from lodetools.errors import BadConfig, MissingInput, OutputConflict
from lodetools.io.images import IMAGE_EXTENSIONS, list_images, natural_key, read_image, write_image
from lodetools.runner import RunOptions, RunSummary


@dataclass
class Job:
    src: Path
    dst: Path


#: folder names whose images are ground truth or masks, never inputs (case-insensitive)
NOT_INPUT_DIRS = ("sharp", "gt", "target", "mask", "masks")


def is_input_image(rel: Path) -> bool:
    """Whether an image found in a plain folder is a blurred input (not a sharp image or a mask).

    ``*_sharp`` / ``*_gt`` file stems and anything under a ``sharp``, ``gt``,
    ``GT``, ``target``, ``mask(s)`` or ``*_sharp`` folder are left out.
    """
    stem = rel.stem.lower()
    if stem.endswith("_sharp") or stem.endswith("_gt"):
        return False
    return not any(p.lower() in NOT_INPUT_DIRS or p.lower().endswith("_sharp") for p in rel.parts[:-1])


def _dataset_layout(inp: Path, layout: str | None) -> str | None:
    """The layout a folder is read with as a dataset (forced or detected), or None for a folder of images."""
    from lodetools.io.datasets import detect_layout, parse_layout
    if layout is not None:
        return parse_layout(layout)[0]
    try:
        return detect_layout(inp)[0]
    except MissingInput:
        return None


def plan_jobs(inp, out, *, split: str | None = "test", layout: str | None = None,
              recursive: bool = False) -> list[Job]:
    """Input path -> list of (source image, output PNG).

    A folder is a dataset when ``layout`` is given or one is detected
    (:mod:`lodetools.io.datasets`): its blurred images of ``split`` (None:
    every split) go to ``<out>/<split>/<scene>/<id>.png``, scene paths kept.
    Otherwise its images (with ``recursive``, those of its sub-folders too,
    relative paths kept) go to ``<out>/<name>.png``; sharp images and masks
    are never inputs (:func:`is_input_image`).

    Raises
    ------
    MissingInput
        The input does not exist, or holds no images.
    """
    from lodetools.io.paths import confined

    inp, out = Path(inp), Path(out)
    if inp.is_file():
        if inp.suffix.lower() not in IMAGE_EXTENSIONS:
            raise MissingInput(f"not an image file (known: {', '.join(IMAGE_EXTENSIONS)})", inp)
        return [Job(inp, out / f"{inp.stem}.png")]
    if not inp.exists():
        raise MissingInput("input not found", inp)
    name = _dataset_layout(inp, layout)
    if name is not None:
        from lodetools.io.datasets import check_outside
        from lodetools.io.layout import read_pairs
        if name != "lodetools":
            check_outside(inp, out)
        pairs = read_pairs(inp, split=split, require=("blur",), layout=layout)
        return [Job(p.blur, confined(out, f"{p.key}.png")) for p in pairs]
    if recursive:
        files = sorted((p for p in inp.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                        and not any(s.startswith(".") for s in p.relative_to(inp).parts)),
                       key=lambda p: natural_key(p.relative_to(inp).as_posix()))
    else:
        files = list_images(inp)
    if not files:
        raise MissingInput("no images in folder" + ("" if recursive else " (--recursive reads sub-folders)"), inp)
    files = [f for f in files if is_input_image(f.relative_to(inp))]
    if not files:
        raise MissingInput("no blurred images in folder: only sharp images or masks", inp)
    dsts = [out / f.relative_to(inp).with_suffix(".png") for f in files]
    if len(set(dsts)) != len(dsts):
        raise OutputConflict("two inputs share a name stem (e.g. a.png and a.jpg)", inp)
    return [Job(f, d) for f, d in zip(files, dsts)]


def load_model(checkpoint, device: torch.device, net: str | None = None):
    """(model in eval mode, its TrainSpec's predict function, its multiple) from a checkpoint.

    The checkpoint may be lodetools' or the authors' (``net``: the network it
    must hold, for files whose keys do not tell).
    """
    from lodetools.train.checkpoint import load_model as _load
    return _load(checkpoint, device, net=net)


def deblur_files(jobs: list[Job], checkpoint, *, tile: int = 512, overlap: int = 32, device="auto",
                 overwrite: bool = False, amp: bool = True, quiet: bool = False, net: str | None = None,
                 png_compression=None) -> dict:
    """Deblur every job's image; returns counts ``{'written': n, 'skipped': m}``.

    ``png_compression``: how the PNGs are encoded (:func:`lodetools.io.images.encode_image`).
    """
    from lodetools.train.inference import predict_image
    from lodetools.device import resolve_device
    todo = [j for j in jobs if overwrite or not j.dst.exists()]
    if not todo:  # a finished rerun: nothing to load the network for
        if not Path(checkpoint).is_file():
            raise MissingInput("checkpoint not found", checkpoint)
        return {"written": 0, "skipped": len(jobs)}
    dev = resolve_device(device)
    model, predict, multiple = load_model(checkpoint, dev, net=net)
    bar = None
    if not quiet:
        import sys

        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc="deblur", unit="img", file=sys.stderr, disable=not sys.stderr.isatty())
    threads = torch.get_num_threads()
    if dev.type == "cpu":
        # torch's threads wait at every operator's barrier: on busy cores more threads are
        # slower than fewer (lodetools.parallel); decided once, restored afterwards
        from lodetools.parallel import cpu_threads
        torch.set_num_threads(min(threads, cpu_threads()))
    try:
        for j in todo:
            img = read_image(j.src)
            pred = predict_image(model, img, predict=predict, multiple=multiple, tile=tile, overlap=overlap,
                                 device=dev, amp=amp and dev.type == "cuda")
            j.dst.parent.mkdir(parents=True, exist_ok=True)
            write_image(j.dst, pred, bit_depth=8, png_compression=png_compression)
            if bar is not None:
                bar.update(1)
    finally:
        torch.set_num_threads(threads)
        if bar is not None:
            bar.close()
    return {"written": len(todo), "skipped": len(jobs) - len(todo)}


@dataclass(frozen=True)
class DeblurInputs:
    """What ``deblur`` reads.

    Attributes
    ----------
    checkpoint : pathlib.Path
        ``model.pt`` or ``checkpoints/last.pt`` of a ``lodetools train`` run
        (it names the network and its options), or a checkpoint saved by the
        authors' code (LBAG, MIMO-UNet(+), BladeNet, ASPDC; see
        :mod:`lodetools.nets.official`).
    source : pathlib.Path
        An image file, a folder of images, or a paired dataset (its blur
        images of ``split``).
    """

    checkpoint: Path
    source: Path


@dataclass(frozen=True)
class DeblurParams:
    """How ``deblur`` runs the network.

    Attributes
    ----------
    split : str or None
        Dataset split when the source is a dataset (None: every split).
    layout : str, optional
        Force the dataset layout, ``"NAME"`` or ``"NAME:VARIANT"``.
    recursive : bool
        A plain folder's sub-folders are read too.
    tile : int
        Largest tile side in pixels (0: the whole image at once, as the
        authors' inference scripts run); each axis is cut into the fewest
        equal tiles that fit (:func:`lodetools.train.inference.tile_spans`).
        Tiles keep the memory bounded for full-size images (ReLoBlur:
        2152x1436) and change the output only near the seams.
    overlap : int
        Smallest tile overlap in pixels, blended with a linear ramp (smaller than ``tile``).
    amp : bool
        fp16 autocast on CUDA.
    net : str, optional
        The network the checkpoint must hold (a bare state dict whose keys do
        not tell; otherwise a check).
    """

    split: str | None = "test"
    layout: str | None = None
    recursive: bool = False
    tile: int = 512
    overlap: int = 32
    amp: bool = True
    net: str | None = None


def run(inputs: DeblurInputs, params: DeblurParams, opts: RunOptions) -> RunSummary:
    """Deblur every image of ``inputs.source`` into ``opts.out`` (``opts.device``: None or 'auto' picks).

    Outputs already present are skipped unless ``opts.overwrite``.

    Returns
    -------
    RunSummary
        ``done``/``skipped``: output paths relative to ``opts.out``.

    Raises
    ------
    BadConfig
        ``overlap`` not smaller than ``tile``, negative sizes.
    MissingInput
        No input images, or no checkpoint.
    """
    if params.tile < 0 or params.overlap < 0:
        raise BadConfig(f"--tile {params.tile} and --overlap {params.overlap} must be >= 0")
    if params.tile and params.overlap >= params.tile:
        raise BadConfig(f"--overlap {params.overlap} must be smaller than --tile {params.tile}")
    out = Path(opts.out)
    jobs = plan_jobs(inputs.source, out, split=params.split, layout=params.layout, recursive=params.recursive)
    rel = {id(j): j.dst.relative_to(out).as_posix() for j in jobs}
    skipped = [rel[id(j)] for j in jobs if not opts.overwrite and j.dst.exists()]
    deblur_files(jobs, inputs.checkpoint, tile=params.tile, overlap=params.overlap,
                 device=opts.device or "auto", overwrite=opts.overwrite, amp=params.amp, quiet=opts.quiet,
                 net=params.net, png_compression=opts.png_compression)
    skipped_set = set(skipped)
    done = [rel[id(j)] for j in jobs if rel[id(j)] not in skipped_set]
    return RunSummary(done=done, skipped=skipped, out=out)
