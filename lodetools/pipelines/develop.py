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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from lodetools.color.correction import CastFit, cast_image, correct_bayer
from lodetools.color.isp import gray_world, render, white_balance_from_patch
from lodetools.color.photometric import (apply_beta, estimate_beta, quad_channels, quad_warp_to_pixels,
                                         register_quads)
from lodetools.errors import BadConfig, BadInput, MissingInput
from lodetools.io.atomic import atomic_write_text
from lodetools.io.calibration import find_calibration, read_calibration
from lodetools.io.layout import item_key, write_pair
from lodetools.io.manifest import sha256_file, write_dataset_json
from lodetools.io.raw import RawFrame, RawScene, RigConfig, check_pair, read_raw, read_rig_config, scan_raw_pairs
from lodetools.metrics.delta_l import delta_l
from lodetools.runner import (RunOptions, RunSummary, WorkItem, check_output, png_setting, recorded_parameters,
                              run_items)

WHITE_BALANCES = ("auto", "whiteboard", "metadata", "grayworld", "none")
REFERENCE_ID = "reference"
QA_FILE = "qa.jsonl"


@dataclass(frozen=True)
class DevelopOptions:
    """How to develop a scene (what :func:`develop_scene` needs).

    Attributes
    ----------
    beta_region : {'static', 'full'}
        Region of the means of the brightness coefficient beta (ReLoBlur
        Eq. (6)): the static background (registered, moving objects left out;
        more accurate) or the whole image (``full``: Eq. (6) as printed).
    white_balance : {'auto', 'whiteboard', 'metadata', 'grayworld', 'none'}
        ``auto``: the scene's whiteboard pair if present (ReLoBlur "Paired
        Image Post-processing"), else camera metadata, else gray world.
    color_matrix : bool
        Apply the camera -> sRGB matrix (metadata or rig.toml) when known.
    gamma : {'srgb', '2.2', 'linear'}
        Output transfer curve.
    refining_step : bool
        Menon's refining step (Menon et al. 2007, the demosaicing ReLoBlur names).
    demosaic : {'menon', 'bilinear'}
    qa_sigma : float
        Gaussian sigma (pixels) of the luminance before the smoothed Delta-L
        (ReLoBlur appendix Eq. (1)); noise would otherwise dominate it. The
        plain Delta-L is reported too.
    color_correction : bool
        Remove each camera's calibrated colour cast (ReLoBlur Eqs. (3)-(5)).
        False: develop without calibration files, for a rig that has no
        lightbox capture (the cast stays in the images; the run records it).
    """

    beta_region: Literal["static", "full"] = "static"
    white_balance: Literal["auto", "whiteboard", "metadata", "grayworld", "none"] = "auto"
    color_matrix: bool = True
    gamma: Literal["srgb", "2.2", "linear"] = "srgb"
    refining_step: bool = True
    demosaic: Literal["menon", "bilinear"] = "menon"
    qa_sigma: float = 1.5
    color_correction: bool = True

    def check(self) -> None:
        """Raise :class:`BadConfig` naming a bad value."""
        if self.white_balance not in WHITE_BALANCES:
            raise BadConfig(f"bad white balance {self.white_balance!r}: expected {', '.join(WHITE_BALANCES)}")
        if self.beta_region not in ("static", "full"):
            raise BadConfig(f"bad beta region {self.beta_region!r}: expected static or full")
        if self.qa_sigma < 0:
            raise BadConfig(f"bad qa_sigma {self.qa_sigma}: must be >= 0")


@dataclass(frozen=True)
class DevelopParams(DevelopOptions):
    """What ``develop`` computes: :class:`DevelopOptions` plus where and how the pairs are written.

    Attributes
    ----------
    split : {'train', 'val', 'test'}
        Split the pairs are written under.
    bit_depth : {8, 16}
        PNG bit depth (released ReLoBlur images are 8-bit PNG).
    """

    split: Literal["train", "val", "test"] = "test"
    bit_depth: Literal[8, 16] = 8


