"""``lodetools demo``: every step of the toolkit on the built-in synthetic world.

The demo calls each pipeline's ``run`` in process, on data the synthetic
world makes, then measures each stage against the world's ground truth
(:mod:`lodetools.sim.checks`) and writes ``demo.json`` (stage times, quality
figures, and every bound with its operator, value and verdict) and
``report.html``. Each network is scored against the blurred input itself
(``<net>.psnrw_over_input``, dB on the blurred regions); the default preset
trains LBAG long enough to beat it and bounds that margin, and the report
names each network that stays below the input::

    OUT/world/        sim              (clips, RAW rig, mini VOC + truth)
    OUT/lode/         synthesize       (LODE-style averaging of the clips)
    OUT/stats/        stats blur-ratio (LODE Figure 3 curves)
    OUT/calibration/  calibrate color  (one file per rig camera)
    OUT/reloblur/     align + masks    (ReLoBlur-style pairs with LBFMG masks)
    OUT/lbs/          lbs              (BladeNet local blur synthesis, train split)
    OUT/lbs-val/      lbs              (held-out local-blur pairs (split val) to score networks)
    OUT/runs/<net>/   train, deblur, eval for lbag, bladenet, simplenet, aspdc
    OUT/report.html   report
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal

from lodetools.errors import LodeError
from lodetools.io.atomic import atomic_write_text
from lodetools.runner import RunOptions, RunSummary
from lodetools.sim import checks


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
    #: per network, training options (:data:`lodetools.train.options.FIELDS`) replacing the above
    train: dict = field(default_factory=dict)
    #: bounds on the networks' figures against the blurred input, checked like :data:`checks.BOUNDS`
    deblur_bounds: dict = field(default_factory=dict)


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

#: LBAG in the default demo: long enough to deblur (beat the blurred input on the blurred
#: regions) in about two minutes of one CPU core. A width-8 LBAG learns faster per second
#: than a wider one; every crop is centred on a blurred pixel (ReLoBlur's blur-aware cropping
#: with p = 1, as the blurred edges are a few per cent of the pixels); and the loss has no
#: shift tolerance (``shift=0``): LBS pairs are aligned by construction, and the 9 shifted
#: copies of the official loss cost four times the network's own step at this width.
_LBAG_DEMO = {"iters": 600, "batch": 8, "lr": 2e-3, "lr_milestones": "0.7", "bapc_p": 1.0,
              "net_opts": "base=8,num_res=1,dropout=0", "loss": "shift=0"}

PRESETS = {
    "quick": Preset("test", 2, 16, 4, 60, 8, _CROP_QUICK, 2, _TINY),
    "default": Preset("demo", 3, 96, 12, 300, 60, _CROP, 4, _SMALL, train={"lbag": _LBAG_DEMO},
                      deblur_bounds={"lbag.psnrw_over_input": (">=", 0.15)}),
}

METRICS = ("psnr", "ssim", "psnrw", "ssimw")


@dataclass(frozen=True)
class DemoParams:
    """How big the demo is.

    Attributes
    ----------
    preset : {'quick', 'default'}
        ``quick``: a tiny world and a few training iterations (what CI runs);
        ``default``: the demo world (:data:`PRESETS`).
    """

    preset: Literal["quick", "default"] = "default"


@dataclass
class Stage:
    name: str
    run: Callable[[], dict | None]


def _ok(summary: RunSummary, what: str) -> RunSummary:
    """``summary``, or a :class:`LodeError` naming the stage if some item failed."""
    if not summary.ok:
        first = next(iter({**summary.failed, **summary.bugs}.items()))
        raise LodeError(f"demo stage {what!r}: {first[0]} failed: {first[1].strip().splitlines()[-1]}")
    return summary


def run(inputs, params: DemoParams, opts: RunOptions) -> RunSummary:
    """Run the whole toolkit on the synthetic world in ``opts.out``.

    Parameters
    ----------
    inputs : None
        The demo reads nothing: it makes its world.
    params : DemoParams
    opts : RunOptions
        ``out`` and ``seed`` (of the world and every stage); one line per
        stage goes to stderr unless ``quiet``.

    Returns
    -------
    RunSummary
        ``done``: the stages; ``info``: the content of ``OUT/demo.json``
        (``stages`` with seconds and figures, ``figures``, ``bounds``: a list
        of ``{"name", "value", "op", "bound", "met"}``, ``training``: each
        network's training options, ``preset``, ``seed``).
    """
    from lodetools.pipelines import (align, blur_ratio, calibrate_color, deblur, evaluate, lbs, masks, sim,
                                     synthesize)

    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    p = PRESETS[params.preset]
    seed = int(opts.seed)
    w = out / "world"
    base = RunOptions(out=out, seed=seed, quiet=True)

    def at(path, **kw):
        return replace(base, out=Path(path), **kw)

    figures: dict = {}

    def log(line):
        if not opts.quiet:
            print(line, file=sys.stderr, flush=True)

    def world():
        # the RAW rig always at demo size: at 96x64 the borders dominate its accuracy figures
        for part, preset in (("clips", p.world), ("rig", "demo"), ("voc", p.world)):
            _ok(sim.run(None, sim.SimParams(parts=(part,), preset=preset), at(w)), "sim")

    def synthesize_stage():
        _ok(synthesize.run([w / "clips"], synthesize.SynthesizeParams(windows_per_clip=p.windows_per_clip,
                                                                       test_count=1), at(out / "lode")),
            "synthesize")
        return {"synthesize.max_error_gray_levels": checks.synthesize_error(out / "lode")}

    def blur_ratio_stage():
        _ok(blur_ratio.run(blur_ratio.BlurRatioInputs(videos=(w / "clips",)),
                           blur_ratio.BlurRatioParams(label=("synthetic clips",)), at(out / "stats")),
            "stats blur-ratio")

    def calibrate():
        files = []
        for cam in ("blur", "sharp"):
            files.append(out / "calibration" / f"{cam}.toml")
            calibrate_color.run(w / "rig" / f"lightbox_{cam}.dng",
                                calibrate_color.CalibrateColorParams(camera=f"sim-{cam}"), at(files[-1]))
        return {"calibrate.nonuniformity_after": checks.calibration_nonuniformity(files)}

    def align_stage():
        inputs = align.RawInputs(w / "rig", out / "calibration" / "blur.toml", out / "calibration" / "sharp.toml")
        _ok(align.run(inputs, align.AlignParams(), at(out / "reloblur")), "align")
        return checks.align_figures(out / "reloblur", w / "rig")

    def masks_stage():
        _ok(masks.run(out / "reloblur", masks.MasksParams(), at(out / "reloblur")), "masks")
        iou, err = checks.mask_accuracy(out / "reloblur", w / "rig" / "truth")
        return {"masks.mean_iou": iou, "masks.fraction_error_pp": err}

    def lbs_stage():
        for name, count, split in (("lbs", p.lbs_train, "train"), ("lbs-val", p.lbs_test, "val")):
            _ok(lbs.run(lbs.LbsInputs(w / "VOCdevkit", out / "lode"),
                        lbs.LbsParams(count=count, split=split, min_area=p.lbs_min_area),
                        at(out / name, seed=seed + (0 if split == "train" else 1000))), "lbs")
        return {"lbs.mask_is_union": checks.lbs_mask_is_union(out / "lbs-val")}

    def score(pred: Path, name: str) -> dict:
        res = evaluate.run(evaluate.EvalInputs(pred, out / "lbs-val"),
                           evaluate.EvalParams(split="val", metrics=METRICS), at(pred)).info
        if res["missing"]:
            raise LodeError(f"demo stage {name!r}: {len(res['missing'])} prediction(s) missing", pred)
        return {f"{name}.{k}": v["mean"] for k, v in res["summary"].items()}

    def train(net):
        def _run():
            from lodetools.train.options import config_from
            from lodetools.train.trainer import train as train_net

            run_dir = out / "runs" / net
            settings = {"iters": p.iters, "crop": p.crop[net], "batch": p.batch, "net_opts": p.net_opts[net],
                        **p.train.get(net, {})}
            training[net] = settings
            values = {"data": out / "lbs", "out": run_dir, "val_data": out / "lbs-val",
                      "val_every": max(1, settings["iters"] // 4), "val_images": 2, "workers": 0, "seed": seed,
                      **settings}
            if net == "bladenet":
                values["global_data"] = [out / "lode"]
            train_net(config_from(net, values), overwrite=True, quiet=True)
            deblur.run(deblur.DeblurInputs(run_dir / "model.pt", out / "lbs-val"), deblur.DeblurParams(split="val"),
                       at(run_dir / "pred", overwrite=True))
            res = score(run_dir / "pred", net)
            # what the network adds on the blurred regions over the blurred input itself (dB)
            res[f"{net}.psnrw_over_input"] = res[f"{net}.psnrw"] - figures["input.psnrw"]
            return res
        return _run

    def baseline():
        """The blurred input scored as a prediction: what the networks must beat."""
        from lodetools.io.images import read_image, write_image
        from lodetools.io.layout import read_pairs

        pred = out / "runs" / "input" / "pred"
        for pair in read_pairs(out / "lbs-val", split="val"):
            write_image(pred / pair.split / pair.scene / f"{pair.id}.png", read_image(pair.blur))
        return score(pred, "input")

    def report():
        from lodetools.report import build_report

        atomic_write_text(out / "report.html", build_report(out))

    stages = [Stage("sim", world), Stage("synthesize", synthesize_stage),
              Stage("stats blur-ratio", blur_ratio_stage), Stage("calibrate color", calibrate),
              Stage("align", align_stage), Stage("masks", masks_stage), Stage("lbs", lbs_stage),
              Stage("input baseline", baseline)]
    stages += [Stage(f"train+deblur+eval {n}", train(n)) for n in ("lbag", "bladenet", "simplenet", "aspdc")]
    training: dict = {}
    doc = {"preset": params.preset, "seed": seed, "stages": [], "figures": figures, "training": training}
    t_all = time.perf_counter()
    for i, st in enumerate(stages, 1):
        t0 = time.perf_counter()
        res = st.run() or {}
        dt = time.perf_counter() - t0
        figures.update(res)
        doc["stages"].append({"name": st.name, "seconds": round(dt, 2), "figures": res})
        shown = ", ".join(f"{k.split('.', 1)[1]} {_fmt(v)}" for k, v in res.items())
        log(f"[{i}/{len(stages) + 1}] {st.name}: {dt:.1f} s{'  (' + shown + ')' if shown else ''}")
        doc["bounds"] = checks.check_bounds(figures, {**checks.BOUNDS, **p.deblur_bounds})
        doc["total_seconds"] = round(time.perf_counter() - t_all, 2)
        atomic_write_text(out / "demo.json", json.dumps(doc, indent=2) + "\n")
    t0 = time.perf_counter()
    report()
    doc["stages"].append({"name": "report", "seconds": round(time.perf_counter() - t0, 2), "figures": {}})
    doc["total_seconds"] = round(time.perf_counter() - t_all, 2)
    atomic_write_text(out / "demo.json", json.dumps(doc, indent=2) + "\n")
    report()  # again, so the report shows the report stage's time too
    log(f"[{len(stages) + 1}/{len(stages) + 1}] report: {out / 'report.html'}  (total {doc['total_seconds']:.0f} s)")
    return RunSummary(done=[s["name"] for s in doc["stages"]], out=out, info=doc)


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)
