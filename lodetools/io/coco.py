"""MS COCO instance segmentation as a source of object cut-outs (the LODE paper: "VOC or COCO").

::

    <root>/annotations/instances_<split>.json     e.g. instances_val2017.json
    <root>/<split>/<file_name>                     e.g. val2017/000000000139.jpg
                                                   (or <root>/images/<split>/, <root>/images/)

An annotation's ``segmentation`` is either a list of polygons (``[x1, y1,
x2, y2, ...]`` in pixel coordinates, a pixel ``(x, y)`` covering
``[x, x+1) x [y, y+1)``) or a run-length encoding ``{"size": [h, w],
"counts": ...}``: alternating runs of 0 and 1 over the image in column-major
order, starting with 0s, given either as a list of ints or as COCO's
compressed string (each run a little-endian base-32 number written 5 bits per
character from ``'0'`` (48), bit 5 = "more characters follow", bit 4 of the
last one the sign; from the fourth run on, each is stored as its difference
from the run two before, as pycocotools' ``rleToString`` writes them). :func:`decode_rle` decodes both; :func:`polygons_to_mask`
sets the pixels whose centre lies inside a polygon.

Crowd annotations (``iscrowd = 1``: a group of objects) are left out by
default, as they are not single objects. Objects are indexed from the JSON
(area and box as annotated, so no mask is decoded) and cut out on demand by
:func:`load_cutout`, which returns the same :class:`lodetools.io.voc.VocCutout`
the VOC reader returns, so ``lbs`` pastes either.

Compared with pycocotools 2.0.11 (``annToMask``; not a dependency of
lodetools): RLE masks decode identically; polygon masks differ only along the
boundary (pycocotools rasterises on a 5x up-sampled grid).

References
----------
.. [1] Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014.
.. [2] COCO data format, https://cocodataset.org/#format-data
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lodetools.errors import BadInput, MissingInput
from lodetools.io.voc import VocCutout, cut_instance


class CocoSource(NamedTuple):
    """Where a COCO split is: its annotation JSON and the folder its ``file_name`` entries are relative to."""

    annotations: Path
    images: Path


class CocoInstanceRef(NamedTuple):
    """One COCO object, as indexed (no pixels); field-compatible with :class:`lodetools.io.voc.InstanceRef`.

    Attributes
    ----------
    image_id : str
        The image's file name without extension.
    instance_id : int
        The annotation id.
    class_id : int
        The COCO category id (1..90).
    bbox : (y0, x0, y1, x1)
        End-exclusive box (from the annotation's ``bbox``; exact after :func:`load_cutout`).
    area : int
        The annotated area in pixels.
    class_name : str
    file_name : str
        Relative to the image folder.
    height, width : int
        The image's size.
    """

    image_id: str
    instance_id: int
    class_id: int
    bbox: tuple
    area: int
    class_name: str
    file_name: str
    height: int
    width: int

    @property
    def source(self) -> str:
        """``<image id>#<annotation id>``, the provenance string of a cut-out."""
        return f"{self.image_id}#{self.instance_id}"


# ----------------------------------------------------------------------------- masks

def rle_string_to_counts(s: str | bytes) -> list[int]:
    """Decode COCO's compressed RLE string into run lengths (format in the module doc).

    Raises
    ------
    ValueError
        If the string ends inside a number or has a character outside the alphabet.
    """
    data = s.encode("ascii") if isinstance(s, str) else bytes(s)
    counts: list[int] = []
    p = 0
    while p < len(data):
        x, k, more = 0, 0, True
        while more:
            if p >= len(data):
                raise ValueError("RLE string ends inside a run length")
            c = data[p] - 48
            if not 0 <= c < 64:
                raise ValueError(f"RLE string has a character {chr(data[p])!r} outside the alphabet")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x -= 1 << (5 * k)   # sign-extend
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def decode_rle(rle: dict) -> np.ndarray:
    """A COCO run-length encoding (compressed or not) as a bool ``(H, W)`` mask.

    Raises
    ------
    ValueError
        If the runs are negative or do not add up to ``H * W``.
    """
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = rle_string_to_counts(counts)
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size and counts.min() < 0:
        raise ValueError("RLE has a negative run length")
    if int(counts.sum()) != h * w:
        raise ValueError(f"RLE runs add up to {int(counts.sum())} pixels, not {h}x{w} = {h * w}")
    values = (np.arange(counts.size) % 2).astype(bool)
    flat = np.repeat(values, counts)
    return np.ascontiguousarray(flat.reshape(w, h).T)


def polygons_to_mask(polygons, height: int, width: int) -> np.ndarray:
    """Fill COCO polygons (``[[x1, y1, x2, y2, ...], ...]``) into a bool ``(H, W)`` mask.

    Vertices are pixel-edge coordinates (pixel ``(x, y)`` spans
    ``[x, x+1) x [y, y+1)``); a pixel is set when its centre ``(x + 0.5, y + 0.5)``
    is inside a polygon (even-odd rule per polygon, the union over polygons),
    found by a scanline over the rows: each row's edge crossings, sorted, bound
    the filled spans.
    """
    h, w = int(height), int(width)
    mask = np.zeros((h, w), bool)
    cy = np.arange(h) + 0.5
    cx = np.arange(w) + 0.5
    for poly in polygons:
        xy = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        if len(xy) < 3:
            continue
        x0, y0 = xy[:, 0], xy[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        fill = np.zeros((h, w), bool)
        # an edge crosses row centre c when min(y0, y1) <= c < max(y0, y1) (half-open: vertices count once)
        lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
        rows = np.nonzero((cy[:, None] >= lo[None]) & (cy[:, None] < hi[None]))
        if rows[0].size == 0:
            continue
        r, e = rows
        t = (cy[r] - y0[e]) / (y1[e] - y0[e])
        xs = x0[e] + t * (x1[e] - x0[e])
        order = np.lexsort((xs, r))
        r, xs = r[order], xs[order]
        for row in np.unique(r):
            xr = xs[r == row]
            for a, b in zip(xr[0::2], xr[1::2]):
                fill[row] |= (cx >= a) & (cx < b)
        mask |= fill
    return mask


def annotation_mask(segmentation, height: int, width: int) -> np.ndarray:
    """The mask of one annotation's ``segmentation`` (polygons or RLE) as bool ``(H, W)``.

    Raises
    ------
    ValueError
        Malformed RLE, or an RLE of another size than the image.
    """
    if isinstance(segmentation, list):
        return polygons_to_mask(segmentation, height, width)
    mask = decode_rle(segmentation)
    if mask.shape != (int(height), int(width)):
        raise ValueError(f"RLE is {mask.shape[1]}x{mask.shape[0]} but the image {width}x{height}")
    return mask


# ----------------------------------------------------------------------------- files

def _image_dir(root: Path, split: str) -> Path | None:
    for img_dir in (root / split, root / "images" / split, root / "images"):
        if img_dir.is_dir():
            return img_dir
    return None


def find_coco(root, split: str) -> CocoSource:
    """``(annotation JSON, image folder)`` of a COCO split.

    Parameters
    ----------
    root : str or os.PathLike
        The folder holding ``annotations/`` (or ``annotations/`` itself).
    split : str
        E.g. ``val2017``: reads ``instances_val2017.json``.

    Raises
    ------
    MissingInput
        No such JSON or image folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingInput("COCO folder not found", root)
    if root.name == "annotations":
        root = root.parent
    ann = root / "annotations" / f"instances_{split}.json"
    if not ann.is_file():
        have = sorted(p.name for p in (root / "annotations").glob("instances_*.json"))
        raise MissingInput(f"no instances_{split}.json" + (f" (found: {', '.join(have)})" if have else ""),
                           root / "annotations")
    img_dir = _image_dir(root, split)
    if img_dir is None:
        raise MissingInput(f"no image folder {split}/ for {ann.name}", root / split)
    return CocoSource(ann, img_dir)


def coco_source(annotations, images=None) -> CocoSource:
    """A COCO split given by its annotation file, as COCO ships it.

    Parameters
    ----------
    annotations : str or os.PathLike
        An ``instances_<split>.json`` file, e.g. ``annotations/instances_train2017.json``.
    images : str or os.PathLike, optional
        The image folder. Default: ``<root>/<split>/`` (then ``<root>/images/<split>/``,
        ``<root>/images/``), ``<root>`` being the folder above ``annotations/``.

    Raises
    ------
    MissingInput
        No such file or folder, or no image folder found.
    """
    ann = Path(annotations)
    if not ann.is_file():
        raise MissingInput("COCO annotation file not found" + (" (give the instances_<split>.json file)"
                                                              if ann.is_dir() else ""), ann)
    if images is not None:
        if not Path(images).is_dir():
            raise MissingInput("COCO image folder not found", images)
        return CocoSource(ann, Path(images))
    split = ann.stem[len("instances_"):] if ann.stem.startswith("instances_") else ann.stem
    root = ann.parent.parent if ann.parent.name == "annotations" else ann.parent
    img_dir = _image_dir(root, split)
    if img_dir is None:
        raise MissingInput(f"no image folder {split}/ for {ann.name} (give the image folder)", root / split)
    return CocoSource(ann, img_dir)


@lru_cache(maxsize=2)
def _load_json(path: str, mtime: float) -> dict:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"cannot read COCO annotations ({exc.__class__.__name__})", path) from None
    if not isinstance(doc, dict) or not all(k in doc for k in ("images", "annotations", "categories")):
        raise BadInput("not a COCO instances file (needs images, annotations, categories)", path)
    return doc


def read_coco(path) -> dict:
    """The parsed annotation JSON (cached while the file is unchanged)."""
    path = Path(path)
    return _load_json(str(path), path.stat().st_mtime)


@lru_cache(maxsize=2)
def _by_id(path: str, mtime: float) -> dict:
    return {a["id"]: a for a in _load_json(path, mtime)["annotations"]
            if isinstance(a, dict) and isinstance(a.get("id"), int)}


def _annotation(path: Path, annotation_id: int) -> dict | None:
    """One annotation by id (the index is built once per file, as COCO train2017 holds 860k)."""
    return _by_id(str(path), path.stat().st_mtime).get(annotation_id)


def index_instances(root, *, split: str = "val2017", min_area: int = 1000, include_crowd: bool = False,
                    skipped: list | None = None) -> list[CocoInstanceRef]:
    """Every object of a COCO split with an annotated area of at least ``min_area`` pixels.

    Parameters
    ----------
    root : str, os.PathLike or CocoSource
        See :func:`find_coco`; a :class:`CocoSource` (:func:`coco_source`) is used as it is.
    split : str
        Used with a root folder only.
    min_area : int
    include_crowd : bool
        Keep ``iscrowd`` annotations (groups of objects).
    skipped : list, optional
        If given, a bad annotation (unknown image or category, image file
        missing) is skipped and its message appended here instead of raised.

    Returns
    -------
    list of CocoInstanceRef
        In image then annotation id order.

    Raises
    ------
    MissingInput, BadInput
        Missing files or malformed annotations (unless ``skipped``); no object at all.
    """
    ann_path, img_dir = root if isinstance(root, CocoSource) else find_coco(root, split)
    doc = read_coco(ann_path)
    try:
        images = {im["id"]: im for im in doc["images"]}
        cats = {c["id"]: c.get("name", str(c["id"])) for c in doc["categories"]}
        annotations = sorted(doc["annotations"], key=lambda a: (int(a.get("image_id", 0)), int(a.get("id", 0))))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BadInput(f"not a COCO instances file ({exc.__class__.__name__}: {exc})", ann_path) from None
    refs = []
    present: dict = {}
    for a in annotations:
        try:
            if a.get("iscrowd", 0) and not include_crowd:
                continue
            if float(a.get("area", 0)) < max(1, min_area):
                continue
            im = images.get(a.get("image_id"))
            if im is None:
                raise BadInput(f"annotation {a.get('id')} names unknown image {a.get('image_id')}", ann_path)
            if a.get("category_id") not in cats:
                raise BadInput(f"annotation {a.get('id')} has unknown category {a.get('category_id')}", ann_path)
            fn = im["file_name"]
            if fn not in present:
                present[fn] = (img_dir / fn).is_file()
            if not present[fn]:
                raise MissingInput(f"image {fn} is annotated but missing", img_dir / fn)
            x, y, w, h = (float(v) for v in a["bbox"])
            H, W = int(im["height"]), int(im["width"])
            box = (max(0, math.floor(y)), max(0, math.floor(x)), min(H, math.ceil(y + h)), min(W, math.ceil(x + w)))
            refs.append(CocoInstanceRef(Path(fn).stem, int(a["id"]), int(a["category_id"]), box,
                                        int(round(float(a["area"]))), cats[a["category_id"]], fn, H, W))
        except (MissingInput, BadInput) as exc:
            if skipped is None:
                raise
            skipped.append(exc.message)
        except (KeyError, TypeError, ValueError) as exc:
            err = BadInput(f"annotation {a.get('id')} is malformed ({exc.__class__.__name__}: {exc})", ann_path)
            if skipped is None:
                raise err from None
            skipped.append(err.message)
    if not refs:
        raise BadInput(f"no COCO object of at least {min_area} pixels", ann_path)
    return refs


def load_cutout(root, ref: CocoInstanceRef, *, split: str = "val2017", pad: int = 1) -> VocCutout:
    """Decode an indexed object's mask, read its image and cut it out (as the VOC reader does).

    ``root`` and ``split`` as in :func:`index_instances`.

    Raises
    ------
    MissingInput, BadInput
        Missing or corrupt image, a malformed or empty mask, an image of another size.
    """
    from lodetools.io.images import read_image

    ann_path, img_dir = root if isinstance(root, CocoSource) else find_coco(root, split)
    ann = _annotation(Path(ann_path), ref.instance_id)
    if ann is None:
        raise BadInput(f"annotation {ref.instance_id} not found (changed since indexing?)", ann_path)
    image = read_image(img_dir / ref.file_name)
    if image.shape[:2] != (ref.height, ref.width):
        raise BadInput(f"image is {image.shape[1]}x{image.shape[0]} but annotated as {ref.width}x{ref.height}",
                       img_dir / ref.file_name)
    try:
        mask = annotation_mask(ann["segmentation"], ref.height, ref.width)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"annotation {ref.instance_id}: bad segmentation ({exc})", ann_path) from None
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if ys.size == 0:
        raise BadInput(f"annotation {ref.instance_id}: empty mask", ann_path)
    exact = ref._replace(bbox=(int(ys[0]), int(xs[0]), int(ys[-1]) + 1, int(xs[-1]) + 1))
    cut = cut_instance(image, mask.astype(np.uint8), exact._replace(instance_id=1), pad=pad)
    cut.source = ref.source
    return cut
