"""The ``deblur`` pipeline: run a trained checkpoint over images or a dataset split.

Inputs and outputs:

* a file ``x.jpg`` -> ``<out>/x.png``;
* a folder of images -> ``<out>/<name>.png`` for each (natural order);
* a paired dataset (a folder with ``dataset.json``) -> its ``blur`` images
  of ``split`` written as ``<out>/<split>/<scene>/<id>.png`` (the item key),
  the layout ``lodetools eval --pred`` matches against the ground truth.

Every output is an 8-bit PNG of the input's size, written atomically; files
already present are skipped unless ``overwrite`` (a rerun resumes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from lodetools.errors import BadConfig, MissingInput, OutputConflict
from lodetools.io.images import IMAGE_EXTENSIONS, list_images, read_image, write_image
from lodetools.runner import RunOptions, RunSummary


@dataclass
class Job:
    src: Path
    dst: Path


def plan_jobs(inp, out, *, split: str = "test") -> list[Job]:
    """Input path -> list of (source image, output PNG).

    Raises
    ------
    MissingInput
        The input does not exist, or holds no images.
    """
    inp, out = Path(inp), Path(out)
    if inp.is_file():
        if inp.suffix.lower() not in IMAGE_EXTENSIONS:
            raise MissingInput(f"not an image file (known: {', '.join(IMAGE_EXTENSIONS)})", inp)
        return [Job(inp, out / f"{inp.stem}.png")]
    if not inp.exists():
        raise MissingInput("input not found", inp)
    if (inp / "dataset.json").is_file():
        from lodetools.io.layout import read_pairs
        pairs = read_pairs(inp, split=split, require=("blur",))
        return [Job(p.blur, out / f"{p.key}.png") for p in pairs]
    files = list_images(inp)
    if not files:
        raise MissingInput("no images in folder", inp)
    dsts = [out / f"{f.stem}.png" for f in files]
    if len(set(dsts)) != len(dsts):
        raise OutputConflict("two inputs share a name stem (e.g. a.png and a.jpg)", inp)
    return [Job(f, d) for f, d in zip(files, dsts)]


def load_model(checkpoint, device: torch.device):
    """(model in eval mode, its TrainSpec's predict function, its multiple) from a checkpoint."""
    from lodetools.train.checkpoint import load_model as _load
    return _load(checkpoint, device)


def deblur_files(jobs: list[Job], checkpoint, *, tile: int = 512, overlap: int = 32, device="auto",
                 overwrite: bool = False, amp: bool = True, quiet: bool = False) -> dict:
    """Deblur every job's image; returns counts ``{'written': n, 'skipped': m}``."""
    from lodetools.train.inference import predict_image
    from lodetools.device import resolve_device
    dev = resolve_device(device)
    model, predict, multiple = load_model(checkpoint, dev)
    todo = [j for j in jobs if overwrite or not j.dst.exists()]
    bar = None
    if not quiet:
        import sys

        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc="deblur", unit="img", file=sys.stderr, disable=not sys.stderr.isatty())
    for j in todo:
        img = read_image(j.src)
        pred = predict_image(model, img, predict=predict, multiple=multiple, tile=tile, overlap=overlap,
                             device=dev, amp=amp and dev.type == "cuda")
        j.dst.parent.mkdir(parents=True, exist_ok=True)
        write_image(j.dst, pred, bit_depth=8)
        if bar is not None:
            bar.update(1)
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
        (it names the network and its options).
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
    split : str
        Dataset split when the source is a dataset.
    tile : int
        Tile side in pixels (0: the whole image at once); tiles keep the
        memory bounded for full-size images (ReLoBlur: 2152x1436).
    overlap : int
        Tile overlap in pixels, blended with a linear ramp (smaller than ``tile``).
    amp : bool
        fp16 autocast on CUDA.
    """

    split: str = "test"
    tile: int = 512
    overlap: int = 32
    amp: bool = True


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
    jobs = plan_jobs(inputs.source, out, split=params.split)
    rel = {id(j): j.dst.relative_to(out).as_posix() for j in jobs}
    skipped = [rel[id(j)] for j in jobs if not opts.overwrite and j.dst.exists()]
    deblur_files(jobs, inputs.checkpoint, tile=params.tile, overlap=params.overlap,
                 device=opts.device or "auto", overwrite=opts.overwrite, amp=params.amp, quiet=opts.quiet)
    done = [rel[id(j)] for j in jobs if rel[id(j)] not in set(skipped)]
    return RunSummary(done=done, skipped=skipped, out=out)
