"""``lodetools eval``: score predictions against a paired dataset's sharp images.

Predictions are matched to ground-truth pairs by id. For a pair
``<split>/<scene>/<id>`` the first existing file among

1. ``<pred>/<split>/<scene>/<id>.<ext>``   (the dataset layout; ``deblur`` writes this)
2. ``<pred>/<scene>/<id>.<ext>``
3. ``<pred>/<scene>_<id>.<ext>``
4. ``<pred>/<id>.<ext>``                   (only when the id is unique in the split)

is used (``ext`` any image extension). Files of ``<pred>`` that match no pair
are "extra"; pairs without a file are "missing"; both are listed.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lodetools.errors import BadConfig, BadInput, MissingInput
from lodetools.io.atomic import atomic_write_text
from lodetools.io.images import IMAGE_EXTENSIONS, read_image_native, read_mask, uint_to_float
from lodetools.io.layout import read_pairs
from lodetools.metrics import aligned_metrics, image_scores
from lodetools.parallel import usable_cores
from lodetools.runner import RunOptions, RunSummary, recorded_parameters

#: metric name -> (needs mask, description of its convention)
METRICS = {
    "psnr": (False, "PSNR, BasicSR convention: 8-bit rounding, float64, RGB, crop 0"),
    "ssim": (False, "SSIM, MATLAB/BasicSR: 11x11 gaussian sigma 1.5, valid region, mean over RGB"),
    "psnrw": (True, "weighted PSNR, ReLoBlur code: 10log10(1/(sum(m d^2)/sum(m)/3))"),
    "ssimw": (True, "weighted SSIM, ReLoBlur code: SSIM map x mask (5 px crop) / sum(mask)"),
    "psnra": (False, "aligned PSNR, RealBlur: intensity scaling + ECC homography + valid mask"),
    "ssima": (False, "aligned SSIM, RealBlur protocol"),
}


def parse_metrics(text: str) -> list[str]:
    """Parse ``psnr,ssim,...``; raise :class:`BadConfig` for unknown names."""
    names = [m.strip().lower() for m in str(text).split(",") if m.strip()]
    bad = [m for m in names if m not in METRICS]
    if bad or not names:
        raise BadConfig(f"unknown metric(s) {', '.join(bad) or '(none)'}; known: {', '.join(METRICS)}")
    return names


def match_predictions(pred_dir, pairs) -> tuple[dict, list, list]:
    """Match prediction files to pairs.

    Returns
    -------
    matched : dict
        pair key -> prediction path.
    missing : list of str
        Keys of pairs without a prediction.
    extra : list of str
        Prediction files (relative to ``pred_dir``) that match no pair.
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise MissingInput("predictions folder not found", pred_dir)
    files = {}
    for p in pred_dir.rglob("*"):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
            files.setdefault(p.relative_to(pred_dir).with_suffix("").as_posix(), p)
    if not files:
        raise MissingInput("no prediction images", pred_dir)
    id_count = Counter(p.id for p in pairs)
    matched, missing, used = {}, [], set()
    for pair in pairs:
        cands = [f"{pair.split}/{pair.scene}/{pair.id}", f"{pair.scene}/{pair.id}", f"{pair.scene}_{pair.id}"]
        if id_count[pair.id] == 1:
            cands.append(pair.id)
        hit = next((c for c in cands if c in files and c not in used), None)
        if hit is None:
            missing.append(pair.key)
        else:
            used.add(hit)
            matched[pair.key] = files[hit]
    extra = sorted(files[k].relative_to(pred_dir).as_posix() for k in files if k not in used)
    return matched, missing, extra


def score_pair(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None, metrics) -> dict:
    """Every requested metric of one prediction (``nan`` where undefined).

    PSNR, SSIM and their weighted forms come from one quantisation of each
    image and one SSIM map (:func:`lodetools.metrics.image_scores`).
    """
    plain = [m for m in metrics if m in ("psnr", "ssim", "psnrw", "ssimw")]
    row = image_scores(pred, gt, mask, plain) if plain else {}
    if {"psnra", "ssima"} & set(metrics):
        aligned = aligned_metrics(pred, gt)
        row.update({m: aligned["psnr" if m == "psnra" else "ssim"] for m in metrics if m in ("psnra", "ssima")})
    return {m: row[m] for m in metrics}


