"""A mini PASCAL VOC 2012 of the synthetic world (segmentation part).

Each image is a bundled photograph with one to a few objects cut from other
photographs (:func:`lodetools.sim.photos.make_cutout`) pasted on it, written
in the real VOC layout (see :mod:`lodetools.io.voc`): a JPEG, a
``SegmentationClass`` and a ``SegmentationObject`` palette PNG with the VOC
colour map and 255 on a boundary band around every object (as VOC does),
and the ``ImageSets/Segmentation`` lists. Objects cut with the horse
silhouette get class 13 (horse); the others a random class of the other 19.
``lodetools lbs`` runs on it unchanged, and the returned ground truth (also
written to ``<out_dir>/voc-truth.json``) says which class and instance every
label is.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from lodetools.color.crf import CRF
from lodetools.io.atomic import atomic_write_bytes, atomic_write_text
from lodetools.io.images import encode_image
from lodetools.io.voc import CLASS_DIR, JPEG_DIR, LIST_DIR, OBJECT_DIR, VOC_CLASSES, VOID, encode_label_png
from lodetools.sim.photos import BACKGROUNDS, composite, linear_photo, make_cutout, render_layer
from lodetools.synth.cutout import pose_matrix

#: preset -> number of images, (height, width), boundary band radius (px)
PRESETS = {
    "demo": {"n_images": 16, "size": (240, 320), "band": 1},
    "test": {"n_images": 6, "size": (64, 96), "band": 0},
}
HORSE = VOC_CLASSES.index("horse")
TRUTH_FILE = "voc-truth.json"


def boundary_band(labels: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` of a label change: the VOC "void" band.

    A pixel whose label differs from a 4-neighbour's is on the boundary (both
    sides of every edge are marked, so ``radius = 0`` gives a 2-pixel band);
    the band is that set dilated by a ``(2 radius + 1)`` square.

    Parameters
    ----------
    labels : ndarray (H, W) of int in 0..255
    radius : int

    Returns
    -------
    ndarray of bool (H, W)
    """
    lab = np.asarray(labels, np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    edge = cv2.dilate(lab, cross, borderType=cv2.BORDER_REPLICATE) != \
        cv2.erode(lab, cross, borderType=cv2.BORDER_REPLICATE)
    if radius > 0:
        k = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
        edge = cv2.dilate(edge.astype(np.uint8), k) > 0
    return edge


def _place(rng, cut, size, taken, tries=20):
    H, W = size
    h, w = cut.alpha.shape
    best = None
    for _ in range(tries):
        cx = rng.uniform(min(w / 2, W / 2), max(W - w / 2, W / 2))
        cy = rng.uniform(min(h / 2, H / 2), max(H - h / 2, H / 2))
        angle = rng.uniform(-20.0, 20.0)
        M = pose_matrix((cx, cy), angle, 1.0, (h, w))
        layer = render_layer(cut, M, size)
        foot = layer[1] > 0.5
        area = max(1, int(foot.sum()))
        overlap = int((foot & taken).sum()) / area
        if best is None or overlap < best[0]:
            best = (overlap, layer, M)
        if overlap <= 0.3:
            break
    return best[1], best[2]


def render_voc_image(rng: np.random.Generator, size: tuple[int, int], *, max_objects: int = 3,
                     band: int = 1, min_pixels: int = 4):
    """One synthetic VOC image with its label maps.

    Parameters
    ----------
    rng : numpy.random.Generator
    size : (H, W)
    max_objects : int
        1..max_objects objects are pasted.
    band : int
        Radius of the 255 boundary band (see :func:`boundary_band`).
    min_pixels : int
        An object left with fewer labelled pixels (occluded, eaten by the
        band) is removed from the image altogether.

    Returns
    -------
    display : ndarray float32 (H, W, 3)
        Display-referred image (gamma 2.2 of the linear composite).
    objects, classes : ndarray uint8 (H, W)
        ``SegmentationObject`` (1..K, 255 band) and ``SegmentationClass`` values.
    instances : list of dict
        ``{id, class_id, class_name, source, area}`` per instance id 1..K.
    background : str
    """
    H, W = size
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    bg = linear_photo(background, size)
    n = int(rng.integers(1, max_objects + 1))
    objs = []
    taken = np.zeros(size, bool)
    others = [c for c in range(1, len(VOC_CLASSES)) if c != HORSE]
    for _ in range(n):
        obj_size = int(round(rng.uniform(0.25, 0.5) * min(H, W)))
        cut = make_cutout(rng, obj_size)
        cls = HORSE if cut.source.endswith("/horse") else int(others[int(rng.integers(len(others)))])
        layer, _ = _place(rng, cut, size, taken)
        taken |= layer[1] > 0.5
        objs.append({"layer": layer, "class_id": cls, "source": cut.source})
    while True:
        top = np.zeros(size, np.int32)
        for k, o in enumerate(objs, 1):
            top[o["layer"][1] > 0.5] = k
        void = boundary_band(top, band)
        areas = np.bincount(top[~void], minlength=len(objs) + 1)[1:]
        small = [k for k, a in enumerate(areas) if a < min_pixels]
        if not small or len(objs) == 1:
            break
        objs.pop(small[0])
    display = CRF("gamma", gamma=2.2).to_display(composite(bg, [o["layer"] for o in objs]))
    lut = np.array([0] + [o["class_id"] for o in objs], np.uint8)
    objects = top.astype(np.uint8)
    classes = lut[top]
    objects[void] = VOID
    classes[void] = VOID
    instances = [{"id": k, "class_id": o["class_id"], "class_name": VOC_CLASSES[o["class_id"]],
                  "source": o["source"], "area": int(areas[k - 1])} for k, o in enumerate(objs, 1)]
    return display, objects, classes, instances, background


def write_voc(out_dir, *, seed: int, preset: str = "demo", n_images: int | None = None,
              size: tuple[int, int] | None = None, max_objects: int = 3, val_every: int = 4) -> dict:
    """Write a mini PASCAL VOC 2012 to ``<out_dir>/VOCdevkit/VOC2012``.

    Parameters
    ----------
    out_dir : str or os.PathLike
    seed : int
        Same seed, same bytes (every image has its own generator seeded by
        ``(seed, index)``).
    preset : {'demo', 'test'}
        ``demo``: 16 images of 320x240 with a 4-pixel band; ``test``: 6 images
        of 96x64 with a 2-pixel band.
    n_images : int, optional
        Overrides the preset's count.
    size : (height, width), optional
        Overrides the preset's image size.
    max_objects : int
        Objects per image: 1..max_objects.
    val_every : int
        Every ``val_every``-th image goes to ``val.txt``, the rest to ``train.txt``.

    Returns
    -------
    dict
        The ground truth (also written to ``<out_dir>/voc-truth.json``):
        ``{"root", "seed", "images": [{"name", "split", "background",
        "instances": [{"id", "class_id", "class_name", "source", "area"}]}]}``.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown VOC preset {preset!r}: expected one of {sorted(PRESETS)}")
    cfg = PRESETS[preset]
    n = int(cfg["n_images"] if n_images is None else n_images)
    size = tuple(int(v) for v in (cfg["size"] if size is None else size))
    if n < 1 or min(size) < 16:
        raise ValueError("a VOC needs at least one image of at least 16x16 pixels")
    out_dir = Path(out_dir)
    voc = out_dir / "VOCdevkit" / "VOC2012"
    images, lists = [], {"train": [], "val": []}
    for i in range(n):
        name = f"2012_{i + 1:06d}"
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, i, 0x70C])
        display, objects, classes, instances, background = render_voc_image(
            rng, size, max_objects=max_objects, band=cfg["band"])
        atomic_write_bytes(voc / JPEG_DIR / f"{name}.jpg", encode_image(display, ".jpg", jpeg_quality=92))
        atomic_write_bytes(voc / CLASS_DIR / f"{name}.png", encode_label_png(classes))
        atomic_write_bytes(voc / OBJECT_DIR / f"{name}.png", encode_label_png(objects))
        split = "val" if val_every and (i + 1) % val_every == 0 else "train"
        lists[split].append(name)
        images.append({"name": name, "split": split, "background": background, "instances": instances})
    lists["trainval"] = [im["name"] for im in images]
    for split, names in lists.items():
        atomic_write_text(voc / LIST_DIR / f"{split}.txt", "".join(f"{s}\n" for s in names))
    truth = {"root": "VOCdevkit/VOC2012", "seed": int(seed), "preset": preset, "size": list(size),
             "images": images}
    atomic_write_text(out_dir / TRUTH_FILE, json.dumps(truth, indent=1) + "\n")
    return truth
