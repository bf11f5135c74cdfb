"""``lodetools demo``: every command of the toolkit on the built-in synthetic world.

The demo runs the real commands, in process, on data the synthetic world
makes, then measures each stage against the world's ground truth and writes
``demo.json`` (stage times, quality figures, bounds) and ``report.html``::

    OUT/world/        lodetools sim all          (clips, RAW rig, mini VOC + truth)
    OUT/lode/         lodetools synthesize       (LODE-style averaging of the clips)
    OUT/stats/        lodetools stats blur-ratio (LODE Figure 3 curves)
    OUT/calibration/  lodetools calibrate color  (one file per rig camera)
    OUT/reloblur/     lodetools align + masks    (ReLoBlur-style pairs with LBFMG masks)
    OUT/lbs/          lodetools lbs              (BladeNet local blur synthesis, train split)
    OUT/lbs-val/      lodetools lbs              (held-out local-blur pairs (split val) to score networks)
    OUT/runs/<net>/   lodetools train, deblur, eval for lbag, bladenet, simplenet, aspdc
    OUT/report.html   lodetools report
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from lodetools.errors import LodeError
from lodetools.io.atomic import atomic_write_text


@dataclass(frozen=True)
class Preset:
    """Sizes of one demo run."""

    world: str
    windows_per_clip: int
    lbs_train: int
    lbs_test: int
    lbs_min_area: int
    iters: int
    crop: dict
    batch: int
    net_opts: dict = field(default_factory=dict)


#: tiny networks so that four of them train in seconds on a CPU
_TINY = {
    "lbag": "base=8,num_res=1",
    "bladenet": "width=8",
    "simplenet": "width=8,rank=8",
    "aspdc": "width=8",
}
_SMALL = {
    "lbag": "base=16,num_res=2",
    "bladenet": "width=16",
    "simplenet": "width=16,rank=16",
    "aspdc": "width=16",
}

#: training crop per network: LBAG's SSIM at 1/4 scale needs 11 px plus the 1 px shifts
_CROP_QUICK = {"lbag": 64, "bladenet": 32, "simplenet": 32, "aspdc": 32}
_CROP = {"lbag": 64, "bladenet": 64, "simplenet": 48, "aspdc": 48}

PRESETS = {
    "quick": Preset("test", 2, 16, 4, 60, 8, _CROP_QUICK, 2, _TINY),
    "default": Preset("demo", 3, 96, 12, 300, 60, _CROP, 4, _SMALL),
}

#: bounds the issues set for the synthetic world (figure -> (op, bound))
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


def _cli(args: list[str]) -> None:
    """Run one ``lodetools`` command in process; raise if it does not succeed."""
    from lodetools.cli import cli

    try:
        cli.main(args=[str(a) for a in args], prog_name="lodetools", standalone_mode=False)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise LodeError(f"'lodetools {' '.join(map(str, args[:2]))}' exited with code {exc.code}") from None


def check_bounds(figures: dict) -> dict:
    """Which figures meet the bounds of :data:`BOUNDS` (figure -> bool); absent figures are skipped."""
    out = {}
    for name, (op, bound) in BOUNDS.items():
        if name not in figures or figures[name] is None:
            continue
        v = figures[name]
        out[name] = bool(v <= bound if op == "<=" else v >= bound if op == ">=" else v == bound)
    return out


# ----------------------------------------------------------------- checks ---
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


# ------------------------------------------------------------------ stages ---
@dataclass
class Stage:
    name: str
    run: Callable[[], dict | None]


def run_demo(out, *, quick: bool = False, seed: int = 0, log=print) -> dict:
    """Run the whole toolkit on the synthetic world in ``out``.

    Parameters
    ----------
    out : path
        Output folder (created).
    quick : bool
        The ``quick`` preset (tiny world, a few training iterations: CI).
    seed : int
    log : callable
        Receives one line per stage.

    Returns
    -------
    dict
        The content of ``OUT/demo.json``: ``stages`` (name, seconds, figures),
        ``figures``, ``bounds`` (figure -> met), ``preset``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    p = PRESETS["quick" if quick else "default"]
    w = out / "world"
    common = ["--seed", seed, "--quiet"]
    figures: dict = {}

    def sim():
        # the RAW rig always at demo size: at 96x64 the borders dominate its accuracy figures
        for part, preset in (("clips", p.world), ("rig", "demo"), ("voc", p.world)):
            _cli(["sim", part, "--out", w, "--preset", preset, *common])

    def synthesize():
        _cli(["synthesize", "--videos", w / "clips", "--out", out / "lode", "--windows-per-clip",
              p.windows_per_clip, "--test-count", 1, *common])
        return {"synthesize.max_error_gray_levels": synthesize_error(out / "lode")}

    def blur_ratio():
        _cli(["stats", "blur-ratio", "--videos", w / "clips", "--label", "synthetic clips",
              "--out", out / "stats", *common])

    def calibrate():
        res = {}
        for cam in ("blur", "sharp"):
            _cli(["calibrate", "color", "--lightbox", w / "rig" / f"lightbox_{cam}.dng", "--camera",
                  f"sim-{cam}", "--out", out / "calibration" / f"{cam}.toml"])
        import tomllib

        docs = [tomllib.loads((out / "calibration" / f"{c}.toml").read_text()) for c in ("blur", "sharp")]
        res["calibrate.nonuniformity_after"] = float(max(np.max(_find(d, "nonuniformity_after")) for d in docs))
        return res

    def align():
        _cli(["align", "--raw-pairs", w / "rig", "--out", out / "reloblur", "--calib-blur",
              out / "calibration" / "blur.toml", "--calib-sharp", out / "calibration" / "sharp.toml", *common])
        return align_figures(out / "reloblur", w / "rig")

    def masks():
        _cli(["masks", "--data", out / "reloblur", *common])
        iou, err = mask_accuracy(out / "reloblur", w / "rig" / "truth")
        return {"masks.mean_iou": iou, "masks.fraction_error_pp": err}

    def lbs():
        for name, count, split in (("lbs", p.lbs_train, "train"), ("lbs-val", p.lbs_test, "val")):
            _cli(["lbs", "--voc", w / "VOCdevkit", "--backgrounds", out / "lode", "--out", out / name,
                  "--count", count, "--split", split, "--min-area", p.lbs_min_area,
                  "--seed", seed + (0 if split == "train" else 1000), "--quiet"])
        return {"lbs.mask_is_union": lbs_mask_is_union(out / "lbs-val")}

    def train(net):
        def _run():
            run = out / "runs" / net
            args = ["train", net, "--data", out / "lbs", "--out", run, "--iters", p.iters, "--crop", p.crop[net],
                    "--batch", p.batch, "--net-opts", p.net_opts[net], "--val-data", out / "lbs-val",
                    "--val-every", max(1, p.iters // 4), "--val-images", 2, "--workers", 0, "--seed", seed,
                    "--quiet", "--overwrite"]
            if net == "bladenet":
                args += ["--global-data", out / "lode"]
            _cli(args)
            _cli(["deblur", "--checkpoint", run / "model.pt", "--input", out / "lbs-val", "--split", "val",
                  "--out", run / "pred", "--quiet", "--overwrite"])
            _cli(["eval", "--pred", run / "pred", "--gt", out / "lbs-val", "--split", "val",
                  "--metrics", "psnr,ssim,psnrw,ssimw", "--quiet"])
            s = json.loads((run / "pred" / "summary.json").read_text())["summary"]
            return {f"{net}.{k}": v["mean"] for k, v in s.items()}
        return _run

    def baseline():
        """The blurred input scored as a prediction: what the networks must beat."""
        from lodetools.io.images import read_image, write_image
        from lodetools.io.layout import read_pairs

        pred = out / "runs" / "input" / "pred"
        for pair in read_pairs(out / "lbs-val", split="val"):
            write_image(pred / pair.split / pair.scene / f"{pair.id}.png", read_image(pair.blur))
        _cli(["eval", "--pred", pred, "--gt", out / "lbs-val", "--split", "val",
              "--metrics", "psnr,ssim,psnrw,ssimw", "--quiet"])
        s = json.loads((pred / "summary.json").read_text())["summary"]
        return {f"input.{k}": v["mean"] for k, v in s.items()}

    def report():
        _cli(["report", out])

    stages = [Stage("sim", sim), Stage("synthesize", synthesize), Stage("stats blur-ratio", blur_ratio),
              Stage("calibrate color", calibrate), Stage("align", align), Stage("masks", masks),
              Stage("lbs", lbs), Stage("input baseline", baseline)]
    stages += [Stage(f"train+deblur+eval {n}", train(n)) for n in ("lbag", "bladenet", "simplenet", "aspdc")]
    doc = {"preset": "quick" if quick else "default", "seed": seed, "stages": [], "figures": figures}
    t_all = time.perf_counter()
    for i, st in enumerate(stages, 1):
        t0 = time.perf_counter()
        res = st.run() or {}
        dt = time.perf_counter() - t0
        figures.update(res)
        doc["stages"].append({"name": st.name, "seconds": round(dt, 2), "figures": res})
        shown = ", ".join(f"{k.split('.', 1)[1]} {_fmt(v)}" for k, v in res.items())
        log(f"[{i}/{len(stages) + 1}] {st.name}: {dt:.1f} s{'  (' + shown + ')' if shown else ''}")
        doc["bounds"] = check_bounds(figures)
        doc["total_seconds"] = round(time.perf_counter() - t_all, 2)
        atomic_write_text(out / "demo.json", json.dumps(doc, indent=2) + "\n")
    t0 = time.perf_counter()
    report()
    doc["stages"].append({"name": "report", "seconds": round(time.perf_counter() - t0, 2), "figures": {}})
    doc["total_seconds"] = round(time.perf_counter() - t_all, 2)
    atomic_write_text(out / "demo.json", json.dumps(doc, indent=2) + "\n")
    _cli(["report", out])  # again, so the report shows the report stage's time too
    log(f"[{len(stages) + 1}/{len(stages) + 1}] report: {out / 'report.html'}  (total {doc['total_seconds']:.0f} s)")
    return doc


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


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