@dataclass(frozen=True)
class RawInputs:
    """What ``develop`` and ``align`` read.

    Attributes
    ----------
    raw_pairs : pathlib.Path
        Capture folder: ``<scene>/reference_*``, ``whiteboard_*``,
        ``<id>_blur``/``<id>_sharp`` RAW files (+ optional ``rig.toml``).
    calib_blur, calib_sharp : pathlib.Path, optional
        Each camera's colour calibration (``lodetools calibrate color``);
        None: ``[cameras.<role>] calibration`` in ``rig.toml``.
    """

    raw_pairs: Path
    calib_blur: Path | None = None
    calib_sharp: Path | None = None


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


def _cast(fit: CastFit, frame: RawFrame, path, role: str) -> np.ndarray:
    """:func:`cast_image` for ``frame``; a calibration of another size or CFA names the RAW file and camera."""
    try:
        return cast_image(fit, frame.shape, frame.pattern)
    except BadConfig as exc:
        raise BadInput(f"{exc.what} (the {role} camera's calibration)", path) from None


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
    calib_blur, calib_sharp : CastFit or None
        Each camera's colour calibration (:func:`lodetools.io.calibration.read_calibration`);
        None (both) when ``options.color_correction`` is False.
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
    if opts.color_correction and (calib_blur is None or calib_sharp is None):
        raise BadConfig("colour correction needs both cameras' calibrations", scene.folder)
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

    lock = threading.Lock()

    def tick(key, seconds):
        with lock:
            timings[key] = timings.get(key, 0.0) + seconds

    def corrected(pair):
        t0 = time.perf_counter()
        b, s = _read_pair(pair, rig)
        t1 = time.perf_counter()
        tick("read", t1 - t0)
        if not opts.color_correction:
            return b, s, np.asarray(b.bayer, np.float32), np.asarray(s.bayer, np.float32)
        # the cast images are computed once per calibration and size (cast_image keeps them)
        cb = correct_bayer(b.bayer, calib_blur, b.pattern, cast=_cast(calib_blur, b, pair[0], "blur"))
        cs = correct_bayer(s.bayer, calib_sharp, s.pattern, cast=_cast(calib_sharp, s, pair[1], "sharp"))
        tick("correction", time.perf_counter() - t1)
        return b, s, cb, cs

    def whiteboard_gains():
        _, wsh = _read_pair(scene.whiteboard, rig)
        board = wsh.bayer
        if opts.color_correction:
            board = correct_bayer(board, calib_sharp, wsh.pattern,
                                  cast=_cast(calib_sharp, wsh, scene.whiteboard[1], "sharp"))
        return white_balance_from_patch(board, wsh.pattern)

    def timed_render(bayer, pattern, **kw):
        own = {}
        out = render(bayer, pattern, timings=own, **kw)
        for k, v in own.items():
            tick(k, v)
        return out

    # Two threads beside this one: while this thread registers the cameras, estimates beta and
    # renders the blur image, a helper renders the sharp image (the demosaic, OpenCV and numpy
    # release the GIL), the next pair is read and corrected ahead, and the previous pair is written.
    pool = ThreadPoolExecutor(2, thread_name_prefix="lodetools-develop")
    try:
        ahead = pool.submit(corrected, wanted[0][1])
        board = None
        if opts.white_balance in ("auto", "whiteboard") and scene.whiteboard:
            board = pool.submit(whiteboard_gains)
        first_b, first_s, first_cb, first_cs = ahead.result()
        ahead = pool.submit(corrected, wanted[1][1]) if len(wanted) > 1 else None
        # white balance and camera matrix
        matrix = first_s.camera_to_srgb if opts.color_matrix else None
        wb_source, wb = "none", np.ones(3)
        if board is not None:
            wb = board.result()
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
            from lodetools.color.isp import demosaic

            wb_source = "grayworld"  # from the first sharp image, bilinearly demosaiced
            wb = gray_world(demosaic(first_cs, first_s.pattern, method="bilinear"))
        render_kw = dict(wb_gains=wb, camera_to_srgb=matrix, gamma=opts.gamma, refining_step=opts.refining_step,
                         method=opts.demosaic)
        warp = None
        pairs, qa, writing = [], {}, None
        for n, (pid, pair, static) in enumerate(wanted):
            if n == 0:
                b, s, cb, cs = first_b, first_s, first_cb, first_cs
            else:
                b, s, cb, cs = ahead.result()
                ahead = pool.submit(corrected, wanted[n + 1][1]) if n + 1 < len(wanted) else None
            sharp_job = pool.submit(timed_render, cs, s.pattern, **render_kw)
            t0 = time.perf_counter()
            if n == 0 and scene.reference:
                # global registration of the two cameras on the static reference pair
                warp = register_quads(quad_channels(cb, b.pattern), quad_channels(cs, s.pattern))
            beta, info = estimate_beta(cb, cs, b.pattern, region=opts.beta_region, warp=warp,
                                       saturated=b.saturated | s.saturated)
            cb = apply_beta(cb, beta, b.pattern)
            tick("beta", time.perf_counter() - t0)
            blur_rgb = timed_render(cb, b.pattern, **render_kw)
            sharp_rgb = sharp_job.result()
            if static:
                warp_px = None if warp is None else quad_warp_to_pixels(warp)
                # the "before" images exist only for this figure: a bilinear demosaic (a small convolution)
                # instead of two more full Menon demosaics per scene; the smoothed Delta-L of a static pair
                # hardly depends on the demosaic (docs/commands/develop.md)
                before_kw = {**render_kw, "method": "bilinear"}
                before_s = pool.submit(render, s.bayer, s.pattern, **before_kw)
                before_b = render(b.bayer, b.pattern, **before_kw)
                qa = {"delta_l_before": reference_delta_l(before_s.result(), before_b, warp_px,
                                                          sigma=opts.qa_sigma),
                      "delta_l_after": reference_delta_l(sharp_rgb, blur_rgb, warp_px, sigma=opts.qa_sigma),
                      "beta": beta.tolist()}
            info.pop("warp", None)
            info.update({"blur_raw": str(b.path), "sharp_raw": str(s.path), "pattern": b.pattern})
            dp = DevelopedPair(pid, blur_rgb, sharp_rgb, static, beta, info)
            if on_pair is None:
                pairs.append(dp)
            else:  # written while the next pair develops (one pair in flight: bounded memory)
                if writing is not None:
                    writing.result()
                writing = pool.submit(on_pair, dp)
        if writing is not None:
            writing.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return DevelopedScene(scene.name, pairs, np.asarray(wb), wb_source,
                          None if warp is None else np.asarray(warp), qa, timings)


