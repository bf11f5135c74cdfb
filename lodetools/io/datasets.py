"""Published deblurring datasets read in place, as downloaded: one reader for every layout.

:func:`detect_layout` names the layout of a dataset root and :func:`scan_dataset`
lists its pairs as :class:`lodetools.io.layout.Pair` records (the ones the rest
of lodetools reads), with every oddity found on the way. Nothing is ever
written inside the root. The layouts, as the authors' own loaders read them:

``lodetools``
    ``dataset.json`` + manifest (:mod:`lodetools.io.layout`); the default
    whenever ``dataset.json`` is present.
``gopro``
    ``[GOPRO_Large/]{train,test}/GOPRnnnn_nn_nn/{blur,blur_gamma,sharp}/NNNNNN.png``
    (DeepDeblur-PyTorch ``src/data/gopro_large.py``). Scene = the folder;
    variant ``blur`` (default, plain averaging) or ``blur_gamma`` (the
    gamma-2.2 averaging DeepDeblur trains on).
``reds``
    ``[REDS/][{split}/]{split}_blur/CCC/FFFFFFFF.png`` and ``{split}_sharp/...``
    for split ``train``, ``val``, ``test`` (DeepDeblur ``src/data/reds.py``,
    BasicSR docs). Scene = the clip. The test set ships no sharp images: its
    pairs have a blurred image only. Variants ``blur`` (default),
    ``blur_comp``, ``blur_jpeg`` (JPEG-compressed, ``.jpg``).
``realblur``
    ``RealBlur_{J,R}_{train,test}_list.txt`` at the root, one
    ``<gt> <blur>`` line per pair (ground truth first), paths relative to the
    root (rimchang/RealBlur; lists from rimchang/RSBlur ``datalist/``). The split
    exists only in these lists. J and R may sit side by side: scene =
    ``RealBlur-J/sceneNNN`` (or ``-R``) so their keys never collide; variant
    ``J`` or ``R`` reads one of them. Id = the blurred file's stem (``blur_1``).
``hide``
    ``[HIDE_dataset/]{train/, test/test-close-ups/, test/test-long-shot/, GT/}``;
    the sharp image of ``<folder>/<name>`` is ``GT/<name>`` (HA_deblur README).
    Scene = the folder (``train``, ``test-close-ups``, ``test-long-shot``).
``reloblur``
    ``<root>/dataset/{train,test}/<scene>/<seq>/<k>_blur.png`` and ``<k>_sharp.png``;
    masks (a separate download) at ``<root>/masks/{train,test}/<scene>/<seq>/<k>.png``,
    nonzero = blurred (LeiaLi/ReLoBlur ``dataset.py``). Scene = ``<scene>/<seq>``,
    id = ``<k>``, so nothing collides.
``bladenet``
    Flat ``blur/`` and ``sharp/`` folders (at the root or in each split folder)
    paired by sorted file name, as BladeNet's loader pairs them, with the LBS
    masks as ``.npy`` files, again in sorted order, in a third folder.
``plain``
    Any folder at any depth holding ``blur/`` (or ``input/``) and ``sharp/``
    (or ``gt/``, ``GT/``, ``target/``) folders, plus an optional ``mask/``,
    paired by file stem. The split is the first path component named
    ``train``, ``val`` or ``test``, else ``all``; the scene is the rest of the
    folder's path.

A layout is forced with ``layout="NAME"`` or ``"NAME:VARIANT"``
(``gopro:blur_gamma``, ``reds:blur_jpeg``, ``realblur:R``). Detection refuses a
root that looks like two of the specific layouts above (an ambiguous root);
``plain`` is taken only when no specific layout matches.

Masks computed for a mask-free dataset live outside it, under an output folder
(``lodetools masks --data ROOT --out DIR``); ``masks=DIR`` adds them: the mask
of pair ``<split>/<scene>/<id>`` is ``DIR/<split>/<scene>/mask/<id>.png`` (the
paired layout ``masks`` writes), ``DIR/<split>/<scene>/<id>.png`` or ``.npy``.

References
----------
.. [1] Nah, Kim, Lee, "Deep Multi-scale Convolutional Neural Network for Dynamic
   Scene Deblurring", CVPR 2017 (GoPro).
.. [2] Nah et al., "NTIRE 2019 Challenge on Video Deblurring and Super-Resolution:
   Dataset and Study", CVPR Workshops 2019 (REDS).
.. [3] Rim, Lee, Won, Cho, "Real-World Blur Dataset for Learning and Benchmarking
   Deblurring Algorithms", ECCV 2020 (RealBlur).
.. [4] Shen et al., "Human-Aware Motion Deblurring", ICCV 2019 (HIDE).
.. [5] Li et al., "Real-World Deep Local Motion Deblurring", AAAI 2023 (ReLoBlur).
.. [6] Zhang et al., "Deep Local Motion Deblurring" / BladeNet code (LODE).
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from lodetools.errors import BadConfig, BadInput, LodeError, MissingInput
from lodetools.io.images import IMAGE_EXTENSIONS, declared_size, natural_key
from lodetools.io.layout import SPLITS, Pair
from lodetools.io.paths import safe_name

#: every layout name, detection order (``lodetools`` first, ``plain`` last)
LAYOUTS = ("lodetools", "gopro", "reds", "realblur", "hide", "reloblur", "bladenet", "plain")
#: layout -> its variants (first = default; ``None``: every variant present)
VARIANTS = {
    "gopro": ("blur", "blur_gamma"),
    "reds": ("blur", "blur_comp", "blur_jpeg"),
    "realblur": (None, "J", "R"),
}
#: split name given to pairs of a dataset that has no split folders
UNSPLIT = "all"
#: folder names of each role in a plain paired leaf
PLAIN_ROLES = {"blur": ("blur", "input"), "sharp": ("sharp", "gt", "GT", "target"),
               "mask": ("mask", "masks")}
MASK_EXTENSIONS = IMAGE_EXTENSIONS + (".npy",)
_GOPRO_SCENE = re.compile(r"^GOPR\d{4}_\d{2}_\d{2}$")
_REALBLUR_LIST = re.compile(r"^RealBlur_([JR])_(train|test)_list\.txt$")


@dataclass
class Problem:
    """Something wrong or odd in a dataset.

    ``role`` is the role the problem deprives a pair of (``'blur'``,
    ``'sharp'``, ``'mask'``): a reader that needs that role raises it. ``None``
    means the dataset is broken for every reader (e.g. a mask of another size).
    ``fatal=False`` marks a note that never stops a reader (an extra file).
    ``split`` is the split it concerns (``None``: every split).
    """

    error: LodeError
    role: str | None = None
    fatal: bool = True
    split: str | None = None

    @property
    def message(self) -> str:
        return self.error.message


@dataclass
class DatasetScan:
    """Every pair of a dataset root, its layout and what is odd in it.

    Attributes
    ----------
    root : Path
        The folder as given.
    layout : str
        One of :data:`LAYOUTS`.
    variant : str or None
    base : Path
        The folder the layout starts at (``root`` or a conventional sub-folder
        such as ``GOPRO_Large``).
    pairs : list of Pair
        In key order.
    problems : list of Problem
    sources : dict
        split -> the file or folder that defines it (named when it is empty).
    """

    root: Path
    layout: str
    variant: str | None
    base: Path
    pairs: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    sources: dict = field(default_factory=dict)

    @property
    def splits(self) -> list[str]:
        """Split names, with any split that is declared but empty."""
        return sorted({p.split for p in self.pairs} | set(self.sources))


# ----------------------------------------------------------------------------- helpers

def parse_layout(text: str | None) -> tuple[str | None, str | None]:
    """``"NAME"`` or ``"NAME:VARIANT"`` -> ``(name, variant)``; ``None`` -> ``(None, None)``.

    Raises
    ------
    BadConfig
        Unknown layout or variant.
    """
    if text is None or str(text).strip() in ("", "auto"):
        return None, None
    name, _, variant = str(text).strip().partition(":")
    name = name.lower()
    if name not in LAYOUTS:
        raise BadConfig(f"unknown layout {name!r}; known: {', '.join(LAYOUTS)}")
    if not variant:
        return name, None
    known = [v for v in VARIANTS.get(name, ()) if v]
    if name == "realblur":
        variant = variant.upper()
    if variant not in known:
        raise BadConfig(f"layout {name} has no variant {variant!r}"
                        + (f"; known: {', '.join(known)}" if known else ""))
    return name, variant


def _images(folder: Path, exts=IMAGE_EXTENSIONS) -> list[Path]:
    """Image files directly in a folder, natural order (hidden files skipped)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return sorted((Path(e.path) for e in entries
                   if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in exts
                   and e.is_file()), key=natural_key)


