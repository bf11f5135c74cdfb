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
from the run two before, as pycocotools' ``rleToString`` writes them). :func:`decode_rle` decodes both;
:func:`polygons_to_mask` rasterises polygons as pycocotools does (on a 5x finer grid, :func:`polygon_toggles`).

Crowd annotations (``iscrowd = 1``: a group of objects) are left out by
default, as they are not single objects. Objects are indexed from the JSON
(area and box as annotated, so no mask is decoded) and cut out on demand by
:func:`load_cutout`, which returns the same :class:`lodetools.io.voc.VocCutout`
the VOC reader returns, so ``lbs`` pastes either.

Compared with pycocotools 2.0.11 (``annToMask``; not a dependency of
lodetools): RLE and polygon masks are identical, pixel for pixel.

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


#: pycocotools' up-sampling factor for polygons (``scale`` in ``rleFrPoly``); odd, so that a pixel
#: column's centre falls on a grid line: column ``c`` is grid column ``5 c + 2``
_SCALE = 5
_CENTRE = (_SCALE - 1) // 2
#: most grid points walked per polygon (about 30 MB of work arrays); COCO polygons need a few thousand
_MAX_WALK = 4_000_000


def _c_int(a: np.ndarray) -> np.ndarray:
    """C's ``(int)`` of doubles: truncation toward zero, so ``(int)(-2.5) == -2``."""
    return np.trunc(a).astype(np.int64)