# --------------------------------------------------------------------------- the command's pipeline

def _process_scene(item: WorkItem, rng, *, out, raw_pairs, calib_blur, calib_sharp, options,
                   split, bit_depth, png_compression=None):
    scene = item.payload
    rig = read_rig_config(raw_pairs)
    records = []

    def write(p):
        rec = write_pair(out, split, scene.name, p.id, {"blur": p.blur, "sharp": p.sharp}, bit_depth=bit_depth,
                         png_compression=png_compression)
        rec["static"] = bool(p.static)
        rec["provenance"] = {
            "command": "develop",
            "raw": {"blur": str(Path(p.info["blur_raw"]).resolve().relative_to(raw_pairs)),
                    "sharp": str(Path(p.info["sharp_raw"]).resolve().relative_to(raw_pairs))},
            "beta": [round(float(v), 6) for v in p.beta],
            "beta_region": options.beta_region,
            "static_fraction": round(float(p.info.get("static_fraction", 1.0)), 4),
            "pattern": p.info["pattern"],
            "color_correction": options.color_correction,
        }
        records.append(rec)

    dev = develop_scene(scene, *read_calibrations(calib_blur, calib_sharp), rig=rig, options=options,
                        on_pair=write)
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


#: how a run without calibration files is asked for (named by the errors about a missing calibration)
NO_CORRECTION_HINT = "a rig without a lightbox capture: --no-color-correction"


