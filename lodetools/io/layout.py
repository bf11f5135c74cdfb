"""The paired dataset layout (written by synthesize/develop/align/lbs, read by masks/eval/train).

::

    <root>/dataset.json
    <root>/manifest.jsonl
    <root>/<split>/<scene>/blur/<id>.png
    <root>/<split>/<scene>/sharp/<id>.png
    <root>/<split>/<scene>/mask/<id>.png      0/255 local-blur mask, when known

This mirrors GoPro (``train/GOPR0372_07_00/blur/000047.png``) plus ``mask/``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lodetools.errors import BadInput, MissingInput
from lodetools.io.atomic import atomic_write_bytes
from lodetools.io.images import encode_image
from lodetools.io.manifest import read_dataset_json, read_manifest
from lodetools.io.paths import confined, safe_name

SPLITS = ("train", "val", "test")
ROLES = ("blur", "sharp", "mask")


def item_key(split: str, scene: str, item_id: str) -> str:
    """The unique manifest key ``<split>/<scene>/<id>`` (components made safe)."""
    return f"{safe_name(split, what='split')}/{safe_name(scene, what='scene name')}/" \
           f"{safe_name(item_id, what='item id')}"


def pair_relpath(split: str, scene: str, role: str, item_id: str, ext: str = ".png") -> str:
    """Relative path of one image of a pair: ``<split>/<scene>/<role>/<id><ext>``."""
    return f"{safe_name(split, what='split')}/{safe_name(scene, what='scene name')}/" \
           f"{safe_name(role, what='role')}/{safe_name(item_id, what='item id')}{ext}"


def write_pair(root, split: str, scene: str, item_id: str, images: dict, *,
               bit_depth: int = 8, ext: str = ".png", png_compression=None) -> dict:
    """Write the images of one item atomically and describe them for the manifest.

    Parameters
    ----------
    root : str or os.PathLike
        Dataset folder (``--out``).
    split, scene, item_id : str
        Untrusted names are made safe with :func:`lodetools.io.paths.safe_name`.
    images : dict
        role (``'blur'``, ``'sharp'``, ``'mask'``, ...) -> array (float in [0, 1],
        uint8/uint16, or bool for masks, written 0/255).
    bit_depth : {8, 16}
        For float images other than masks.
    png_compression : {None, 'fast', 0, ..., 9}
        See :func:`lodetools.io.images.encode_image` (the pixels do not depend on it).

    Returns
    -------
    dict
        The manifest fields ``key, id, split, scene, files, sha256``.
    """
    files, hashes = {}, {}
    for role, img in images.items():
        rel = pair_relpath(split, scene, role, item_id, ext)
        path = confined(root, rel)
        img = np.asarray(img)
        data = encode_image(img, ext, bit_depth=8 if img.dtype == bool else bit_depth,
                            png_compression=png_compression)
        atomic_write_bytes(path, data)
        files[role] = rel
        hashes[role] = hashlib.sha256(data).hexdigest()
    return {
        "key": item_key(split, scene, item_id),
        "id": safe_name(item_id, what="item id"),
        "split": safe_name(split, what="split"),
        "scene": safe_name(scene, what="scene name"),
        "files": files,
        "sha256": hashes,
    }


@dataclass(frozen=True)
class Pair:
    """One item of a paired dataset, with absolute paths."""

    key: str
    id: str
    split: str
    scene: str
    blur: Path | None
    sharp: Path | None
    mask: Path | None
    record: dict


def read_manifest_pairs(root) -> list[Pair]:
    """Every pair of a lodetools dataset (``dataset.json`` + manifest), in key order.

    Raises
    ------
    MissingInput
        No ``dataset.json`` there.
    """
    root = Path(root)
    read_dataset_json(root)
    out = []
    for key, rec in read_manifest(root).items():
        files = rec.get("files", {})
        paths = {r: (root / files[r] if r in files else None) for r in ROLES}
        out.append(Pair(key, rec.get("id", key), rec.get("split", ""), rec.get("scene", ""),
                        paths["blur"], paths["sharp"], paths["mask"], rec))
    return out


def read_pairs(root, *, split: str | None = None, require=("blur", "sharp"), layout: str | None = None,
               masks=None) -> list[Pair]:
    """The pairs of a dataset in key order, optionally of one split.

    A folder with ``dataset.json`` is read through its manifest (the default);
    any other root goes through the layout reader of
    :mod:`lodetools.io.datasets` (GoPro, REDS, RealBlur, HIDE, ReLoBlur,
    BladeNet, plain ``blur/`` + ``sharp/`` folders), read in place.

    Parameters
    ----------
    root : str or os.PathLike
        Dataset folder.
    split : str, optional
        Keep only this split.
    require : tuple of str
        Roles every returned pair must have.
    layout : str, optional
        Force a layout, ``"NAME"`` or ``"NAME:VARIANT"`` (see
        :mod:`lodetools.io.datasets`); detected when omitted.
    masks : str or os.PathLike, optional
        Masks made outside the dataset (``lodetools masks --out DIR``).

    Raises
    ------
    MissingInput
        No dataset there, or no pairs (of that split).
    """
    root = Path(root)
    if layout in (None, "", "auto", "lodetools") and masks is None and (root / "dataset.json").is_file() \
            or layout == "lodetools" and masks is None:
        out = [p for p in read_manifest_pairs(root)
               if (split is None or p.split == split) and all(getattr(p, r) is not None for r in require)]
        if not out:
            raise MissingInput(f"no pairs{'' if split is None else f' in split {split!r}'}", root)
        return out
    from lodetools.io.datasets import read_dataset
    return read_dataset(root, split=split, require=require, layout=layout, masks=masks)


def check_same_size(a: np.ndarray, b: np.ndarray, path) -> None:
    """Raise :class:`BadInput` naming ``path`` if two images differ in height/width."""
    if a.shape[:2] != b.shape[:2]:
        raise BadInput(f"size mismatch {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}", path)
