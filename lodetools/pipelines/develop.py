"""``lodetools develop``: RAW blur/sharp pairs -> colour-corrected, photometrically aligned RGB pairs.

The first half of ReLoBlur's paired-image post-processing (Fig. 3):
colour correction (Eqs. (3)-(5)), photometric alignment (Eqs. (6)-(7)) and
the ISP (Menon demosaicing, white balance, colour matrix, gamma). Geometric
alignment is ``lodetools align``, which builds on :func:`develop_scene`.

Library use (what ``align`` calls)::

    from lodetools.io.raw import scan_raw_pairs, read_rig_config
    from lodetools.io.calibration import read_calibration
    from lodetools.pipelines.develop import DevelopOptions, develop_scene

    rig = read_rig_config(raw_pairs)
    for scene in scan_raw_pairs(raw_pairs):
        dev = develop_scene(scene, read_calibration(cb), read_calibration(cs), rig=rig)
        for p in dev.pairs:        # the static reference pair first (p.static)
            p.blur, p.sharp        # float32 (H, W, 3) display RGB in [0, 1]
        dev.qa                     # Delta-L before/after on the reference pair

    # or stream the pairs (bounded memory): develop_scene(..., on_pair=callback)

Per scene: the reference pair registers the two cameras globally (ECC
affine, used for the static-region beta and the QA only), the whiteboard
pair (when present) gives the white balance, then every pair is developed.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from lodetools.color.correction import CastFit, cast_image, correct_bayer
from lodetools.color.isp import gray_world, render, white_balance_from_patch
from lodetools.color.photometric import (apply_beta, estimate_beta, quad_channels, quad_warp_to_pixels,
                                         register_quads)
from lodetools.errors import BadConfig, BadInput, MissingInput
from lodetools.io.atomic import atomic_write_text
from lodetools.io.calibration import read_calibration
from lodetools.io.layout import item_key, write_pair
from lodetools.io.manifest import sha256_file, write_dataset_json
from lodetools.io.raw import RawFrame, RawScene, RigConfig, check_pair, read_raw, read_rig_config, scan_raw_pairs
from lodetools.metrics.delta_l import delta_l
from lodetools.runner import WorkItem, check_output, run_items

WHITE_BALANCES = ("auto", "whiteboard", "metadata", "grayworld", "none")
REFERENCE_ID = "reference"
QA_FILE = "qa.jsonl"


@dataclass
class DevelopOptions:
    """How to develop (the ``[develop]`` recipe values).

    Attributes
    ----------
    beta_region : {'static', 'full'}
        Region of the beta means (``full`` is ReLoBlur Eq. (6) as printed).
    white_balance : {'auto', 'whiteboard', 'metadata', 'grayworld', 'none'}
        ``auto``: whiteboard pair if present, else camera metadata, else gray world.
    color_matrix : bool
        Apply the camera -> sRGB matrix (metadata or rig.toml) when known.
    gamma : {'srgb', '2.2', 'linear'}
    refining_step : bool
        Menon's refining step.
    demosaic : {'menon', 'bilinear'}
    qa_sigma : float
        Gaussian sigma (pixels) of the luminance before the smoothed Delta-L
        (noise would otherwise dominate it); the plain Delta-L is reported too.
    """

    beta_region: str = "static"
    white_balance: str = "auto"
    color_matrix: bool = True
    gamma: str = "srgb"
    refining_step: bool = True
    demosaic: str = "menon"
    qa_sigma: float = 1.5

    def check(self) -> None:
        if self.white_balance not in WHITE_BALANCES:
            raise BadConfig(f"bad white balance {self.white_balance!r}: expected {', '.join(WHITE_BALANCES)}")
        if self.beta_region not in ("static", "full"):
            raise BadConfig(f"bad beta region {self.beta_region!r}: expected static or full")


@dataclass
class DevelopedPair:
    """One developed pair (display RGB float32 (H, W, 3) in [0, 1])."""

    id: str
    blur: np.ndarray
    sharp: np.ndarray
    static: bool
    beta: np.ndarray
    info: dict = field(default_factory=dict)


@dataclass
class DevelopedScene:
    """A developed scene: its pairs (reference first), white balance, QA."""

    name: str
    pairs: list
    wb_gains: np.ndarray
    wb_source: str
    warp: np.ndarray | None
    qa: dict
    timings: dict


def _read_pair(pair, rig: RigConfig) -> tuple[RawFrame, RawFrame]:
    b, s = read_raw(pair[0], rig), read_raw(pair[1], rig)
    check_pair(b, s)
    return b, s


def _luma(rgb: np.ndarray) -> np.ndarray:
    return (rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32)).astype(np.float32)


def reference_delta_l(sharp_rgb: np.ndarray, blur_rgb: np.ndarray, warp_px: np.ndarray | None, *,
                      sigma: float = 1.5, margin: float = 0.04) -> dict:
    """Delta-L (ReLoBlur appendix Eq. (1)) of a developed static pair.

    ``l1`` = sharp, ``l2`` = blur luminance (Rec. 709 weights of the display
    values). Reported three ways: ``plain`` (the equation on the images as
    they are), ``registered`` (blur resampled onto the sharp grid with the
    scene's global affine, borders left out: the cameras' misalignment is
    ``align``'s job, not a colour error), ``smoothed`` (registered, both
    luminances Gaussian-smoothed with ``sigma`` so sensor noise does not
    dominate).
    """
    l1, l2 = _luma(sharp_rgb), _luma(blur_rgb)
    out = {"plain": delta_l(l1, l2)}
    h, w = l1.shape
    if warp_px is not None:
        l2 = cv2.warpAffine(l2, np.asarray(warp_px, np.float32), (w, h),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    m = max(2, int(round(margin * max(h, w))))
    a, b = l1[m:h - m, m:w - m], l2[m:h - m, m:w - m]
    out["registered"] = delta_l(a, b)
    if sigma > 0:
        a = cv2.GaussianBlur(a, (0, 0), sigma)
        b = cv2.GaussianBlur(b, (0, 0), sigma)
    out["smoothed"] = delta_l(a, b)
    return out


def develop_scene(scene: RawScene, calib_blur: CastFit, calib_sharp: CastFit, *,
                  rig: RigConfig | None = None, options: DevelopOptions | None = None,
                  ids=None, on_pair=None) -> DevelopedScene:
    """Develop every pair of one scene (a pure function of the files: no writing).

    Parameters
    ----------
    scene : RawScene
        From :func:`lodetools.io.raw.scan_raw_pairs`.
    calib_blur, calib_sharp : CastFit
        Each camera's colour calibration (:func:`lodetools.io.calibration.read_calibration`).
    rig : RigConfig, optional
        The capture folder's rig.toml (needed for TIFF/NPY frames).
    options : DevelopOptions, optional
    ids : iterable of str, optional
        Develop only these capture ids (the reference pair is always developed
        when present, it drives the registration and the QA).
    on_pair : callable, optional
        Called with each :class:`DevelopedPair` as soon as it is developed;
        the pair is then not kept in ``pairs`` (bounded memory for scenes
        with many full-size captures).

    Returns
    -------
    DevelopedScene
        ``pairs[0]`` is the static reference pair (``static=True``) when the
        scene has one (``pairs`` is empty when ``on_pair`` is given).

    Raises
    ------
    LodeError
        Missing partner file, unreadable RAW, size/pattern mismatch,
        calibration made for another size or CFA pattern.
    """
    opts = options or DevelopOptions()
    opts.check()
    rig = rig or RigConfig()
    if scene.problems:
        path, msg = scene.problems[0]
        raise MissingInput(msg, path) if "missing partner" in msg else BadInput(msg, path)
    timings = {"read": 0.0, "correction": 0.0, "beta": 0.0, "demosaic": 0.0, "colour": 0.0}
    wanted = [(REFERENCE_ID, scene.reference, True)] if scene.reference else []
    for cid, pair in scene.captures.items():
        if ids is None or cid in set(ids):
            wanted.append((cid, pair, False))
    if not wanted:
        raise MissingInput("scene has no blur/sharp pairs", scene.folder)

    casts = {}

    def corrected(pair):
        t0 = time.perf_counter()
        b, s = _read_pair(pair, rig)
        t1 = time.perf_counter()
        if not casts:  # the cast images, once per scene (correct_bayer checks size and CFA)
            casts["blur"] = cast_image(calib_blur, b.shape, b.pattern)
            casts["sharp"] = cast_image(calib_sharp, s.shape, s.pattern)
        cb = correct_bayer(b.bayer, calib_blur, b.pattern, cast=casts["blur"])
        cs = correct_bayer(s.bayer, calib_sharp, s.pattern, cast=casts["sharp"])
        timings["read"] += t1 - t0
        timings["correction"] += time.perf_counter() - t1
        return b, s, cb, cs

    # white balance and camera matrix
    first_b, first_s, first_cb, first_cs = corrected(wanted[0][1])
    matrix = first_s.camera_to_srgb if opts.color_matrix else None
    wb_source, wb = "none", np.ones(3)
    if opts.white_balance in ("auto", "whiteboard") and scene.whiteboard:
        _, wsh = _read_pair(scene.whiteboard, rig)
        wb = white_balance_from_patch(correct_bayer(wsh.bayer, calib_sharp, wsh.pattern), wsh.pattern)
        wb_source = "whiteboard"
    elif opts.white_balance == "whiteboard":
        raise MissingInput("white balance 'whiteboard' but the scene has no whiteboard pair", scene.folder)
    elif opts.white_balance in ("auto", "metadata") and first_s.neutral is not None:
        wb = 1.0 / np.asarray(first_s.neutral, np.float64)
        wb_source = "metadata"
    elif opts.white_balance == "metadata":
        raise MissingInput("white balance 'metadata' but the RAW files carry no as-shot neutral",
                           first_s.path)
    elif opts.white_balance in ("auto", "grayworld"):
        wb_source = "grayworld"  # set from the first developed sharp image below
    # global registration of the two cameras on the static reference pair
    warp = None
    if scene.reference:
        t0 = time.perf_counter()
        warp = register_quads(quad_channels(first_cb, first_b.pattern), quad_channels(first_cs, first_s.pattern))
        timings["beta"] += time.perf_counter() - t0
    render_kw = dict(camera_to_srgb=matrix, gamma=opts.gamma, refining_step=opts.refining_step,
                     method=opts.demosaic, timings=timings)
    pairs, qa = [], {}
    for n, (pid, pair, static) in enumerate(wanted):
        b, s, cb, cs = (first_b, first_s, first_cb, first_cs) if n == 0 else corrected(pair)
        t0 = time.perf_counter()
        beta, info = estimate_beta(cb, cs, b.pattern, region=opts.beta_region, warp=warp,
                                   saturated=b.saturated | s.saturated)
        cb = apply_beta(cb, beta, b.pattern)
        timings["beta"] += time.perf_counter() - t0
        if wb_source == "grayworld" and n == 0:
            from lodetools.color.isp import demosaic

            wb = gray_world(demosaic(cs, s.pattern, method="bilinear"))
        sharp_rgb = render(cs, s.pattern, wb_gains=wb, **render_kw)
        blur_rgb = render(cb, b.pattern, wb_gains=wb, **render_kw)
        if static:
            warp_px = None if warp is None else quad_warp_to_pixels(warp)
            before_b = render(b.bayer, b.pattern, wb_gains=wb, **render_kw)
            before_s = render(s.bayer, s.pattern, wb_gains=wb, **render_kw)
            qa = {"delta_l_before": reference_delta_l(before_s, before_b, warp_px, sigma=opts.qa_sigma),
                  "delta_l_after": reference_delta_l(sharp_rgb, blur_rgb, warp_px, sigma=opts.qa_sigma),
                  "beta": beta.tolist()}
        info.pop("warp", None)
        info.update({"blur_raw": str(b.path), "sharp_raw": str(s.path), "pattern": b.pattern})
        dp = DevelopedPair(pid, blur_rgb, sharp_rgb, static, beta, info)
        if on_pair is None:
            pairs.append(dp)
        else:
            on_pair(dp)
    return DevelopedScene(scene.name, pairs, np.asarray(wb), wb_source,
                          None if warp is None else np.asarray(warp), qa, timings)


# --------------------------------------------------------------------------- the command's pipeline

def _process_scene(item: WorkItem, rng, *, out, raw_pairs, calib_blur, calib_sharp, options,
                   split, bit_depth):
    scene = item.payload
    rig = read_rig_config(raw_pairs)
    records = []

    def write(p):
        rec = write_pair(out, split, scene.name, p.id, {"blur": p.blur, "sharp": p.sharp}, bit_depth=bit_depth)
        rec["static"] = bool(p.static)
        rec["provenance"] = {
            "command": "develop",
            "raw": {"blur": str(Path(p.info["blur_raw"]).resolve().relative_to(raw_pairs)),
                    "sharp": str(Path(p.info["sharp_raw"]).resolve().relative_to(raw_pairs))},
            "beta": [round(float(v), 6) for v in p.beta],
            "beta_region": options["beta_region"],
            "static_fraction": round(float(p.info.get("static_fraction", 1.0)), 4),
            "pattern": p.info["pattern"],
        }
        records.append(rec)

    dev = develop_scene(scene, read_calibration(calib_blur), read_calibration(calib_sharp),
                        rig=rig, options=DevelopOptions(**options), on_pair=write)
    wb = {"source": dev.wb_source, "gains": [round(float(v), 6) for v in dev.wb_gains]}
    for rec in records:
        rec["provenance"]["white_balance"] = wb
        if rec["static"] and dev.qa:
            rec["qa"] = _round(dev.qa)
    return records


def _round(obj):
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round(v) for v in obj]
    if isinstance(obj, float):
        return round(obj, 6)
    return obj


def resolve_develop_inputs(params: dict) -> tuple[dict, dict]:
    """Calibration files and develop options from a command's effective parameters.

    Used by ``develop`` and ``align``. A missing ``--calib-<role>`` falls back to
    ``[cameras.<role>] calibration`` in the capture folder's ``rig.toml``.

    Returns
    -------
    calib : dict
        ``'blur'``/``'sharp'`` -> resolved calibration path (checked readable).
    options : dict
        Keyword arguments of :class:`DevelopOptions` (checked).

    Raises
    ------
    MissingInput
        No calibration for a camera.
    BadConfig
        A bad option value or calibration file.
    """
    raw_pairs = Path(params["raw_pairs"])
    if not raw_pairs.is_dir():
        raise MissingInput("raw-pairs folder not found", raw_pairs)
    rig = read_rig_config(raw_pairs)
    calib = {}
    for role in ("blur", "sharp"):
        p = params.get(f"calib_{role}")
        if p is None:
            p = rig.get("calibration", role)
            if p is None:
                raise MissingInput(f"no --calib-{role} and no calibration under [cameras.{role}] in rig.toml",
                                   raw_pairs)
            p = raw_pairs / p
        calib[role] = Path(p).resolve()
        read_calibration(calib[role])  # fail early on a bad file
    options = {"beta_region": params["beta_region"], "white_balance": params["white_balance"],
               "color_matrix": not params["no_color_matrix"], "gamma": params["gamma"],
               "refining_step": not params["no_refining_step"], "demosaic": "menon",
               "qa_sigma": float(params["qa_sigma"])}
    DevelopOptions(**options).check()
    return calib, options


def run_develop(params: dict, opts, *, recipe: str | None = None):
    """Run ``lodetools develop`` with effective parameters ``params``.

    Returns
    -------
    RunSummary
    """
    from lodetools.commands._options import computed_params

    raw_pairs = Path(params["raw_pairs"])
    calib, options = resolve_develop_inputs(params)
    scenes = scan_raw_pairs(raw_pairs)
    cp = computed_params(params)
    cp["calib_blur_sha256"] = sha256_file(calib["blur"])
    cp["calib_sharp_sha256"] = sha256_file(calib["sharp"])
    check_output(opts.out, "develop", cp, overwrite=opts.overwrite)
    split = params["split"]
    items = [WorkItem(item_key(split, s.name, REFERENCE_ID) if s.reference else f"{split}/{s.name}", s)
             for s in scenes]
    fn = functools.partial(_process_scene, out=opts.out, raw_pairs=raw_pairs.resolve(),
                           calib_blur=calib["blur"], calib_sharp=calib["sharp"], options=options,
                           split=split, bit_depth=int(params["bit_depth"]))
    summary = run_items(items, fn, opts)
    qa = [{"scene": r["scene"], **r["qa"]} for r in summary.records.values() if r.get("qa")]
    atomic_write_text(Path(opts.out) / QA_FILE, "".join(json.dumps(q, sort_keys=True) + "\n" for q in qa))
    counts = {"pairs": len(summary.records), "scenes": len({r["scene"] for r in summary.records.values()}),
              "static": sum(1 for r in summary.records.values() if r.get("static"))}
    extra = {}
    if qa:
        extra["qa_mean"] = {k: float(np.mean([q[k]["smoothed"] for q in qa]))
                            for k in ("delta_l_before", "delta_l_after")}
    write_dataset_json(opts.out, command="develop", params=cp, recipe=recipe, counts=counts, extra=extra)
    return summary


__all__ = ["DevelopOptions", "DevelopedPair", "DevelopedScene", "develop_scene", "reference_delta_l",
           "run_develop"]
