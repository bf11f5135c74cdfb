"""Accuracy checks of the toolkit's outputs against the synthetic world's truth.

Each function computes one figure from what a pipeline wrote and what the
world (:mod:`lodetools.sim`) knows to be true; :data:`BOUNDS` holds the bound
each figure must meet on the world, and :func:`check_bounds` reports every
bound with its operator, value and verdict (what ``lodetools demo`` writes
into ``demo.json``, so a report needs only that file).
"""

from __future__ import annotations

import json
import operator
import tomllib
from pathlib import Path

import numpy as np

from lodetools.errors import LodeError

#: figure -> (operator, bound) the synthetic world must meet
BOUNDS = {
    "synthesize.max_error_gray_levels": ("<=", 1.0),
    "calibrate.nonuniformity_after": ("<=", 0.01),
    "align.static_psnr_after": (">=", 35.0),
    "align.static_psnr_gain": (">=", 8.0),
    "align.delta_l_after_smoothed": ("<=", 0.01),
    "align.epe_px": ("<=", 0.25),
    "masks.mean_iou": (">=", 0.75),
    "masks.fraction_error_pp": ("<=", 2.0),
    "lbs.mask_is_union": ("==", True),
}

_OPS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq}


def check_bounds(figures: dict, bounds: dict | None = None) -> list[dict]:
    """Every bound whose figure was measured, with its verdict.

    Parameters
    ----------
    figures : dict
        Figure name -> value (absent or None: not measured, left out).
    bounds : dict, optional
        Figure name -> ``(op, bound)`` with ``op`` one of ``<=``, ``>=``, ``==``
        (default :data:`BOUNDS`).

    Returns
    -------
    list of dict
        ``{"name", "value", "op", "bound", "met"}`` per measured figure.

    Examples
    --------
    >>> check_bounds({"masks.mean_iou": 0.8, "align.epe_px": None})
    [{'name': 'masks.mean_iou', 'value': 0.8, 'op': '>=', 'bound': 0.75, 'met': True}]
    """
    out = []
    for name, (op, bound) in (BOUNDS if bounds is None else bounds).items():
        value = figures.get(name)
        if value is None:
            continue
        out.append({"name": name, "value": value, "op": op, "bound": bound,
                    "met": bool(_OPS[op](value, bound))})
    return out


def synthesize_error(lode: Path) -> float:
    """Largest deviation (gray levels) of ``synthesize``'s blurred images from LODE Eqs. (6)-(7)
    evaluated independently in float64 on the source frames.

    Each source clip is decoded once, up to the last frame any of its windows uses.
    """
    from lodetools.color.crf import parse_crf
    from lodetools.io.images import read_image_native
    from lodetools.io.layout import read_pairs
    from lodetools.io.video import iter_frames

    by_source: dict = {}
    for pair in read_pairs(lode):
        by_source.setdefault(pair.record["provenance"]["source"], []).append(pair)
    worst = 0.0
    for source, pairs in by_source.items():
        pairs.sort(key=lambda p: p.record["provenance"]["frames"][0])
        end = max(p.record["provenance"]["frames"][1] for p in pairs)
        k, acc = 0, []
        frames = iter_frames(source)
        for i, frame in enumerate(frames):
            prov = pairs[k].record["provenance"]
            first, last = prov["frames"]
            if i >= first:
                acc.append(parse_crf(prov["crf"]).to_linear(frame.astype(np.float64) / 255.0).astype(np.float64))
            if i == last:
                crf = parse_crf(prov["crf"])
                ref = np.clip(crf.to_display(np.mean(acc, axis=0)).astype(np.float64), 0, 1) * 255.0
                got = read_image_native(pairs[k].blur).astype(np.float64)
                worst = max(worst, float(np.abs(got - ref).max()))
                k, acc = k + 1, []
            if i >= end:
                break
        frames.close()  # stops the decoder
    return worst