def read_for_metrics(path) -> np.ndarray:
    """An image as the metrics take it: 8-bit files as stored (uint8), others as float32 in [0, 1].

    The metrics round to 8 bits first, which leaves an 8-bit file's values as
    they are, so decoding them to float and rounding back is skipped. Gray
    files are repeated to 3 channels (as :func:`lodetools.io.images.read_image`).
    """
    img = read_image_native(path)
    if img.dtype != np.uint8:
        img = uint_to_float(img)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return img


#: images scored at once (threads: OpenCV and numpy release the GIL); each holds
#: about 0.5 GB of float64 work arrays at 2152x1436
MAX_EVAL_THREADS = 4


def summarise(rows: list[dict], metrics) -> dict:
    """Mean of each metric over finite values; ``n_inf`` / ``n_nan`` count the others.

    Identical images give PSNR = inf; they are left out of the mean and counted.
    """
    out = {}
    for m in metrics:
        vals = np.array([r[m] for r in rows], dtype=np.float64)
        finite = vals[np.isfinite(vals)]
        out[m] = {"mean": float(finite.mean()) if finite.size else None, "n": int(finite.size),
                  "n_inf": int(np.isposinf(vals).sum()), "n_nan": int(np.isnan(vals).sum())}
    return out


def evaluate(pred_dir, gt_root, *, split: str | None = "test", metrics=("psnr", "ssim"),
             progress=None, layout: str | None = None, masks=None, input_baseline: bool = False) -> dict:
    """Score a folder of predictions against a paired dataset.

    Parameters
    ----------
    pred_dir : path or None
        Predicted (deblurred) images; ``None`` with ``input_baseline``.
    gt_root : path
        Paired dataset in any layout :mod:`lodetools.io.datasets` reads
        (lodetools' own, GoPro, REDS, RealBlur, HIDE, ReLoBlur, ...).
    split : str or None
        Split to evaluate (None: all). Static reference pairs are skipped.
    metrics : sequence of str
        Names from :data:`METRICS`.
    progress : callable, optional
        Wraps the iterable of pairs (e.g. tqdm).
    layout : str, optional
        Force the dataset's layout (``"NAME"`` or ``"NAME:VARIANT"``).
    masks : path, optional
        Masks made outside the dataset (``lodetools masks --out DIR``).
    input_baseline : bool
        Score the dataset's own blurred images as the prediction (the
        "blurry input" row of results tables).

    Returns
    -------
    dict
        ``rows`` (per image), ``summary``, ``missing``, ``extra``, ``conventions``
        (metric -> its convention), ``split``, ``count``, ``metrics``.

    Raises
    ------
    BadInput
        If a prediction and its ground truth differ in size.
    """
    require = ("blur", "sharp") if input_baseline else ("sharp",)
    pairs = [p for p in read_pairs(gt_root, split=split, require=require, layout=layout, masks=masks)
             if not p.record.get("static")]
    if not pairs:
        raise MissingInput(f"no non-static pairs in split {split!r}", gt_root)
    if input_baseline:
        matched, missing, extra = {p.key: p.blur for p in pairs}, [], []
    else:
        matched, missing, extra = match_predictions(pred_dir, pairs)
    it = [p for p in pairs if p.key in matched]

    def score(pair):
        pred_path = matched[pair.key]
        pred = read_for_metrics(pred_path)
        gt = read_for_metrics(pair.sharp)
        if pred.shape != gt.shape and input_baseline:
            raise BadInput(f"blurred image is {pred.shape[1]}x{pred.shape[0]} but its sharp image "
                           f"{gt.shape[1]}x{gt.shape[0]}", pred_path)
        if pred.shape != gt.shape:
            raise BadInput(f"prediction is {pred.shape[1]}x{pred.shape[0]} but ground truth "
                           f"{pair.key} is {gt.shape[1]}x{gt.shape[0]}", pred_path)
        mask = read_mask(pair.mask) if pair.mask is not None and pair.mask.is_file() else None
        if mask is not None and mask.shape != gt.shape[:2]:
            raise BadInput(f"mask is {mask.shape[1]}x{mask.shape[0]} but ground truth {pair.key} is "
                           f"{gt.shape[1]}x{gt.shape[0]}", pair.mask)
        row = {"key": pair.key, "id": pair.id, "scene": pair.scene, "prediction": str(pred_path)}
        row.update(score_pair(pred, gt, mask, metrics))
        return row

    threads = max(1, min(len(it), usable_cores(), MAX_EVAL_THREADS))
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(score, p) for p in it]
        try:  # in order; the first error stops the rest
            rows = [f.result() for f in (progress(futures) if progress else futures)]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return {"rows": rows, "summary": summarise(rows, metrics), "missing": missing, "extra": extra,
            "conventions": {m: METRICS[m][1] for m in metrics}, "split": split,
            "count": len(rows), "metrics": list(metrics)}


