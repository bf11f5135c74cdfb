"""The ``masks`` pipeline: LBFMG local-blur masks for a paired dataset, and blur statistics.

Input: a paired dataset (``align``, ``synthesize``, ``develop`` output; see
:mod:`lodetools.io.layout`). Pairs are grouped by ``(split, scene)`` and taken
in natural order of their ids; a pair whose record has ``"static": true``
(``align`` writes it with id ``reference``) is the scene's static pair
``(S_0, B_0)`` of ReLoBlur Algorithm 1. One work item is one scene, because
every mask of a scene uses all the scene's other pairs.

Output, in place (the default, ``--out`` omitted or equal to ``--data``):

- ``<split>/<scene>/mask/<id>.png`` (0/255), written atomically;
- one new manifest record per masked pair, appended: the pair's record with
  ``files.mask``, ``sha256.mask`` and ``mask_provenance`` added (the manifest
  reader keeps the later record of a key; an unsharded run then rewrites the
  manifest compacted and sorted, atomically);
- ``mask_stats.json`` and ``mask_stats.png`` (blurred fraction per image,
  dataset summary, histogram);
- a ``masks`` section in ``dataset.json`` (parameters, recipe, statistics).

A rerun resumes: pairs whose mask is recorded and intact are kept. Masks the
dataset already had (e.g. the true masks from ``synthesize``) are never
replaced without ``--overwrite``; LBFMG masks made with other parameters make
the run stop with an output conflict unless ``--overwrite``. Static pairs get
no mask and are left out of the statistics.

With ``--out NEW`` the dataset is copied (images byte for byte, records with
their checksums) into a new dataset with the masks added.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from lodetools import __version__
from lodetools.errors import BadConfig, BadInput, OutputConflict
from lodetools.io.atomic import atomic_write_bytes, atomic_write_text
from lodetools.io.images import encode_image, natural_key, read_image_native, read_mask
from lodetools.io.layout import pair_relpath, read_pairs
from lodetools.io.manifest import (
    DATASET_JSON, SHARD_DIR, output_lock, read_dataset_json, read_manifest, record_intact,
    write_dataset_json,
)
from lodetools.io.paths import confined
from lodetools.masks.lbfmg import LBFMGParams, scene_masks, to_uint8
from lodetools.masks.stats import blurred_fraction, histogram_png, summarize
from lodetools.runner import (RunOptions, RunSummary, WorkItem, check_output, in_shard, png_setting,
                              recorded_parameters, run_items)

STATS_JSON = "mask_stats.json"
STATS_PNG = "mask_stats.png"
METHOD = "lbfmg"


def params_id(lbfmg: LBFMGParams, no_static: str) -> str:
    """A short stable id of everything that determines a mask (recorded per mask)."""
    doc = json.dumps({"lbfmg": lbfmg.to_dict(), "no_static": no_static}, sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def _is_static(rec: dict) -> bool:
    return rec.get("static") is True


def load_uint8(path) -> np.ndarray:
    """An image file as ``uint8 (H, W, 3)`` for MOG2 (gray files repeated; 16-bit rounded)."""
    img = read_image_native(path)
    if img.dtype not in (np.uint8, np.uint16):
        raise BadInput(f"unsupported image type {img.dtype} for masks (need 8- or 16-bit)", path)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return to_uint8(img)


def group_scenes(pairs) -> dict:
    """``(split, scene)`` -> (static pair or None, other pairs in natural id order).

    Raises
    ------
    BadInput
        A scene with more than one static pair.
    """
    scenes: dict = {}
    for p in pairs:
        scenes.setdefault((p.split, p.scene), []).append(p)
    out = {}
    for key, ps in sorted(scenes.items()):
        static = [p for p in ps if _is_static(p.record)]
        if len(static) > 1:
            raise BadInput(f"scene has {len(static)} static pairs ({', '.join(p.id for p in static)})",
                           f"{key[0]}/{key[1]}")
        others = sorted((p for p in ps if not _is_static(p.record)), key=lambda p: natural_key(p.id))
        out[key] = (static[0] if static else None, others)
    return out


def _copy_file(data: Path, out: Path, rel: str) -> str:
    src = confined(data, rel)
    if not src.is_file():
        raise BadInput("file listed in the manifest is missing", src)
    blob = src.read_bytes()
    atomic_write_bytes(confined(out, rel), blob)
    return hashlib.sha256(blob).hexdigest()


def process_scene(item: WorkItem, rng, *, data: Path, out: Path, lbfmg: LBFMGParams,
                  no_static: str, pid: str, png_compression=None) -> list:
    """Make the masks of one scene (the runner's item function).

    ``item.payload`` = ``(split, scene, static_record, static_todo,
    [(record, todo), ...])`` with ``todo`` one of ``'mask'`` (compute),
    ``'copy'`` (copy to a new dataset unchanged), ``None`` (nothing).
    ``png_compression``: how the mask PNGs are encoded
    (:func:`lodetools.io.images.encode_image`). Returns the new manifest records.
    """
    split, scene, static_rec, static_todo, entries = item.payload
    in_place = out.resolve() == data.resolve()
    roles = ("sharp", "blur")

    def path_of(rec, role):
        return confined(data, rec["files"][role])

    loaded = {}
    shape = None
    for rec, _ in ([(static_rec, None)] if static_rec else []) + entries:
        imgs = []
        for role in roles:
            p = path_of(rec, role)
            img = load_uint8(p)
            if shape is None:
                shape = img.shape[:2]
            elif img.shape[:2] != shape:
                raise BadInput(f"size mismatch in scene: {img.shape[1]}x{img.shape[0]} vs "
                               f"{shape[1]}x{shape[0]} (all images of a scene must match)", p)
            imgs.append(img)
        loaded[rec["key"]] = tuple(imgs)

    pairs = [loaded[rec["key"]] for rec, _ in entries]
    targets = [i for i, (_, todo) in enumerate(entries) if todo == "mask"]
    if static_rec is not None:
        background, static = "static", loaded[static_rec["key"]]
    elif no_static == "median":
        background, static = "median", None
    else:
        raise BadInput("scene has no static pair (a record with \"static\": true); "
                       "use --no-static median to start from a median background", f"{split}/{scene}")
    if background == "median" and targets and len(pairs) < 3:
        raise BadInput(f"scene without a static pair has {len(pairs)} pair(s); the median "
                       "background needs at least 3 (2 besides the target)", f"{split}/{scene}")
    masks = scene_masks(pairs, static, lbfmg, background=background, targets=targets) if targets else []
    by_index = dict(zip(targets, masks))

    records = []
    ids = [rec["id"] for rec, _ in entries]
    for i, (rec, todo) in enumerate(entries):
        if todo is None:
            continue
        new = json.loads(json.dumps(rec))
        if in_place:
            # keep the upstream command's grouping, so its reruns still see the pair done
            # and this command's items (keys "masks:...") are never skipped by the runner
            new["item"] = rec.get("item", rec["key"])
            new["item_records"] = rec.get("item_records", 1)
        else:
            new.pop("item", None)
            new.pop("item_records", None)
            for role, rel in rec.get("files", {}).items():
                if todo == "mask" and role == "mask":
                    continue
                new.setdefault("sha256", {})[role] = _copy_file(data, out, rel)
        if todo == "mask":
            rel = pair_relpath(split, scene, "mask", rec["id"])
            blob = encode_image(by_index[i], ".png", png_compression=png_compression)
            atomic_write_bytes(confined(out, rel), blob)
            new.setdefault("files", {})["mask"] = rel
            new.setdefault("sha256", {})["mask"] = hashlib.sha256(blob).hexdigest()
            new["mask_provenance"] = {
                "method": METHOD,
                "params_id": pid,
                "background": background if background == "median" else f"static pair {static_rec['id']}",
                "history": [x for j, x in enumerate(ids) if j != i],
                "blurred_fraction": blurred_fraction(by_index[i]),
            }
        records.append(new)
    if static_todo == "copy":  # the static pair travels with its scene into a new dataset
        new = json.loads(json.dumps(static_rec))
        new.pop("item", None)
        new.pop("item_records", None)
        for role, rel in static_rec.get("files", {}).items():
            new.setdefault("sha256", {})[role] = _copy_file(data, out, rel)
        records.append(new)
    return records


def _pair_done(out: Path, rec: dict | None, pid: str, conflicts: list) -> bool:
    """True if ``rec`` (the output's record of a pair) has an intact mask to keep."""
    if rec is None or "mask" not in rec.get("files", {}) or not record_intact(out, rec):
        return False
    prov = rec.get("mask_provenance")
    if isinstance(prov, dict) and prov.get("method") == METHOD and prov.get("params_id") != pid:
        conflicts.append(rec["key"])
    return True


def plan(data: Path, out: Path, *, split: str | None, lbfmg: LBFMGParams, no_static: str,
         overwrite: bool, layout: str | None = None) -> tuple[list, list]:
    """The work items: one per scene that has a pair to mask (or to copy).

    ``layout`` forces the dataset layout of ``data`` (``"NAME"`` or ``"NAME:VARIANT"``; detected when None).

    Returns
    -------
    items : list of WorkItem
    done : list of str
        Keys of the scenes with nothing left to do.
    """
    in_place = out.resolve() == data.resolve()
    pid = params_id(lbfmg, no_static)
    pairs = read_pairs(data, split=split, layout=layout)
    existing = {} if overwrite else (read_manifest(out) if out.is_dir() else {})
    conflicts: list = []
    items, done = [], []
    for (sp, sc), (static, others) in group_scenes(pairs).items():
        entries = []
        for p in others:
            cur = existing.get(p.key)
            if in_place:
                todo = None if (not overwrite and _pair_done(out, cur, pid, conflicts)) else "mask"
            elif cur is not None and record_intact(out, cur) and (
                    "mask" in cur.get("files", {})):
                _pair_done(out, cur, pid, conflicts)
                todo = None
            else:
                todo = "copy" if (not overwrite and "mask" in p.record.get("files", {})
                                  and record_intact(data, p.record)) else "mask"
            entries.append((p.record, todo))
        static_todo = None
        if static is not None and not in_place:
            cur = existing.get(static.key)
            static_todo = None if (cur is not None and record_intact(out, cur)) else "copy"
        if static_todo or any(t is not None for _, t in entries):
            items.append(WorkItem(f"masks:{sp}/{sc}",
                                  (sp, sc, static.record if static else None, static_todo, entries)))
        elif entries:
            done.append(f"masks:{sp}/{sc}")
    if conflicts:
        raise OutputConflict(f"{len(conflicts)} mask(s) were made by LBFMG with other parameters "
                             f"(e.g. {conflicts[0]}); use --overwrite to redo them", out)
    return items, done


def dataset_stats(root: Path) -> tuple[dict, dict]:
    """Per-image blurred fractions of every non-static masked pair, and their summary.

    Returns
    -------
    per_image : dict
        key -> fraction.
    summary : dict
        :func:`lodetools.masks.stats.summarize` of all, plus ``by_split``.
    """
    per_image, split_of = {}, {}
    for key, rec in read_manifest(root).items():
        if _is_static(rec) or "mask" not in rec.get("files", {}):
            continue
        prov = rec.get("mask_provenance") or {}
        frac = prov.get("blurred_fraction")
        if frac is None:
            frac = blurred_fraction(read_mask(confined(root, rec["files"]["mask"])))
        per_image[key] = float(frac)
        split_of[key] = rec.get("split", "")
    summary = summarize(per_image.values())
    summary["by_split"] = {s: summarize([f for k, f in per_image.items() if split_of[k] == s])
                           for s in sorted(set(split_of.values()))}
    return per_image, summary


def write_stats(root: Path, *, bins: int = 20) -> dict:
    """Write ``mask_stats.json`` and ``mask_stats.png`` into a dataset; return the summary."""
    per_image, summary = dataset_stats(root)
    doc = {"summary": summary, "per_image": per_image,
           "definition": "fraction of image pixels inside the local-blur mask (0/1), static pairs excluded"}
    atomic_write_text(root / STATS_JSON, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    atomic_write_bytes(root / STATS_PNG, histogram_png(list(per_image.values()), bins=bins))
    return summary


COMMAND = "masks"


@dataclass(frozen=True)
class MasksParams:
    """What ``masks`` computes.

    Attributes
    ----------
    lbfmg : LBFMGParams
        LBFMG (ReLoBlur appendix C, Algorithm 1): MOG2 models and the
        morphological clean-up. The paper gives no MOG2 or kernel values; the
        defaults here are OpenCV's where tuning did not move them, and tuned
        for mean IoU on the synthetic world otherwise (the static pair fed
        3 times, erosion 7 px, dilation 11 px; docs/commands/masks.md).
    no_static : {'error', 'median'}
        A scene without a static pair: stop with an error, or start the
        background models from the per-pixel median of the scene's other
        images (not in ReLoBlur; recorded in each mask's provenance).
    split : str, optional
        Only this split (None: every split).
    bins : int
        Bins of the blurred-fraction histogram (``mask_stats.png``).
    layout : str, optional
        Force the dataset layout, ``"NAME"`` or ``"NAME:VARIANT"`` (see
        :mod:`lodetools.io.datasets`; detected when None).
    """

    lbfmg: LBFMGParams = LBFMGParams(init_frames=3, erode=7, dilate=11)
    no_static: Literal["error", "median"] = "error"
    split: str | None = None
    bins: int = 20
    layout: str | None = None


def run(data, params: MasksParams, opts: RunOptions) -> RunSummary:
    """Make the masks of the paired dataset ``data`` (see the module docstring).

    Parameters
    ----------
    data : path
        The paired dataset.
    params : MasksParams
    opts : RunOptions
        ``opts.out`` is the output dataset; equal to ``data`` for in place.

    Returns
    -------
    RunSummary
        ``info['stats']``: the blurred-fraction summary
        (:func:`lodetools.masks.stats.summarize`, with ``by_split``).
    """
    from lodetools.io.datasets import check_outside, detect_layout, parse_layout

    data = Path(data)
    out = Path(opts.out)
    forced = parse_layout(params.layout)[0]
    if forced in (None, "lodetools") and (data / DATASET_JSON).is_file():
        read_dataset_json(data)
    else:  # a published dataset read in place: masks (and the copied pairs) go under --out only
        if forced is None:
            detect_layout(data)
        check_outside(data, out)
    no_static, lbfmg, split = params.no_static, params.lbfmg, params.split
    if no_static not in ("error", "median"):
        raise BadConfig(f"bad --no-static {no_static!r}: expected error or median")
    if params.bins < 1:
        raise BadConfig(f"bad --bins {params.bins}: must be at least 1")
    out = Path(opts.out)
    in_place = out.resolve() == data.resolve()
    recorded = recorded_parameters(params, opts, data=data)
    pid = params_id(lbfmg, no_static)
    if in_place:
        if opts.shard is not None:
            raise BadConfig("--shard needs --out NEW: sharded runs write a new dataset, not in place")
        if (data / SHARD_DIR).is_dir() and any((data / SHARD_DIR).glob("shard-*.jsonl")):
            raise BadInput("dataset has per-shard manifests (manifests/); masks cannot update it in "
                           "place: give --out NEW", data / SHARD_DIR)
        run_opts = dataclasses.replace(opts, overwrite=False)
    else:
        if out.resolve() in data.resolve().parents:
            raise BadConfig("--out must not contain --data", out)
        check_output(out, COMMAND, recorded, overwrite=opts.overwrite)
        run_opts = opts
    items, done = plan(data, out, split=split, lbfmg=lbfmg, no_static=no_static, overwrite=opts.overwrite,
                       layout=params.layout)
    fn = functools.partial(process_scene, data=data, out=out, lbfmg=lbfmg, no_static=no_static, pid=pid,
                           png_compression=opts.png_compression)
    try:
        summary = run_items(items, fn, run_opts)
        summary.skipped += [k for k in done if in_shard(k, opts.shard)]
    finally:
        with output_lock(out):  # concurrent shards: the statistics of all of them
            _finish(data, out, in_place, recorded, opts.recipe, pid, params.bins, png_setting(opts))
    summary.out = out
    summary.info = {"stats": json.loads((out / STATS_JSON).read_text())["summary"]}
    return summary


def _finish(data: Path, out: Path, in_place: bool, params: dict, recipe, pid: str, bins: int,
            png_compression="fast") -> None:
    out.mkdir(parents=True, exist_ok=True)
    stats = write_stats(out, bins=bins)
    section = {"version": __version__, "method": "LBFMG (ReLoBlur Algorithm 1, OpenCV MOG2)",
               "parameters": params, "recipe": recipe, "params_id": pid, "png_compression": png_compression,
               "stats": {"file": STATS_JSON, "plot": STATS_PNG, "mean_blurred_fraction": stats["mean"],
                         "images": stats["count"]}}
    if in_place:
        doc = read_dataset_json(data)
        doc["masks"] = section
        atomic_write_text(data / DATASET_JSON, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    else:
        n = len(read_manifest(out))
        write_dataset_json(out, command="masks", params=params, recipe=recipe, counts={"pairs": n},
                           extra={"source": str(data), "masks": section})


