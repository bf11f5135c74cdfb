"""PASCAL VOC 2012 segmentation data: the folder layout, palette PNGs and object cut-outs.

::

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    VOCdevkit/VOC2012/SegmentationClass/<id>.png    class index per pixel (0 background,
                                                    1..20 classes, 255 "void")
    VOCdevkit/VOC2012/SegmentationObject/<id>.png   instance index per pixel (1..K)
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt

Label PNGs are palette images (mode ``P``) whose pixel values are the indices
above, drawn with the standard VOC colour map (:func:`voc_palette`). VOC marks
a band a few pixels wide around every object with 255 ("void": the annotators
did not decide there); those pixels belong to no instance here, so a cut-out's
alpha covers only the pixels labelled with its instance id.

Objects are indexed cheaply first (:func:`index_instances`: only the label
PNGs are read, instances below a minimum area are dropped) and cut out on
demand (:func:`load_cutout`), so a pipeline over the full VOC (2,913
segmentation images) keeps one small list in memory.

References
----------
.. [1] Everingham et al., "The PASCAL Visual Object Classes Challenge 2012
   (VOC2012) Results", 2012.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lodetools.errors import BadInput, MissingInput

#: class names by index (0 is the background)
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
#: label value of the "void" boundary band (and of unlabelled objects)
VOID = 255
#: the folders and list folder of the layout, relative to ``VOC2012``
JPEG_DIR, CLASS_DIR, OBJECT_DIR, LIST_DIR = (
    "JPEGImages", "SegmentationClass", "SegmentationObject", "ImageSets/Segmentation")


@lru_cache(maxsize=1)
def _palette() -> np.ndarray:
    pal = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    pal.setflags(write=False)
    return pal


def voc_palette() -> np.ndarray:
    """The standard PASCAL VOC colour map: ``(256, 3)`` uint8, index -> RGB.

    Index ``i``'s colour interleaves the bits of ``i`` into R, G, B from the
    most significant bit down (the devkit's ``labelcolormap``): 1 is
    ``(128, 0, 0)``, 15 (person) is ``(192, 128, 128)``, 255 is ``(224, 224, 192)``.
    """
    return _palette()


def encode_label_png(labels: np.ndarray) -> bytes:
    """Encode a label map as a VOC palette PNG (mode ``P``, VOC colour map).

    Parameters
    ----------
    labels : ndarray of uint8, shape (H, W)

    Returns
    -------
    bytes
    """
    from PIL import Image

    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError("a label map is an (H, W) uint8 array")
    labels = np.ascontiguousarray(labels)
    img = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.tobytes())
    img.putpalette(voc_palette().tobytes())
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def read_label_png(path) -> np.ndarray:
    """Read a VOC label PNG as its index values, ``(H, W)`` uint8.

    Palette (``P``) and gray (``L``) PNGs give their values; an RGB PNG drawn
    with the VOC colour map (some converted copies of VOC) is mapped back to
    indices.

    Raises
    ------
    MissingInput
        If the file does not exist.
    BadInput
        If it cannot be decoded, declares more pixels than
        :func:`~lodetools.io.images.max_pixels` (checked on the header, before
        decoding), or an RGB file has colours outside the VOC map.
    """
    from PIL import Image, UnidentifiedImageError

    from lodetools.io.images import check_declared_size, no_pillow_limit

    path = Path(path)
    if not path.is_file():
        raise MissingInput("label PNG not found", path)
    check_declared_size(path)
    try:
        with no_pillow_limit(), Image.open(path) as img:
            img.load()
            mode = img.mode
            arr = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadInput(f"cannot decode label PNG ({exc.__class__.__name__})", path) from None
    if mode in ("P", "L"):
        return np.ascontiguousarray(arr, dtype=np.uint8)
    if mode in ("RGB", "RGBA"):
        rgb = arr[:, :, :3].astype(np.int32)
        code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        pal = voc_palette().astype(np.int32)
        pcode = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
        order = np.argsort(pcode)
        pos = np.clip(np.searchsorted(pcode[order], code), 0, 255)
        idx = order[pos]
        if not np.array_equal(pcode[idx], code):
            raise BadInput("RGB label PNG has colours outside the VOC colour map", path)
        return idx.astype(np.uint8)
    raise BadInput(f"label PNG has unsupported mode {mode!r} (expected P, L or RGB)", path)


def find_voc_root(path) -> Path:
    """The ``VOC2012`` folder of a VOC layout given it or one of its parents.

    ``path`` may be the ``VOC2012`` folder itself, ``VOCdevkit``, or the folder
    holding ``VOCdevkit``.

    Raises
    ------
    MissingInput
        If none of these holds ``SegmentationObject/`` and ``JPEGImages/``.
    """
    path = Path(path)
    if not path.is_dir():
        raise MissingInput("VOC folder not found", path)
    for cand in (path, path / "VOC2012", path / "VOCdevkit" / "VOC2012"):
        if (cand / OBJECT_DIR).is_dir() and (cand / JPEG_DIR).is_dir():
            return cand
    raise MissingInput("not a PASCAL VOC 2012 folder: no VOC2012 with SegmentationObject/ and "
                       "JPEGImages/ found", path)


def list_ids(root, split: str = "trainval") -> list[str]:
    """Image ids of a segmentation split, in list order.

    Parameters
    ----------
    root : str or os.PathLike
        A VOC folder (see :func:`find_voc_root`).
    split : str
        ``train``, ``val``, ``trainval`` (the union of train and val when no
        ``trainval.txt`` is present) or ``all`` (every ``SegmentationObject`` PNG).

    Raises
    ------
    MissingInput
        If the list file is missing, or the split is empty.
    BadInput
        If a listed id is not a plain file name.
    """
    voc = find_voc_root(root)
    if split == "all":
        ids = sorted(p.stem for p in (voc / OBJECT_DIR).glob("*.png") if not p.name.startswith("."))
        if not ids:
            raise MissingInput("no label PNGs in SegmentationObject/", voc / OBJECT_DIR)
        return ids
    lst = voc / LIST_DIR / f"{split}.txt"
    if not lst.is_file() and split == "trainval":
        parts = [voc / LIST_DIR / "train.txt", voc / LIST_DIR / "val.txt"]
        if any(p.is_file() for p in parts):
            return [i for p in parts if p.is_file() for i in _read_list(p)]
    if not lst.is_file():
        raise MissingInput(f"segmentation list {split}.txt not found", lst)
    ids = _read_list(lst)
    if not ids:
        raise MissingInput(f"segmentation list {split}.txt is empty", lst)
    return ids


def _read_list(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read image list ({exc.__class__.__name__})", path) from None
    ids = []
    for n, line in enumerate(text.splitlines(), 1):
        tok = line.strip().split()
        if not tok:
            continue
        name = tok[0]
        if "/" in name or "\\" in name or name in (".", ".."):
            raise BadInput(f"line {n}: {name!r} is not an image id", path)
        ids.append(name)
    return ids


class InstanceRef(NamedTuple):
    """One object of a VOC image, as indexed (no pixels; a named tuple, cheap to pickle).

    Attributes
    ----------
    image_id : str
    instance_id : int
        Its value in ``SegmentationObject`` (1..K).
    class_id : int
        Its class in ``SegmentationClass`` (1..20), the majority over its pixels.
    bbox : (y0, x0, y1, x1)
        Bounding box of its pixels (end-exclusive).
    area : int
        Number of pixels labelled with it (the void band excluded).
    """

    image_id: str
    instance_id: int
    class_id: int
    bbox: tuple
    area: int

    @property
    def class_name(self) -> str:
        return VOC_CLASSES[self.class_id] if 0 <= self.class_id < len(VOC_CLASSES) else str(self.class_id)

    @property
    def source(self) -> str:
        """``<image id>#<instance id>``, the provenance string of a cut-out."""
        return f"{self.image_id}#{self.instance_id}"


def instances_of(objects: np.ndarray, classes: np.ndarray, image_id: str, *, min_area: int = 0,
                 path=None) -> list[InstanceRef]:
    """The instances of one image from its two label maps.

    Parameters
    ----------
    objects, classes : ndarray of uint8, shape (H, W)
        ``SegmentationObject`` and ``SegmentationClass`` values.
    image_id : str
    min_area : int
        Instances with fewer labelled pixels are dropped.
    path : path, optional
        Named in errors.

    Returns
    -------
    list of InstanceRef
        In instance-id order.

    Raises
    ------
    BadInput
        If the maps differ in size, or an instance has no class 1..20 under it.
    """
    if objects.shape != classes.shape:
        raise BadInput(f"SegmentationObject {objects.shape[1]}x{objects.shape[0]} and SegmentationClass "
                       f"{classes.shape[1]}x{classes.shape[0]} differ in size", path)
    out = []
    flat_o = objects.ravel()
    counts = np.bincount(flat_o, minlength=256)
    for k in np.nonzero(counts[1:VOID])[0] + 1:
        area = int(counts[k])
        if area < max(1, min_area):
            continue
        sel = objects == k
        cls = classes[sel]
        cls = cls[(cls > 0) & (cls < VOID)]
        if cls.size == 0:
            raise BadInput(f"instance {k} has no class in SegmentationClass", path)
        class_id = int(np.bincount(cls).argmax())
        ys = np.nonzero(sel.any(axis=1))[0]
        xs = np.nonzero(sel.any(axis=0))[0]
        out.append(InstanceRef(image_id, int(k), class_id,
                               (int(ys[0]), int(xs[0]), int(ys[-1]) + 1, int(xs[-1]) + 1), area))
    return out


def read_voc_labels(root, image_id: str) -> tuple[np.ndarray, np.ndarray]:
    """``(objects, classes)`` label maps of one image (uint8, same size).

    Raises
    ------
    MissingInput, BadInput
    """
    voc = find_voc_root(root)
    objects = read_label_png(voc / OBJECT_DIR / f"{image_id}.png")
    cpath = voc / CLASS_DIR / f"{image_id}.png"
    classes = read_label_png(cpath)
    if objects.shape != classes.shape:
        raise BadInput(f"SegmentationClass is {classes.shape[1]}x{classes.shape[0]} but SegmentationObject "
                       f"is {objects.shape[1]}x{objects.shape[0]}", cpath)
    return objects, classes


def index_instances(root, *, split: str = "trainval", min_area: int = 1000,
                    skipped: list | None = None) -> list[InstanceRef]:
    """Every instance of a split with at least ``min_area`` labelled pixels.

    Only the label PNGs are decoded; each listed image's JPEG must exist.

    Parameters
    ----------
    root : str or os.PathLike
        A VOC folder (see :func:`find_voc_root`).
    split : str
        See :func:`list_ids`.
    min_area : int
        Minimum instance area in pixels (void band excluded).
    skipped : list, optional
        If given, a bad entry (missing JPEG or label PNG, corrupt or
        inconsistent label maps) is skipped and its error message appended
        here instead of raised.

    Returns
    -------
    list of InstanceRef
        In list order, then instance id.

    Raises
    ------
    MissingInput
        Missing folder or list; missing JPEG or label PNG (unless ``skipped``).
    BadInput
        A corrupt label PNG or mismatched label maps (unless ``skipped``), or
        no instance at all (an empty instance list is an error: nothing could
        be pasted).
    """
    voc = find_voc_root(root)
    refs = []
    for image_id in list_ids(voc, split):
        try:
            if not (voc / JPEG_DIR / f"{image_id}.jpg").is_file():
                raise MissingInput(f"image {image_id} is listed but its JPEG is missing",
                                   voc / JPEG_DIR / f"{image_id}.jpg")
            objects, classes = read_voc_labels(voc, image_id)
            refs.extend(instances_of(objects, classes, image_id, min_area=min_area,
                                     path=voc / OBJECT_DIR / f"{image_id}.png"))
        except (MissingInput, BadInput) as exc:
            if skipped is None:
                raise
            skipped.append(exc.message)
    if not refs:
        raise BadInput(f"no object instances of at least {min_area} pixels in split {split!r}", voc)
    return refs


@dataclass
class VocCutout:
    """An object cut from a VOC image.

    Attributes
    ----------
    rgb : ndarray float32 (h, w, 3)
        Display-referred colours in ``[0, 1]`` (as in the JPEG).
    alpha : ndarray float32 (h, w)
        1 on the instance's pixels, 0 elsewhere (a one-pixel zero border included).
    class_id : int
    source : str
        ``<image id>#<instance id>``.
    """

    rgb: np.ndarray
    alpha: np.ndarray
    class_id: int
    source: str


def cut_instance(image: np.ndarray, objects: np.ndarray, ref: InstanceRef, *, pad: int = 1) -> VocCutout:
    """Crop one instance: its bounding box plus ``pad`` pixels, alpha = its label.

    Parameters
    ----------
    image : ndarray float32 (H, W, 3)
        The display-referred photograph.
    objects : ndarray uint8 (H, W)
        Its ``SegmentationObject`` values.
    ref : InstanceRef
    pad : int
        Zero-alpha margin kept around the box (so warps see a clean edge).

    Returns
    -------
    VocCutout
    """
    H, W = objects.shape
    y0, x0, y1, x1 = ref.bbox
    ya, xa, yb, xb = max(0, y0 - pad), max(0, x0 - pad), min(H, y1 + pad), min(W, x1 + pad)
    alpha = (objects[ya:yb, xa:xb] == ref.instance_id).astype(np.float32)
    rgb = np.array(image[ya:yb, xa:xb], dtype=np.float32)
    # a box touching the image edge gets its margin as zero-alpha padding
    pads = ((pad - (y0 - ya), pad - (yb - y1)), (pad - (x0 - xa), pad - (xb - x1)))
    if any(p for pp in pads for p in pp):
        alpha = np.pad(alpha, pads)
        rgb = np.pad(rgb, pads + ((0, 0),), mode="edge")
    return VocCutout(rgb=rgb, alpha=alpha, class_id=ref.class_id, source=ref.source)


def load_cutout(root, ref: InstanceRef, *, pad: int = 1) -> VocCutout:
    """Read an indexed instance's image and label maps and cut it out.

    Raises
    ------
    MissingInput, BadInput
        Missing or corrupt files, or an instance that is no longer in its label PNG.
    """
    from lodetools.io.images import read_image

    voc = find_voc_root(root)
    jpg = voc / JPEG_DIR / f"{ref.image_id}.jpg"
    image = read_image(jpg)
    objects = read_label_png(voc / OBJECT_DIR / f"{ref.image_id}.png")
    if objects.shape != image.shape[:2]:
        raise BadInput(f"JPEG is {image.shape[1]}x{image.shape[0]} but its SegmentationObject is "
                       f"{objects.shape[1]}x{objects.shape[0]}", jpg)
    y0, x0, y1, x1 = ref.bbox
    if not (objects[y0:y1, x0:x1] == ref.instance_id).any():
        raise BadInput(f"instance {ref.instance_id} not found in its label PNG (changed since indexing?)",
                       voc / OBJECT_DIR / f"{ref.image_id}.png")
    return cut_instance(image, objects, ref, pad=pad)