def write_results(result: dict, out_dir, metrics) -> tuple[Path, Path]:
    """Write ``metrics.csv`` (per image) and ``summary.json``; return their paths."""
    out_dir = Path(out_dir)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["key", "scene", "id", *metrics, "prediction"])
    for r in result["rows"]:
        w.writerow([r["key"], r["scene"], r["id"], *[f"{r[m]:.6f}" if np.isfinite(r[m]) else str(r[m])
                                                      for m in metrics], r["prediction"]])
    csv_path, json_path = out_dir / "metrics.csv", out_dir / "summary.json"
    atomic_write_text(csv_path, buf.getvalue())
    doc = {k: v for k, v in result.items() if k != "rows"}
    atomic_write_text(json_path, json.dumps(doc, indent=2) + "\n")
    return csv_path, json_path


def format_table(result: dict, metrics) -> str:
    """The summary as a small text table."""
    lines = [f"{'metric':<8}{'mean':>10}{'n':>6}  convention"]
    for m in metrics:
        s = result["summary"][m]
        mean = "-" if s["mean"] is None else f"{s['mean']:.4f}"
        extra = f" (+{s['n_inf']} inf)" if s["n_inf"] else ""
        lines.append(f"{m:<8}{mean:>10}{s['n']:>6}  {METRICS[m][1]}{extra}")
    return "\n".join(lines)


@dataclass(frozen=True)
class EvalInputs:
    """What ``eval`` reads.

    Attributes
    ----------
    pred : pathlib.Path or None
        Folder of predicted (deblurred) images, named by pair id (module
        docstring); ``None`` when scoring the input baseline.
    gt : pathlib.Path
        Paired dataset holding the ground truth and masks, in any layout
        :mod:`lodetools.io.datasets` reads.
    masks : pathlib.Path, optional
        Masks made outside the dataset, for the weighted metrics.
    """

    pred: Path | None
    gt: Path
    masks: Path | None = None


@dataclass(frozen=True)
class EvalParams:
    """What ``eval`` computes.

    Attributes
    ----------
    split : str or None
        Split to evaluate (None: every split).
    metrics : tuple of str
        Names from :data:`METRICS`, each in one stated convention: PSNR/SSIM
        as BasicSR, weighted PSNR/SSIM as ReLoBlur's code (they need masks),
        aligned PSNR/SSIM by the RealBlur protocol (Rim et al., ECCV 2020).
    layout : str, optional
        Force the dataset layout, ``"NAME"`` or ``"NAME:VARIANT"`` (detected when None).
    input_baseline : bool
        Score the dataset's blurred images themselves (no predictions).
    """

    split: str | None = "test"
    metrics: tuple[str, ...] = ("psnr", "ssim", "psnrw", "ssimw")
    layout: str | None = None
    input_baseline: bool = False


def run(inputs: EvalInputs, params: EvalParams, opts: RunOptions) -> RunSummary:
    """Score ``inputs.pred`` against ``inputs.gt``; write ``metrics.csv`` and ``summary.json`` into ``opts.out``.

    ``summary.json`` also records the parameters and inputs.

    Returns
    -------
    RunSummary
        ``done``: scored pair keys; ``info``: what :func:`evaluate` returns
        (``rows``, ``summary``, ``missing``, ``extra``, ``conventions``, ...),
        plus ``csv`` and ``json``, the paths written.
    """
    names = parse_metrics(",".join(params.metrics))
    bar = None
    if not opts.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        def bar(it):
            return tqdm(it, desc="eval", file=sys.stderr)
    if params.input_baseline == (inputs.pred is not None):
        raise BadConfig("give either predictions (--pred) or --input-baseline, not both"
                        if params.input_baseline else "no predictions: give --pred DIR or --input-baseline")
    result = evaluate(inputs.pred, inputs.gt, split=params.split, metrics=names, progress=bar,
                      layout=params.layout, masks=inputs.masks, input_baseline=params.input_baseline)
    result["parameters"] = recorded_parameters(params, pred=inputs.pred, gt=inputs.gt, masks=inputs.masks)
    csv_path, json_path = write_results(result, opts.out, names)
    return RunSummary(done=[r["key"] for r in result["rows"]], out=Path(opts.out),
                      info={**result, "csv": csv_path, "json": json_path})
