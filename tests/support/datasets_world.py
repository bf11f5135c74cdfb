"""Tiny copies of the published deblurring datasets in their real layouts (test helpers).

Each ``make_<layout>(root)`` writes a few pairs exactly where the authors'
loaders expect them and returns the truth: ``{key: Truth}`` with the uint8
images written, so tests can score them independently of lodetools. Sharp
images are crops of scikit-image's bundled photographs; the blurred image is a
horizontal box blur inside a rectangle (a local blur), which is also the mask.
Files are written with PIL / numpy, not with lodetools.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import uniform_filter1d

H, W = 64, 96


@dataclass
class Truth:
    blur: np.ndarray          # uint8 (H, W, 3)
    sharp: np.ndarray | None  # uint8 (H, W, 3), None when the dataset ships none
    mask: np.ndarray | None   # bool (H, W), None when the dataset ships none


@lru_cache(maxsize=1)
def _photos():
    from skimage import data
    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]


def make_triplet(i: int, size=(H, W)):
    """(blur uint8, sharp uint8, mask bool) number ``i`` (deterministic)."""
    rng = np.random.default_rng(1000 + i)
    ph = _photos()[i % 4]
    h, w = size
    y0 = int(rng.integers(0, ph.shape[0] - 2 * h))
    x0 = int(rng.integers(0, ph.shape[1] - 2 * w))
    sharp = ph[y0:y0 + 2 * h:2, x0:x0 + 2 * w:2, :3].copy()
    blurred = uniform_filter1d(sharp.astype(np.float32), 7, axis=1, mode="nearest")
    mask = np.zeros((h, w), bool)
    my, mx = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
    mask[my:my + h // 2, mx:mx + w // 2] = True
    blur = np.where(mask[..., None], np.round(blurred), sharp).astype(np.uint8)
    return blur, sharp, mask


def write_png(path, arr) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    Image.fromarray(arr).save(path)


class _Counter:
    def __init__(self):
        self.i = 0

    def next(self):
        self.i += 1
        return make_triplet(self.i)


def make_gopro(root) -> dict:
    """``GOPRO_Large/{train,test}/<scene>/{blur,blur_gamma,sharp}/NNNNNN.png``: train 2 scenes x 3, test 1 x 3."""
    base, c, truth = Path(root) / "GOPRO_Large", _Counter(), {}
    for split, scenes in (("train", ("GOPR0372_07_00", "GOPR0374_11_01")), ("test", ("GOPR0384_11_00",))):
        for scene in scenes:
            for k in (47, 48, 49):
                blur, sharp, _ = c.next()
                name = f"{k:06d}.png"
                write_png(base / split / scene / "blur" / name, blur)
                write_png(base / split / scene / "blur_gamma" / name, (255 - blur).astype(np.uint8))
                write_png(base / split / scene / "sharp" / name, sharp)
                truth[f"{split}/{scene}/{k:06d}"] = Truth(blur, sharp, None)
    return truth


def make_reds(root) -> dict:
    """``REDS/{train,val,test}/{split}_blur/CCC/FFFFFFFF.png`` (+ ``_sharp``, + ``train_blur_jpeg``); test sharp-less."""
    base, c, truth = Path(root) / "REDS", _Counter(), {}
    for split, clips in (("train", ("000", "001")), ("val", ("000",)), ("test", ("000",))):
        for clip in clips:
            for f in range(2):
                blur, sharp, _ = c.next()
                name = f"{f:08d}"
                write_png(base / split / f"{split}_blur" / clip / f"{name}.png", blur)
                if split != "test":
                    write_png(base / split / f"{split}_sharp" / clip / f"{name}.png", sharp)
                if split == "train":
                    p = base / split / "train_blur_jpeg" / clip / f"{name}.jpg"
                    p.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(blur).save(p, quality=90)
                truth[f"{split}/{clip}/{name}"] = Truth(blur, None if split == "test" else sharp, None)
    return truth


REALBLUR_DIRS = {"J": "RealBlur-J_ECC_IMCORR_centroid_itensity_ref",
                 "R": "RealBlur-R_BM3D_ECC_IMCORR_centroid_itensity_ref"}


def make_realblur(root, variants=("J", "R")) -> dict:
    """J and R side by side: ``<dir>/sceneNNN/{blur/blur_K.png, gt/gt_K.png}`` + the four list files."""
    root, c, truth = Path(root), _Counter(), {}
    for v in variants:
        for split, scenes in (("train", ("scene001", "scene002")), ("test", ("scene101",))):
            lines = []
            for scene in scenes:
                for k in (1, 2):
                    blur, sharp, _ = c.next()
                    b = f"{REALBLUR_DIRS[v]}/{scene}/blur/blur_{k}.png"
                    g = f"{REALBLUR_DIRS[v]}/{scene}/gt/gt_{k}.png"
                    write_png(root / b, blur)
                    write_png(root / g, sharp)
                    lines.append(f"{g} {b} \n")  # ground truth first, trailing space
                    truth[f"{split}/RealBlur-{v}/{scene}/blur_{k}"] = Truth(blur, sharp, None)
            (root / f"RealBlur_{v}_{split}_list.txt").write_text("".join(lines))
    return truth


def make_hide(root) -> dict:
    """``HIDE_dataset/{train/, test/test-close-ups/, test/test-long-shot/, GT/, train.txt, test.txt}``."""
    base, c, truth = Path(root) / "HIDE_dataset", _Counter(), {}
    lists = {"train": [], "test": []}
    for split, folder, names in (("train", "train", ("1fromGOPR0950.MP4", "2fromGOPR0950.MP4")),
                                 ("test", "test/test-close-ups", ("109fromGOPR1096.MP4",)),
                                 ("test", "test/test-long-shot", ("7fromGOPR0997.MP4", "8fromGOPR0997.MP4"))):
        for name in names:
            blur, sharp, _ = c.next()
            write_png(base / folder / f"{name}.png", blur)
            write_png(base / "GT" / f"{name}.png", sharp)
            lists[split].append(f"{folder}/{name}.png\n")
            truth[f"{split}/{Path(folder).name}/{name}"] = Truth(blur, sharp, None)
    for split, lines in lists.items():
        (base / f"{split}.txt").write_text("".join(lines))
    return truth


def make_reloblur(root, masks: bool = True) -> dict:
    """``dataset/{train,test}/<scene>/<seq>/<k>_{blur,sharp}.png`` and ``masks/<split>/<scene>/<seq>/<k>.png``."""
    root, c, truth = Path(root), _Counter(), {}
    for split, items in (("train", (("s01", "seq1"), ("s01", "seq2"), ("s02", "seq1"))), ("test", (("s09", "seq1"),))):
        for scene, seq in items:
            for k in (1, 2):
                blur, sharp, mask = c.next()
                d = root / "dataset" / split / scene / seq
                write_png(d / f"{k}_blur.png", blur)
                write_png(d / f"{k}_sharp.png", sharp)
                if masks:
                    write_png(root / "masks" / split / scene / seq / f"{k}.png", mask)
                truth[f"{split}/{scene}/{seq}/{k}"] = Truth(blur, sharp, mask if masks else None)
    return truth


def make_bladenet(root) -> dict:
    """Flat ``blur/``, ``sharp/`` and ``blur_mask/*.npy`` per split, paired by sorted name (stems differ)."""
    root, c, truth = Path(root), _Counter(), {}
    for split, n in (("train", 4), ("test", 2)):
        for i in range(n):
            blur, sharp, mask = c.next()
            write_png(root / split / "blur" / f"{i:04d}_blur.png", blur)
            write_png(root / split / "sharp" / f"{i:04d}_gt.png", sharp)
            (root / split / "blur_mask").mkdir(parents=True, exist_ok=True)
            np.save(root / split / "blur_mask" / f"{i:04d}.npy", mask.astype(np.float32))
            truth[f"{split}/{split}/{i:04d}_blur"] = Truth(blur, sharp, mask)
    return truth


def make_plain(root) -> dict:
    """``plain blur/ + sharp/ (+ mask/)`` leaves at two depths, one with ``GT/`` for sharp."""
    root, c, truth = Path(root), _Counter(), {}
    for leaf, split, scene, sharp_dir, with_mask in (("train/outdoor/day", "train", "outdoor/day", "sharp", True),
                                                     ("train/night", "train", "night", "GT", False),
                                                     ("test/indoor", "test", "indoor", "sharp", True)):
        for k in range(2):
            blur, sharp, mask = c.next()
            write_png(root / leaf / "blur" / f"img{k}.png", blur)
            write_png(root / leaf / sharp_dir / f"img{k}.png", sharp)
            if with_mask:
                write_png(root / leaf / "mask" / f"img{k}.png", mask)
            truth[f"{split}/{scene}/img{k}"] = Truth(blur, sharp, mask if with_mask else None)
    return truth


MAKERS = {"gopro": make_gopro, "reds": make_reds, "realblur": make_realblur, "hide": make_hide,
          "reloblur": make_reloblur, "bladenet": make_bladenet, "plain": make_plain}


def build_all(tmp_path_factory) -> dict:
    """Every layout in its own temporary folder: name -> (root, truth)."""
    out = {}
    for name, make in MAKERS.items():
        root = tmp_path_factory.mktemp(name)
        out[name] = (root, make(root))
    return out


def tree(root) -> dict:
    """relative path -> mtime of everything under ``root`` (to check that nothing was written)."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}