def _subdirs(folder: Path) -> list[Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return sorted((Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")),
                  key=natural_key)


def _by_stem(files: list[Path], folder: Path, problems: list, role: str) -> dict[str, Path]:
    """stem -> file; a stem present twice (``a.png`` and ``a.jpg``) is a problem."""
    out = {}
    for f in files:
        if f.stem in out:
            problems.append(Problem(BadInput(f"two {role} images share the name {f.stem!r}", f), None))
            continue
        out[f.stem] = f
    return out


def _scene_key(*parts: str) -> str:
    """A scene name from path components, each made a safe component (``/`` kept between)."""
    return "/".join(safe_name(p, what="scene name") for p in parts if p)


def _rel(path: Path | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def make_pair(root: Path, layout: str, split: str, scene: str, item_id: str, blur: Path | None,
              sharp: Path | None, mask: Path | None = None, **extra) -> Pair:
    """A :class:`Pair` of a foreign layout, its record shaped like a manifest record."""
    split = safe_name(split, what="split")
    item_id = safe_name(item_id, what="item id")
    key = f"{split}/{scene}/{item_id}"
    files = {r: _rel(p, root) for r, p in (("blur", blur), ("sharp", sharp), ("mask", mask))
             if p is not None}
    record = {"key": key, "id": item_id, "split": split, "scene": scene, "files": files,
              "layout": layout, **extra}
    return Pair(key, item_id, split, scene, blur, sharp, mask, record)


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image or ``.npy`` mask, from its header only.

    Raises
    ------
    BadInput
        If the file cannot be decoded.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            import numpy as np
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            if arr.ndim not in (2, 3):
                raise BadInput(f"mask array has shape {arr.shape}, expected (H, W) or (H, W, 1)", path)
            return int(arr.shape[1]), int(arr.shape[0])
        size = declared_size(path)
        if size is None:
            raise BadInput("cannot read image header", path)
        return size
    except LodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad input
        raise BadInput(f"cannot read image header ({exc.__class__.__name__})", path) from None


# ----------------------------------------------------------------------------- detection

def _gopro_base(root: Path, *, forced: bool = False) -> Path | None:
    """The GoPro folder: scenes ``{train,test}/<scene>/{blur|blur_gamma, sharp}``.

    Detection also wants a GoPro mark (a ``GOPRO_Large`` folder, a
    ``blur_gamma/`` folder or a ``GOPRnnnn_nn_nn`` scene): the bare shape is
    the ``plain`` layout, which reads it the same way.
    """
    for base in (root, root / "GOPRO_Large"):
        for split in ("train", "test"):
            for scene in _subdirs(base / split):
                if (scene / "sharp").is_dir() and ((scene / "blur").is_dir() or (scene / "blur_gamma").is_dir()):
                    if forced or base.name == "GOPRO_Large" or (scene / "blur_gamma").is_dir() \
                            or _GOPRO_SCENE.match(scene.name):
                        return base
    return None


def _reds_dirs(base: Path) -> dict[tuple[str, str], Path]:
    """(split, kind) -> folder, kind ``blur``, ``blur_comp``, ``blur_jpeg`` or ``sharp``."""
    out = {}
    for split in ("train", "val", "test"):
        for parent in (base / split, base):
            for d in _subdirs(parent):
                if d.name.startswith(split + "_"):
                    kind = d.name[len(split) + 1:]
                    if kind in ("blur", "blur_comp", "blur_jpeg", "sharp"):
                        out.setdefault((split, kind), d)
    return out


def _reds_base(root: Path) -> Path | None:
    for base in (root, root / "REDS"):
        if any(k.startswith("blur") for _, k in _reds_dirs(base)):
            return base
    return None


def _realblur_lists(root: Path) -> list[tuple[str, str, Path]]:
    """(variant J/R, split, list file) for every RealBlur list at the root."""
    out = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return out
    for name in names:
        m = _REALBLUR_LIST.match(name)
        if m and (root / name).is_file():
            out.append((m.group(1), m.group(2), root / name))
    return out


def _hide_base(root: Path) -> Path | None:
    for base in (root, root / "HIDE_dataset"):
        if (base / "GT").is_dir() and ((base / "train").is_dir() or (base / "test").is_dir()):
            return base
    return None


def _reloblur_base(root: Path) -> Path | None:
    for base in (root / "dataset", root):
        for split in ("train", "test"):
            for scene in _subdirs(base / split):
                for seq in _subdirs(scene):
                    if any(f.stem.endswith("_blur") for f in _images(seq)):
                        return base
    return None


def _npy_dir(leaf: Path) -> Path | None:
    for d in _subdirs(leaf):
        if d.name not in ("blur", "sharp") and _images(d, (".npy",)):
            return d
    return None


def _bladenet_leaves(root: Path) -> list[Path]:
    cands = [root] + [root / s for s in SPLITS]
    return [c for c in cands if (c / "blur").is_dir() and (c / "sharp").is_dir() and _npy_dir(c)]


def _plain_leaves(root: Path) -> list[Path]:
    """Folders under ``root`` (itself included) holding a blur-role and a sharp-role folder."""
    leaves = []
    role_names = {n for names in PLAIN_ROLES.values() for n in names}
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=natural_key)
        names = set(dirnames)
        if names & set(PLAIN_ROLES["blur"]) and names & set(PLAIN_ROLES["sharp"]):
            leaves.append(Path(dirpath))
            dirnames[:] = [d for d in dirnames if d not in role_names]
    return leaves


_DETECTORS = {
    "gopro": _gopro_base,
    "reds": _reds_base,
    "realblur": lambda r: r if _realblur_lists(r) else None,
    "hide": _hide_base,
    "reloblur": _reloblur_base,
    "bladenet": lambda r: r if _bladenet_leaves(r) else None,
}


def detect_layout(root) -> tuple[str, Path]:
    """The layout of a dataset root and the folder it starts at.

    Parameters
    ----------
    root : str or os.PathLike

    Returns
    -------
    (name, base) : (str, Path)

    Raises
    ------
    MissingInput
        The folder does not exist, or no layout is recognised in it.
    BadInput
        The root looks like two layouts at once (pass ``layout=`` to choose).
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingInput("not a folder" if root.exists() else "dataset folder not found", root)
    if (root / "dataset.json").is_file():
        return "lodetools", root
    found = [(name, base) for name, det in _DETECTORS.items() if (base := det(root)) is not None]
    if len(found) > 1:
        names = " and ".join(n for n, _ in found)
        raise BadInput(f"ambiguous dataset root: it looks like {names}; choose one with --layout", root)
    if found:
        return found[0]
    if _plain_leaves(root):
        return "plain", root
    raise MissingInput("not a lodetools dataset (no dataset.json) nor a known published layout (GoPro, "
                       "REDS, RealBlur, HIDE, ReLoBlur, BladeNet, blur/ + sharp/ folders)", root)


# ----------------------------------------------------------------------------- scanners

def _split_dirs(scan: DatasetScan, splits) -> list[tuple[str, Path]]:
    """``(split, folder)`` for each split folder under the base, recorded as the split's source."""
    out = [(s, scan.base / s) for s in splits if (scan.base / s).is_dir()]
    for s, d in out:
        scan.sources[s] = d
    return out


def _scan_gopro(scan: DatasetScan) -> None:
    variant = scan.variant or "blur"
    for split, sdir in _split_dirs(scan, ("train", "test")):
        for scene_dir in _subdirs(sdir):
            if not (scene_dir / "sharp").is_dir():
                continue
            scene = _scene_key(scene_dir.name)
            bdir = scene_dir / variant
            if not bdir.is_dir():
                scan.problems.append(Problem(MissingInput(f"GoPro scene has no {variant}/ folder", bdir),
                                             "blur", split=split))
                continue
            _pair_by_stem(scan, split, scene, bdir, scene_dir / "sharp", None)


def _pair_by_stem(scan: DatasetScan, split: str, scene: str, bdir: Path, sdir: Path | None,
                  mdir: Path | None, *, sharp_optional: bool = False) -> None:
    """Pairs of one scene whose roles sit in parallel folders under the same file stem."""
    n0 = len(scan.problems)
    blurs = _by_stem(_images(bdir), bdir, scan.problems, "blurred")
    sharps = _by_stem(_images(sdir), sdir, scan.problems, "sharp") if sdir is not None else {}
    masks = _by_stem(_images(mdir, MASK_EXTENSIONS), mdir, scan.problems, "mask") if mdir else {}
    for stem, b in blurs.items():
        s = sharps.get(stem)
        if s is None and not sharp_optional:
            where = sdir if sdir is not None else bdir.parent
            scan.problems.append(Problem(MissingInput(f"blurred image has no sharp partner in {where.name}/", b),
                                         "sharp"))
        scan.pairs.append(make_pair(scan.root, scan.layout, split, scene, stem, b, s, masks.get(stem)))
    for stem in sorted(set(sharps) - set(blurs), key=natural_key):
        scan.problems.append(Problem(MissingInput("sharp image has no blurred partner", sharps[stem]),
                                     fatal=False))
    for stem in sorted(set(masks) - set(blurs), key=natural_key):
        scan.problems.append(Problem(MissingInput("mask has no blurred partner", masks[stem]), fatal=False))
    for prob in scan.problems[n0:]:
        prob.split = split


def _scan_reds(scan: DatasetScan) -> None:
    variant = scan.variant or "blur"
    dirs = _reds_dirs(scan.base)
    for split in ("train", "val", "test"):
        bdir, sdir = dirs.get((split, variant)), dirs.get((split, "sharp"))
        if bdir is None:
            if (split, "sharp") in dirs:
                scan.problems.append(Problem(MissingInput(f"REDS has {split}_sharp/ but no {split}_{variant}/",
                                                          sdir), "blur", split=split))
            continue
        scan.sources[split] = bdir
        for clip in _subdirs(bdir):
            scene = _scene_key(clip.name)
            # the test set ships no sharp images: its pairs have a blurred image only
            _pair_by_stem(scan, split, scene, clip, None if sdir is None else sdir / clip.name, None,
                          sharp_optional=sdir is None)


def _scan_realblur(scan: DatasetScan) -> None:
    lists = [(v, s, p) for v, s, p in _realblur_lists(scan.base) if scan.variant in (None, v)]
    if not lists:
        raise MissingInput(f"no RealBlur_{scan.variant or '{J,R}'}_{{train,test}}_list.txt here", scan.base)
    for variant, split, lst in lists:
        scan.sources.setdefault(split, lst)
        try:
            text = lst.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"cannot read RealBlur list ({exc.__class__.__name__})", lst) from None
        for n, line in enumerate(text.splitlines(), 1):
            tok = line.split()
            if not tok:
                continue
            if len(tok) != 2:
                scan.problems.append(Problem(BadInput(f"line {n}: expected '<gt> <blur>', got {len(tok)} "
                                                      f"field(s)", lst), split=split))
                continue
            gt, blur = (scan.base / t for t in tok)
            bad = next((t for t in tok if Path(t).is_absolute() or ".." in Path(t).parts), None)
            if bad is not None:
                scan.problems.append(Problem(BadInput(f"line {n}: path {bad!r} leaves the dataset root", lst), split=split))
                continue
            missing = [(r, p) for r, p in (("sharp", gt), ("blur", blur)) if not p.is_file()]
            for role, p in missing:
                scan.problems.append(Problem(MissingInput(
                    f"{lst.name} line {n} names a missing {'ground-truth' if role == 'sharp' else 'blurred'} "
                    f"image", p), role, split=split))
            parts = Path(tok[1]).parts
            scene_name = parts[-3] if len(parts) >= 3 else (parts[0] if len(parts) > 1 else "scene")
            scene = _scene_key(f"RealBlur-{variant}", scene_name)
            scan.pairs.append(make_pair(scan.root, "realblur", split, scene, blur.stem,
                                        None if ("blur", blur) in missing else blur,
                                        None if ("sharp", gt) in missing else gt,
                                        list_file=lst.name, list_line=n))


def _scan_hide(scan: DatasetScan) -> None:
    gt_dir = scan.base / "GT"
    gts = {f.name: f for f in _images(gt_dir)}
    folders = [("train", scan.base / "train")] + [("test", d) for d in _subdirs(scan.base / "test")]
    folders += [("test", scan.base / "test")] if _images(scan.base / "test") else []
    used = set()
    for split, folder in folders:
        files = _images(folder)
        if not folder.is_dir():
            continue
        scan.sources.setdefault(split, folder)
        scene = _scene_key(folder.name)
        for b in files:
            s = gts.get(b.name)
            if s is None:
                scan.problems.append(Problem(MissingInput(f"HIDE blurred image has no GT/ partner "
                                                          f"(expected GT/{b.name})", b), "sharp", split=split))
            used.add(b.name)
            scan.pairs.append(make_pair(scan.root, "hide", split, scene, b.stem, b, s))
    for name in sorted(set(gts) - used, key=natural_key):
        scan.problems.append(Problem(MissingInput("GT image has no blurred partner", gts[name]), fatal=False))


def _scan_reloblur(scan: DatasetScan) -> None:
    mask_root = None
    if scan.base.name == "dataset" and (scan.base.parent / "masks").is_dir():
        mask_root = scan.base.parent / "masks"
    for split, sdir in _split_dirs(scan, ("train", "test")):
        for scene_dir in _subdirs(sdir):
            for seq in _subdirs(scene_dir):
                scene = _scene_key(scene_dir.name, seq.name)
                files = {f.stem: f for f in _images(seq)}
                mdir = None if mask_root is None else mask_root / split / scene_dir.name / seq.name
                masks = {f.stem: f for f in _images(mdir, MASK_EXTENSIONS)} if mdir is not None else {}
                for stem, b in files.items():
                    if not stem.endswith("_blur"):
                        continue
                    k = stem[:-len("_blur")]
                    s = files.get(f"{k}_sharp")
                    if s is None:
                        scan.problems.append(Problem(MissingInput(f"blurred image has no {k}_sharp partner", b),
                                                     "sharp", split=split))
                    m = masks.get(k)
                    if m is None and mdir is not None:
                        scan.problems.append(Problem(MissingInput(f"no mask {k}.png for this pair", mdir / f"{k}.png"),
                                                     "mask", fatal=False, split=split))
                    scan.pairs.append(make_pair(scan.root, "reloblur", split, scene, k, b, s, m))


def _scan_bladenet(scan: DatasetScan) -> None:
    for leaf in _bladenet_leaves(scan.base):
        split = leaf.name if leaf != scan.base and leaf.name in SPLITS else UNSPLIT
        scene = _scene_key(leaf.name if leaf != scan.base else (scan.root.resolve().name or "root"))
        scan.sources[split] = leaf
        blurs, sharps = _images(leaf / "blur"), _images(leaf / "sharp")
        mdir = _npy_dir(leaf)
        masks = _images(mdir, (".npy",))
        # BladeNet pairs the i-th of each sorted listing (Python sorted: by name)
        blurs, sharps, masks = (sorted(x, key=lambda p: p.name) for x in (blurs, sharps, masks))
        if len(blurs) != len(sharps):
            scan.problems.append(Problem(BadInput(f"blur/ holds {len(blurs)} images but sharp/ {len(sharps)}; "
                                                  "BladeNet pairs them by sorted name", leaf / "sharp"), "sharp", split=split))
        if masks and len(masks) != len(blurs):
            scan.problems.append(Problem(BadInput(f"blur/ holds {len(blurs)} images but {mdir.name}/ "
                                                  f"{len(masks)} .npy masks", mdir), "mask", split=split))
        for i, b in enumerate(blurs):
            s = sharps[i] if i < len(sharps) and len(blurs) == len(sharps) else None
            m = masks[i] if len(masks) == len(blurs) else None
            scan.pairs.append(make_pair(scan.root, "bladenet", split, scene, b.stem, b, s, m))


def _scan_plain(scan: DatasetScan) -> None:
    for leaf in _plain_leaves(scan.base):
        rel = leaf.relative_to(scan.base).parts
        split_i = next((i for i, p in enumerate(rel) if p in SPLITS), None)
        split = rel[split_i] if split_i is not None else UNSPLIT
        rest = [p for i, p in enumerate(rel) if i != split_i]
        scene = _scene_key(*rest) if rest else _scene_key(scan.root.resolve().name or "root")
        scan.sources.setdefault(split, leaf)

        def role_dir(role):
            return next((leaf / n for n in PLAIN_ROLES[role] if (leaf / n).is_dir()), None)

        _pair_by_stem(scan, split, scene, role_dir("blur"), role_dir("sharp"), role_dir("mask"))


_SCANNERS = {"gopro": _scan_gopro, "reds": _scan_reds, "realblur": _scan_realblur, "hide": _scan_hide,
             "reloblur": _scan_reloblur, "bladenet": _scan_bladenet, "plain": _scan_plain}


def _scan_lodetools(scan: DatasetScan) -> None:
    from lodetools.io.layout import read_manifest_pairs
    scan.pairs.extend(read_manifest_pairs(scan.root))


# ----------------------------------------------------------------------------- public API

def find_external_mask(masks_dir: Path, pair: Pair) -> Path | None:
    """The mask of ``pair`` in a masks folder written outside its dataset (see module doc)."""
    scene = pair.scene
    for rel in (f"{pair.split}/{scene}/mask/{pair.id}", f"{pair.split}/{safe_name(scene.replace('/', '_'))}"
                f"/mask/{pair.id}", f"{pair.split}/{scene}/{pair.id}"):
        for ext in (".png", ".npy"):
            p = masks_dir / f"{rel}{ext}"
            if p.is_file():
                return p
    return None


def scan_dataset(root, *, layout: str | None = None, masks=None, check_sizes: bool = True) -> DatasetScan:
    """Every pair of a dataset root, and every problem found in it.

    Parameters
    ----------
    root : str or os.PathLike
        The dataset folder, as downloaded.
    layout : str, optional
        ``"NAME"`` or ``"NAME:VARIANT"`` to force a layout (see module doc);
        detected when omitted.
    masks : str or os.PathLike, optional
        A folder of masks made outside the dataset (see module doc); they
        replace the dataset's own.
    check_sizes : bool
        Compare each mask's size with its blurred image's (headers only).

    Returns
    -------
    DatasetScan

    Raises
    ------
    MissingInput, BadInput, BadConfig
        No such folder, no layout recognised, an ambiguous root, an unknown layout.
    """
    root = Path(root)
    name, variant = parse_layout(layout)
    if not root.is_dir():
        raise MissingInput("not a folder" if root.exists() else "dataset folder not found", root)
    if name is None:
        name, base = detect_layout(root)
    elif name == "lodetools":
        base = root
    elif name == "plain":
        base = root
    else:
        base = _gopro_base(root, forced=True) if name == "gopro" else _DETECTORS[name](root)
        if base is None:
            raise MissingInput(f"not a {name} dataset root (see `lodetools inspect --help` for its layout)", root)
    if name in VARIANTS and variant is None:
        variant = VARIANTS[name][0]
    scan = DatasetScan(root, name, variant, base)
    if name == "lodetools":
        _scan_lodetools(scan)
    else:
        _SCANNERS[name](scan)
    dup = [k for k, c in Counter(p.key for p in scan.pairs).items() if c > 1]
    for key in dup[:1]:
        scan.problems.append(Problem(BadInput(f"two pairs share the key {key!r}", root), split=key.split("/")[0]))
    if masks is not None:
        mdir = Path(masks)
        if not mdir.is_dir():
            raise MissingInput("masks folder not found", mdir)
        scan.pairs = [_with_mask(p, find_external_mask(mdir, p)) for p in scan.pairs]
    if check_sizes:
        for p in scan.pairs:
            if p.mask is not None and p.blur is not None and p.blur.is_file() and p.mask.is_file():
                try:
                    mw, mh = image_size(p.mask)
                    bw, bh = image_size(p.blur)
                except BadInput as exc:  # an unreadable header is listed, not a stop
                    scan.problems.append(Problem(exc, split=p.split))
                    continue
                if (mw, mh) != (bw, bh):
                    scan.problems.append(Problem(BadInput(f"mask is {mw}x{mh} but its blurred image is {bw}x{bh}",
                                                          p.mask), split=p.split))
    scan.pairs.sort(key=lambda p: natural_key(p.key))
    return scan


def _with_mask(pair: Pair, mask: Path | None) -> Pair:
    rec = dict(pair.record)
    files = dict(rec.get("files", {}))
    if mask is None:
        files.pop("mask", None)
    else:
        files["mask"] = str(mask)
    rec["files"] = files
    return Pair(pair.key, pair.id, pair.split, pair.scene, pair.blur, pair.sharp, mask, rec)


def check_sizes(scan: DatasetScan) -> list[Problem]:
    """Size mismatches between blurred and sharp images (headers only), for ``inspect``."""
    out = []
    for p in scan.pairs:
        if p.blur is not None and p.sharp is not None and p.blur.is_file() and p.sharp.is_file():
            try:
                bw, bh = image_size(p.blur)
                sw, sh = image_size(p.sharp)
            except BadInput as exc:
                if not any(q.error.path == exc.path for q in out + scan.problems):  # listed once
                    out.append(Problem(exc, split=p.split))
                continue
            if (bw, bh) != (sw, sh):
                out.append(Problem(BadInput(f"sharp image is {sw}x{sh} but its blurred image is {bw}x{bh}",
                                            p.sharp), "sharp", split=p.split))
    return out


MASKS_HINT = ("make them with `lodetools masks --data {root} --out DIR` and pass --masks DIR, "
              "or train a network that needs none")


def select_pairs(scan: DatasetScan, *, split: str | None = None, require=("blur", "sharp")) -> list[Pair]:
    """The pairs of one split that have every required role, raising the problems that matter.

    Parameters
    ----------
    scan : DatasetScan
    split : str or None
        ``None`` for every split.
    require : tuple of str
        Roles every returned pair must have.

    Raises
    ------
    LodeError
        The first problem of the dataset that deprives a pair of a required role
        (or that breaks every reader); ``MissingInput`` for an empty or unknown
        split, or when no pair has a required role (masks: naming the fix).
    """
    in_split = [p for p in scan.pairs if split is None or p.split == split]
    for prob in scan.problems:
        if not prob.fatal or (prob.role is not None and prob.role not in require):
            continue
        if split is None or prob.split in (None, split):
            raise prob.error
    if not in_split:
        src = scan.sources.get(split) if split is not None else scan.root
        if src is not None:
            what = f"split {split!r} is" if split is not None else "the dataset is"
            raise MissingInput(f"{what} empty ({scan.layout} layout)", src)
        known = ", ".join(scan.splits) or "none"
        raise MissingInput(f"no split {split!r} in this {scan.layout} dataset (splits here: {known}"
                           + (f"; use --split {UNSPLIT}" if scan.splits == [UNSPLIT] else "") + ")", scan.root)
    out = [p for p in in_split if all(getattr(p, r) is not None for r in require)]
    if not out:
        role = next(r for r in require if all(getattr(p, r) is None for p in in_split))
        where = f"split {split!r}" if split is not None else "this dataset"
        if role == "mask":
            raise MissingInput(f"no pair in {where} has a local-blur mask ({scan.layout} ships none); "
                               + MASKS_HINT.format(root=scan.root), scan.root)
        if role == "sharp":
            raise MissingInput(f"no pair in {where} has a sharp image (the {scan.layout} {split or ''} set "
                               "ships none)", scan.sources.get(split, scan.root))
        raise MissingInput(f"no pair in {where} has a {role} image", scan.root)
    return out


def read_dataset(root, *, split: str | None = None, require=("blur", "sharp"), layout: str | None = None,
                 masks=None) -> list[Pair]:
    """The pairs of a dataset root in any supported layout (see :func:`scan_dataset`).

    Parameters
    ----------
    root : str or os.PathLike
    split : str or None
    require : tuple of str
    layout : str, optional
        ``"NAME"`` or ``"NAME:VARIANT"``; detected when omitted.
    masks : path, optional
        Masks made outside the dataset.

    Returns
    -------
    list of Pair
    """
    scan = scan_dataset(root, layout=layout, masks=masks)
    return select_pairs(scan, split=split, require=require)


def check_outside(root, out) -> None:
    """Refuse an output folder inside a downloaded dataset (read-only input).

    Raises
    ------
    BadConfig
        If ``out`` is ``root`` or inside it.
    """
    r, o = Path(root).resolve(), Path(out).resolve()
    if o == r or r in o.parents:
        raise BadConfig(f"the output folder is inside the dataset {root}; nothing is written inside a "
                        "downloaded dataset, choose --out elsewhere", out)


def summarize(scan: DatasetScan) -> dict:
    """Counts per split for ``inspect``: pairs, scenes, with sharp, with mask."""
    out = {}
    by_split = defaultdict(list)
    for p in scan.pairs:
        by_split[p.split].append(p)
    for split in scan.splits:
        ps = by_split.get(split, [])
        out[split] = {"pairs": len(ps), "scenes": len({p.scene for p in ps}),
                      "with_sharp": sum(p.sharp is not None for p in ps),
                      "with_mask": sum(p.mask is not None for p in ps)}
    return out