def read_calibrations(calib_blur, calib_sharp) -> tuple:
    """Both cameras' :class:`CastFit` (None for a camera without a calibration file)."""
    return tuple(None if p is None else read_calibration(p) for p in (calib_blur, calib_sharp))


def resolve_calibrations(inputs: RawInputs, *, color_correction: bool = True) -> dict:
    """Each camera's calibration file, checked readable.

    A ``calib_<role>`` is a file or the name of a shipped calibration
    (:func:`~lodetools.io.calibration.find_calibration`); a missing one falls
    back to ``[cameras.<role>] calibration`` in the capture folder's
    ``rig.toml`` (relative to the folder).

    Parameters
    ----------
    inputs : RawInputs
    color_correction : bool
        False: no calibration is used (``{'blur': None, 'sharp': None}``);
        naming a calibration file in ``inputs`` is then an error.

    Returns
    -------
    dict
        ``'blur'``/``'sharp'`` -> resolved calibration path (or None).

    Raises
    ------
    MissingInput
        No capture folder, no calibration for a camera, or a calibration file
        that does not exist (the message names the file and the way to run
        without calibrations).
    BadConfig
        A bad calibration file; calibration files given without colour correction.
    """
    raw_pairs = Path(inputs.raw_pairs)
    if not raw_pairs.is_dir():
        raise MissingInput("raw-pairs folder not found", raw_pairs)
    rig = read_rig_config(raw_pairs)  # a bad rig.toml fails here, before anything is written
    if not color_correction:
        given = [f"--calib-{r}" for r in ("blur", "sharp") if getattr(inputs, f"calib_{r}") is not None]
        if given:
            raise BadConfig(f"{' and '.join(given)} given with --no-color-correction: give one or the other")
        return {"blur": None, "sharp": None}
    calib = {}
    for role in ("blur", "sharp"):
        p = getattr(inputs, f"calib_{role}")
        if p is None:
            p = rig.get("calibration", role)
            if p is None:
                lightbox = rig.get("lightbox", role)
                hint = (f"make one from the lightbox capture: lodetools calibrate color --lightbox "
                        f"{raw_pairs / lightbox} --camera NAME --out {role}.toml, or run without: "
                        "--no-color-correction" if lightbox else NO_CORRECTION_HINT)
                raise MissingInput(f"no --calib-{role} and no calibration under [cameras.{role}] in rig.toml "
                                   f"({hint})", raw_pairs)
            p = raw_pairs / p
        try:
            found = find_calibration(p)  # a file, or a shipped name (sim-blur)
            read_calibration(found)  # fail early on a bad file
        except MissingInput as exc:
            raise MissingInput(f"{exc.what} ({NO_CORRECTION_HINT})", exc.path) from None
        calib[role] = found.resolve() if isinstance(found, Path) else found
    return calib


@dataclass
class RawRun:
    """The start every RAW pipeline shares (:func:`start_raw_run`)."""

    raw_pairs: Path       # resolved
    calib: dict           # role -> calibration path (None without colour correction)
    scenes: list          # RawScene, from scan_raw_pairs
    recorded: dict        # the parameters written into dataset.json