def polygon_toggles(polygon, height: int, width: int) -> np.ndarray:
    """The column-major pixel offsets at which pycocotools' mask of one polygon switches on or off.

    Follows ``rleFrPoly`` of pycocotools (``common/maskApi.c`` in
    https://github.com/cocodataset/cocoapi, unchanged in pycocotools 2.0.11),
    step by step and in the same double and integer arithmetic:

    1. Each vertex is moved onto a grid 5 times finer, ``(int)(5 * x + 0.5)``
       (C's cast truncates toward zero, so negative coordinates round up).
    2. Every edge, the closing one included, is walked one grid step at a
       time along its longer axis from the endpoint with the smaller
       coordinate on that axis (the edge is "flipped" when it runs the other
       way, so an edge and its reverse give the same points); the other
       coordinate is ``(int)(start + slope * t + 0.5)``. Both endpoints of
       every edge are listed, so each vertex appears twice. A zero-length
       edge (a repeated vertex) has slope 0/0 there and its one point the
       row ``(int)NaN``; that row is never used, as the point's neighbours
       share its grid column (or lie left of the image), so here the slope
       is 0.
    3. Between consecutive points whose grid column differs, the left of the
       two columns ``g`` counts when it is a pixel column's centre,
       ``g = 5 c + 2`` with ``0 <= c < W``; the point gives column ``c`` the row
       ``ceil((y_min + 0.5) / 5 - 0.5)`` of the pair's smaller grid row
       ``y_min``, clamped to ``[0, H]``, i.e. the first pixel row whose centre
       is at or below the edge.
    4. The offsets ``c * H + row`` sorted are the run boundaries of the RLE;
       a boundary repeated an even number of times cancels (pycocotools
       merges zero-length runs), so pixel ``i`` (column-major) is set when
       an odd number of offsets are ``<= i``.

    Parameters
    ----------
    polygon : sequence of float
        ``[x1, y1, x2, y2, ...]`` in pixel-edge coordinates; an odd trailing
        value is ignored as pycocotools ignores it. Fewer than 3 vertices give
        no offsets that survive step 4 (an empty mask).
    height, width : int

    Returns
    -------
    numpy.ndarray of int64
        Offsets in ``[0, H * W]`` (unsorted, repeats kept).

    Raises
    ------
    ValueError
        A coordinate that is not finite, or a polygon so far outside the
        image that its walk would exceed a few million grid points
        (pycocotools runs out of memory or overflows ``int`` on those).

    References
    ----------
    .. [1] cocodataset/cocoapi, ``common/maskApi.c``: ``rleFrPoly`` (and
       ``PythonAPI/pycocotools/_mask.pyx``: ``frPoly``, ``frPyObjects``).
    """
    h, w = int(height), int(width)
    xy = np.asarray(polygon, dtype=np.float64).ravel()
    k = xy.size // 2
    if k == 0:
        return np.zeros(0, np.int64)
    xy = xy[:2 * k].reshape(k, 2)
    if not np.isfinite(xy).all():
        raise ValueError("polygon has a coordinate that is not a finite number")
    if np.abs(xy).max() * _SCALE >= 2 ** 31 - 1:
        raise ValueError(f"polygon coordinate {np.abs(xy).max():g} is far outside the {w}x{h} image")
    p = _c_int(_SCALE * xy + 0.5)
    x0, y0 = p[:, 0], p[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    dx, dy = np.abs(x1 - x0), np.abs(y1 - y0)
    along_x = dx >= dy
    flip = np.where(along_x, x0 > x1, y0 > y1)
    xs, xe = np.where(flip, x1, x0), np.where(flip, x0, x1)
    ys, ye = np.where(flip, y1, y0), np.where(flip, y0, y1)
    steps = np.where(along_x, dx, dy)
    count = steps + 1
    if int(count.sum()) > _MAX_WALK:
        raise ValueError(f"polygon boundary of {int(count.sum())} points on pycocotools' 5x grid "
                         f"(far outside the {w}x{h} image?)")
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(along_x, (ye - ys) / np.maximum(dx, 1), (xe - xs) / dy)   # dx = 0 here: one point
    e = np.repeat(np.arange(k), count)
    first = np.cumsum(count) - count
    d = np.arange(e.size) - first[e]
    t = np.where(flip[e], steps[e] - d, d)
    ax = along_x[e]
    other = _c_int(np.where(ax, ys[e], xs[e]) + slope[e] * t + 0.5)
    u = np.where(ax, t + xs[e], other)
    v = np.where(ax, other, t + ys[e])
    ua, ub = u[:-1], u[1:]
    g = np.where(ub < ua, ub, ub - 1)
    keep = (ub != ua) & (g >= _CENTRE) & ((g - _CENTRE) % _SCALE == 0) & ((g - _CENTRE) // _SCALE <= w - 1)
    col = (g[keep] - _CENTRE) // _SCALE
    ymin = np.minimum(v[:-1], v[1:])[keep]
    row = np.clip(-((_CENTRE - ymin) // _SCALE), 0, h)   # ceil((ymin - 2) / 5) = ceil((ymin + .5) / 5 - .5)
    return col * h + row


def polygons_to_mask(polygons, height: int, width: int) -> np.ndarray:
    """Fill COCO polygons (``[[x1, y1, x2, y2, ...], ...]``) into a bool ``(H, W)`` mask, as pycocotools does.

    The mask is pixel for pixel the one of pycocotools'
    ``decode(merge(frPyObjects(polygons, H, W)))`` (``COCO.annToMask``): each
    polygon rasterised by :func:`polygon_toggles` (``rleFrPoly`` on a 5x grid;
    roughly, a pixel is set when its centre lies inside the polygon snapped
    to that grid, its top and left boundary included), the union over the
    polygons. Filling by exact pixel centre instead differs on up to about
    1 % of an object's pixels, along its boundary. pycocotools takes a
    first polygon of 4 values for a box and fails; here it is a 2-vertex
    polygon (empty), like any later one.

    Raises
    ------
    ValueError
        See :func:`polygon_toggles`.
    """
    h, w = int(height), int(width)
    starts, ends = [], []
    for poly in polygons:
        # pixel i is set when an odd number of offsets are <= i: the sorted offsets pair up into
        # runs [o0, o1), [o2, o3), ... (a repeated offset gives an empty run), the last one to H * W
        o = np.sort(polygon_toggles(poly, h, w))
        if o.size % 2:
            o = np.append(o, h * w)
        starts.append(o[0::2])
        ends.append(o[1::2])
    mask = np.zeros(h * w, bool)
    starts = np.concatenate(starts) if starts else np.zeros(0, np.int64)
    ends = np.concatenate(ends) if ends else np.zeros(0, np.int64)
    lo, hi = int(starts.min(initial=h * w)), int(ends.max(initial=0))
    if hi > lo:
        # the union: a pixel is set when it lies in more runs than have ended before it
        depth = np.bincount(starts - lo, minlength=hi - lo + 1) - np.bincount(ends - lo, minlength=hi - lo + 1)
        mask[lo:hi] = np.cumsum(depth[:hi - lo]) > 0
    return np.ascontiguousarray(mask.reshape(w, h).T)


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