def mask_accuracy(reloblur: Path, truth_dir: Path) -> tuple[float, float]:
    """Mean IoU of the LBFMG masks against the rig's true moving-object masks,
    and the mean absolute blurred-fraction error in percentage points."""
    from lodetools.io.images import read_mask
    from lodetools.io.layout import read_pairs

    ious, errs = [], []
    for pair in read_pairs(reloblur, split=None, require=("mask",)):
        if pair.record.get("static"):
            continue
        tdir = truth_dir / pair.scene
        parts = [tdir / f"{pair.id}_blurmask.png", tdir / f"{pair.id}_sharpmask.png"]
        if not all(p.is_file() for p in parts):
            continue
        truth = read_mask(parts[0]) | read_mask(parts[1])
        got = read_mask(pair.mask)
        union = (truth | got).sum()
        ious.append(1.0 if union == 0 else (truth & got).sum() / union)
        errs.append(abs(truth.mean() - got.mean()) * 100)
    if not ious:
        raise LodeError("no masks to compare with the rig's truth", reloblur)
    return float(np.mean(ious)), float(np.mean(errs))


def lbs_mask_is_union(lbs: Path) -> bool:
    """True if every LBS pair differs between blur and sharp only inside its mask (up to rounding)."""
    from lodetools.io.images import read_image_native, read_mask
    from lodetools.io.layout import read_pairs

    for pair in read_pairs(lbs, split=None, require=("mask",)):
        b = read_image_native(pair.blur).astype(int)
        s = read_image_native(pair.sharp).astype(int)
        m = read_mask(pair.mask)
        if np.abs(b - s).max(axis=2)[~m].max(initial=0) > 1:
            return False
    return True


def calibration_nonuniformity(paths) -> float:
    """Largest lightbox non-uniformity left after correction, over calibration files and channels."""
    worst = 0.0
    for p in paths:
        doc = tomllib.loads(Path(p).read_text(encoding="utf-8"))
        worst = max(worst, float(np.max(_find(doc, "nonuniformity_after"))))
    return worst


def _find(doc, key):
    """First value of ``key`` anywhere in a nested dict."""
    if isinstance(doc, dict):
        if key in doc:
            return doc[key]
        for v in doc.values():
            r = _find(v, key)
            if r is not None:
                return r
    return None


def flow_epe(reloblur: Path, truth_dir: Path, margin: int = 8) -> float | None:
    """Mean end-point error (px) of ``align``'s per-scene flows against the rig's true
    misalignment (both map sharp-grid pixels to blur-grid positions), ``margin`` px
    borders left out; the worst scene is returned."""
    worst = None
    for est_path in sorted(reloblur.glob("*/*/flow.npy")):
        true_path = truth_dir / est_path.parent.name / "flow_sharp_to_blur.npy"
        if not true_path.is_file():
            continue
        est, true = np.load(est_path), np.load(true_path)
        if est.shape != true.shape:
            continue
        d = np.linalg.norm((est - true)[margin:-margin, margin:-margin], axis=-1)
        worst = max(worst or 0.0, float(d.mean()))
    return worst


def align_figures(reloblur: Path, rig: Path) -> dict:
    """Static-pair PSNR before/after, Delta-L after and flow EPE from ``align``'s QA records."""
    qa_path = reloblur / "qa.jsonl"
    recs = [json.loads(l) for l in qa_path.read_text().splitlines() if l.strip()] if qa_path.is_file() else []
    if not recs:
        return {}
    def mean(key):
        vals = [_find(r, key) for r in recs]
        vals = [v for v in vals if isinstance(v, (int, float))]
        return float(np.mean(vals)) if vals else None
    before, after = mean("psnr_before"), mean("psnr_after")
    smoothed = [r.get("develop", {}).get("delta_l_after", {}).get("smoothed") for r in recs]
    smoothed = [v for v in smoothed if isinstance(v, (int, float))]
    res = {"align.static_psnr_before": before, "align.static_psnr_after": after,
           "align.delta_l_after": mean("delta_l_after"),
           "align.delta_l_after_smoothed": max(smoothed) if smoothed else None,
           "align.epe_px": mean("epe_px")}
    if before is not None and after is not None:
        res["align.static_psnr_gain"] = after - before
    epe = flow_epe(reloblur, rig / "truth")
    if epe is not None:
        res["align.epe_px"] = epe
    return {k: v for k, v in res.items() if v is not None}