def start_raw_run(command: str, inputs: RawInputs, params: DevelopParams, opts: RunOptions) -> RawRun:
    """Check the parameters, find the calibrations and scenes, refuse a conflicting output folder.

    Used by ``develop`` and ``align``; the recorded parameters hold the
    calibration files' SHA-256 (a recalibration is a different run), or
    ``color_correction: false`` for a run without calibrations.

    Raises
    ------
    LodeError
        See :func:`resolve_calibrations`; :class:`OutputConflict` for an
        output folder holding other parameters (without ``overwrite``).
    """
    params.check()
    if params.bit_depth not in (8, 16):
        raise BadConfig(f"--bit-depth {params.bit_depth}: expected 8 or 16")
    calib = resolve_calibrations(inputs, color_correction=params.color_correction)
    raw_pairs = Path(inputs.raw_pairs)
    scenes = scan_raw_pairs(raw_pairs)
    # a calibration given by name is recorded as the shipped file it names
    given = {f"calib_{r}": None if getattr(inputs, f"calib_{r}") is None else calib[r] for r in ("blur", "sharp")}
    recorded = recorded_parameters(params, opts, raw_pairs=raw_pairs, **given)
    for role, path in calib.items():
        if path is not None:
            recorded[f"calib_{role}_sha256"] = sha256_file(path)
    check_output(opts.out, command, recorded, overwrite=opts.overwrite)
    return RawRun(raw_pairs.resolve(), calib, scenes, recorded)


def finish_raw_run(command: str, run: RawRun, summary: RunSummary, opts: RunOptions, *,
                   qa_mean, counts: dict | None = None) -> RunSummary:
    """Write ``qa.jsonl`` (every scene's QA) and ``dataset.json``; fill ``summary.out``/``info``.

    The ``finish`` of :func:`~lodetools.runner.run_items`: ``summary.records``
    holds every shard's records.

    ``qa_mean(qa_records)`` -> the dataset's mean QA figures (``info['qa_mean']``).
    """
    recs = summary.records.values()
    qa = [{"scene": r["scene"], **r["qa"]} for r in recs if r.get("qa")]
    atomic_write_text(Path(opts.out) / QA_FILE, "".join(json.dumps(q, sort_keys=True) + "\n" for q in qa))
    counts = {"pairs": len(summary.records), "scenes": len({r["scene"] for r in recs}),
              "static": sum(1 for r in recs if r.get("static")), **(counts or {})}
    extra = {"qa_mean": qa_mean(qa)} if qa else {}
    write_dataset_json(opts.out, command=command, params=run.recorded, recipe=opts.recipe, counts=counts,
                       extra={**extra, "png_compression": png_setting(opts)})
    summary.out = Path(opts.out)
    summary.info = dict(extra)
    return summary


def run(inputs: RawInputs, params: DevelopParams, opts: RunOptions) -> RunSummary:
    """Develop every scene of ``inputs.raw_pairs`` into a paired dataset in ``opts.out``.

    Returns
    -------
    RunSummary
        ``info['qa_mean']``: mean smoothed Delta-L before/after correction
        over the scenes' reference pairs (when there are any).
    """
    raw = start_raw_run("develop", inputs, params, opts)
    split = params.split
    items = [WorkItem(item_key(split, s.name, REFERENCE_ID) if s.reference else f"{split}/{s.name}", s)
             for s in raw.scenes]
    fn = functools.partial(_process_scene, out=opts.out, raw_pairs=raw.raw_pairs, calib_blur=raw.calib["blur"],
                           calib_sharp=raw.calib["sharp"], options=params, split=split,
                           bit_depth=params.bit_depth, png_compression=opts.png_compression)
    return run_items(items, fn, opts, finish=lambda summary: finish_raw_run(
        "develop", raw, summary, opts, qa_mean=lambda qa: {
            k: float(np.mean([q[k]["smoothed"] for q in qa])) for k in ("delta_l_before", "delta_l_after")}))


__all__ = ["DevelopOptions", "DevelopParams", "DevelopedPair", "DevelopedScene", "RawInputs", "develop_scene",
           "reference_delta_l", "resolve_calibrations", "run", "start_raw_run"]
