"""``lodetools align``: develop RAW pairs, then align every blur image geometrically to its sharp partner.

ReLoBlur "Geometrical Alignment": the two cameras of the beam-splitter rig are
slightly misaligned. Per scene, the optical flow between the cameras is
estimated *once*, on the static reference pair (nothing moves, so the flow is
the cameras' misalignment alone), with pyflow; it is then applied to every
locally blurred image of the scene, with an edge-preserving interpolation.

Here, per scene:

1. :func:`lodetools.pipelines.develop.develop_scene` (colour correction,
   photometric alignment, ISP) develops every pair, the reference first;
2. ``flow = estimate_flow(reference_sharp, reference_blur, method)`` (default
   ``c2f``, our implementation of pyflow's method) so that
   ``blur(x + flow(x)) ~= sharp(x)``;
3. flow vectors that are unreliable (their sample falls outside the frame, or
   the warped reference blur disagrees with the reference sharp by more than
   ``residual_threshold`` after a small blur) are replaced by a deterministic
   edge-preserving interpolation of the reliable ones
   (:func:`lodetools.flow.warp.densify_flow`; ReLoBlur's "CMTF" could not be
   identified);
4. every blur image of the scene, the reference's too, is warped with it
   (bicubic), and so is an optional local-blur mask ``<scene>/<id>_mask.png``
   drawn on the blur camera's image (nearest neighbour);
5. the pairs are written in the paired layout (the reference pair with id
   ``reference`` and ``"static": true``, plus its developed blur image before
   warping as role ``blur_unaligned``), the flow to
   ``<split>/<scene>/flow.npy``, and the reference record carries the QA:
   static-pair PSNR/SSIM and Delta-L (ReLoBlur appendix Eq. (1)) before and
   after alignment (on the interior of the frame, leaving out a margin as wide
   as the largest flow vector so no out-of-frame sample counts), and the flow
   magnitude statistics. ``<out>/qa.jsonl`` collects the QA of every scene.

A scene without a reference pair fails with an error naming it; with
``--on-error skip`` the other scenes go on.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from lodetools.errors import BadConfig, BadInput, MissingInput
from lodetools.flow import METHODS as FLOW_METHODS
from lodetools.flow import estimate_flow
from lodetools.flow.warp import densify_flow, valid_mask, warp_image
from lodetools.io.atomic import atomic_write_bytes
from lodetools.io.images import read_mask
from lodetools.io.layout import item_key, write_pair
from lodetools.io.paths import confined, safe_name
from lodetools.io.raw import read_rig_config, scan_raw_pairs
from lodetools.metrics.delta_l import delta_l
from lodetools.metrics.psnr_ssim import psnr, ssim
from lodetools.pipelines.develop import (REFERENCE_ID, DevelopParams, RawInputs, _round, develop_scene,
                                         finish_raw_run, read_calibrations, start_raw_run)
from lodetools.runner import RunOptions, RunSummary, WorkItem, run_items

#: file name of an optional local-blur mask drawn on the blur camera's image
MASK_SUFFIX = "_mask.png"


def _luma(rgb: np.ndarray) -> np.ndarray:
    return (np.asarray(rgb, np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)).astype(np.float32)


def reliable_flow(sharp: np.ndarray, blur: np.ndarray, flow: np.ndarray, *,
                  residual_threshold: float = 0.1, sigma: float = 1.5) -> np.ndarray:
    """Pixels whose flow vector is trusted: in-frame sample and small photometric residual.

    The residual is ``|L(sharp) - L(blur warped by flow)|`` of the Gaussian-smoothed
    (``sigma`` px) luminances; bool (H, W).
    """
    warped, valid = warp_image(blur, flow)
    a = cv2.GaussianBlur(_luma(sharp), (0, 0), sigma)
    b = cv2.GaussianBlur(_luma(warped), (0, 0), sigma)
    return valid & (np.abs(a - b) <= residual_threshold)


def scene_flow(sharp: np.ndarray, blur: np.ndarray, *, method: str = "c2f", densify: bool = True,
               residual_threshold: float = 0.1, flow_options: dict | None = None):
    """The misalignment flow of a static pair: ``blur(x + flow(x)) ~= sharp(x)``.

    Returns
    -------
    flow : ndarray
        float32 (H, W, 2).
    info : dict
        ``reliable_fraction`` (before densification) and ``densified``.
    """
    flow = estimate_flow(sharp, blur, method, **(flow_options or {}))
    reliable = reliable_flow(sharp, blur, flow, residual_threshold=residual_threshold)
    info = {"reliable_fraction": float(reliable.mean()), "densified": False}
    if densify and not reliable.all():
        flow = densify_flow(flow, reliable, sharp)
        info["densified"] = True
    return flow.astype(np.float32), info


def flow_stats(flow: np.ndarray) -> dict:
    """Magnitude statistics of a flow (pixels): mean, median, p95, max, and the mean vector."""
    mag = np.sqrt((np.asarray(flow, np.float64) ** 2).sum(-1))
    return {"mean": float(mag.mean()), "median": float(np.median(mag)),
            "p95": float(np.percentile(mag, 95)), "max": float(mag.max()),
            "mean_dx": float(flow[..., 0].mean()), "mean_dy": float(flow[..., 1].mean())}


def static_pair_qa(sharp: np.ndarray, blur_before: np.ndarray, blur_after: np.ndarray,
                   flow: np.ndarray) -> dict:
    """PSNR/SSIM (8-bit, ``lodetools.metrics``) and Delta-L (ReLoBlur appendix Eq. (1)).

    Computed before and after alignment on the frame's interior: a margin of
    ``ceil(max |flow|) + 2`` px is left out on every side (the same crop for
    both), so samples from outside the blur camera's frame never count.
    """
    h, w = sharp.shape[:2]
    m = int(math.ceil(float(np.sqrt((flow ** 2).sum(-1)).max()))) + 2
    m = min(m, (min(h, w) - 8) // 2) if min(h, w) > 16 else 0
    crop = (slice(m, h - m), slice(m, w - m))
    s, b0, b1 = sharp[crop], blur_before[crop], blur_after[crop]
    return {
        "margin_px": m,
        "psnr_before": psnr(b0, s), "psnr_after": psnr(b1, s),
        "ssim_before": ssim(b0, s), "ssim_after": ssim(b1, s),
        "delta_l_before": delta_l(_luma(s), _luma(b0)), "delta_l_after": delta_l(_luma(s), _luma(b1)),
    }


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _align_scene(item: WorkItem, rng, *, out, raw_pairs, calib_blur, calib_sharp, develop_options,
                 split, bit_depth, method, densify, residual_threshold, flow_options, png_compression=None):
    scene = item.payload
    if scene.reference is None:
        raise MissingInput(f"scene {scene.name!r} has no static reference pair (reference_blur / "
                           "reference_sharp): align estimates the cameras' flow on it", scene.folder)
    rig = read_rig_config(raw_pairs)
    # the flow of the reference pair (developed first) is estimated while the other pairs develop
    pool = ThreadPoolExecutor(2, thread_name_prefix="lodetools-align")
    try:
        return _align_developed(scene, pool, rig=rig, out=out, raw_pairs=raw_pairs, calib_blur=calib_blur,
                                calib_sharp=calib_sharp, develop_options=develop_options, split=split,
                                bit_depth=bit_depth, method=method, densify=densify,
                                residual_threshold=residual_threshold, flow_options=flow_options,
                                png_compression=png_compression)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _align_developed(scene, pool, *, rig, out, raw_pairs, calib_blur, calib_sharp, develop_options, split,
                     bit_depth, method, densify, residual_threshold, flow_options, png_compression):
    pairs, flow_job = [], []

    def developed(p):
        pairs.append(p)
        if not flow_job:
            assert p.static and p.id == REFERENCE_ID
            flow_job.append(pool.submit(scene_flow, p.sharp, p.blur, method=method, densify=densify,
                                        residual_threshold=residual_threshold, flow_options=flow_options))

    dev = develop_scene(scene, *read_calibrations(calib_blur, calib_sharp), rig=rig, options=develop_options,
                        on_pair=developed)
    dev.pairs = pairs
    flow, finfo = flow_job[0].result()
    flow_rel = f"{safe_name(split, what='split')}/{safe_name(dev.name, what='scene name')}/flow.npy"
    data = _npy_bytes(flow)
    atomic_write_bytes(confined(out, flow_rel), data)
    flow_info = {"method": method, "options": flow_options, "densify": "fgs" if densify else "none",
                 "file": flow_rel, "sha256": hashlib.sha256(data).hexdigest(), **finfo}
    valid = valid_mask(flow)

    def one(p):
        aligned, _ = warp_image(p.blur, flow)
        images = {"blur": aligned, "sharp": p.sharp}
        if p.static:  # kept so reports can show the static pair before and after alignment
            images["blur_unaligned"] = p.blur
        mask_src = scene.folder / f"{p.id}{MASK_SUFFIX}"
        if not p.static and mask_src.is_file():
            mask = read_mask(mask_src)
            if mask.shape != flow.shape[:2]:
                raise BadInput(f"mask is {mask.shape[1]}x{mask.shape[0]}, images are "
                               f"{flow.shape[1]}x{flow.shape[0]}", mask_src)
            images["mask"], _ = warp_image(mask, flow)
        rec = write_pair(out, split, dev.name, p.id, images, bit_depth=bit_depth, png_compression=png_compression)
        rec["static"] = bool(p.static)
        rec["provenance"] = {
            "command": "align",
            "raw": {"blur": str(Path(p.info["blur_raw"]).resolve().relative_to(raw_pairs)),
                    "sharp": str(Path(p.info["sharp_raw"]).resolve().relative_to(raw_pairs))},
            "beta": [round(float(v), 6) for v in p.beta],
            "white_balance": {"source": dev.wb_source, "gains": [round(float(v), 6) for v in dev.wb_gains]},
            "pattern": p.info["pattern"],
            "color_correction": develop_options.color_correction,
            "flow": _round(flow_info),
            "valid_fraction": round(float(valid.mean()), 6),
        }
        if "mask" in images:
            rec["provenance"]["mask_source"] = str(mask_src.resolve().relative_to(raw_pairs))
        if p.static:
            qa = static_pair_qa(p.sharp, p.blur, aligned, flow)
            qa["flow"] = flow_stats(flow)
            if dev.qa:
                qa["develop"] = dev.qa
            rec["qa"] = _round(qa)
        return rec

    # two pairs warped, encoded and written at once (cv2 releases the GIL)
    return list(pool.map(one, dev.pairs))


@dataclass(frozen=True)
class AlignParams(DevelopParams):
    """What ``align`` computes: the development (:class:`DevelopParams`) plus the geometric alignment.

    Attributes
    ----------
    flow : {'c2f', 'pyflow', 'dis', 'deepflow', 'tvl1'}
        Optical flow between the cameras, estimated once per scene on the
        static reference pair. ReLoBlur ("Geometrical Alignment") uses pyflow,
        Ce Liu's coarse-to-fine method; ``c2f`` is our implementation of it,
        ``pyflow`` the original module if built, the others OpenCV's.
    flow_alpha : float
        c2f smoothness weight (pyflow's default 0.012).
    densify : bool
        Replace unreliable flow vectors by an edge-preserving interpolation
        of the reliable ones (normalised fast global smoother) (ReLoBlur's "CMTF" could not be identified).
    residual_threshold : float
        A flow vector is unreliable where the warped reference blur differs
        from the reference sharp by more than this (smoothed luminance, 0-1
        scale; not in the paper).
    """

    flow: Literal["c2f", "pyflow", "dis", "deepflow", "tvl1"] = "c2f"
    flow_alpha: float = 0.012
    densify: bool = True
    residual_threshold: float = 0.1


def run(inputs: RawInputs, params: AlignParams, opts: RunOptions) -> RunSummary:
    """Develop and align every scene of ``inputs.raw_pairs`` into a paired dataset in ``opts.out``.

    ``opts.device`` is the torch device of ``c2f`` (None: CUDA when available).

    Returns
    -------
    RunSummary
        ``info['qa_mean']``: mean static-pair PSNR/SSIM/Delta-L before and
        after alignment over the scenes.
    """
    if params.flow not in FLOW_METHODS:
        raise BadConfig(f"bad flow method {params.flow!r}: expected {', '.join(FLOW_METHODS)}")
    if not params.flow_alpha > 0 or params.residual_threshold < 0:
        raise BadConfig("need flow_alpha > 0 and residual_threshold >= 0")
    flow_options = {}
    if params.flow == "c2f":
        flow_options = {"alpha": float(params.flow_alpha)}
        if opts.device:
            flow_options["device"] = opts.device
    raw = start_raw_run("align", inputs, params, opts)
    split = params.split
    items = [WorkItem(item_key(split, s.name, REFERENCE_ID), s) for s in raw.scenes]
    fn = functools.partial(_align_scene, out=opts.out, raw_pairs=raw.raw_pairs, calib_blur=raw.calib["blur"],
                           calib_sharp=raw.calib["sharp"], develop_options=params, split=split,
                           bit_depth=params.bit_depth, method=params.flow, densify=params.densify,
                           residual_threshold=float(params.residual_threshold), flow_options=flow_options,
                           png_compression=opts.png_compression)

    def finish(summary):  # under the output lock, with every shard's records
        masks = sum(1 for r in summary.records.values() if "mask" in r.get("files", {}))
        finish_raw_run("align", raw, summary, opts, counts={"masks": masks}, qa_mean=lambda qa: {
            k: float(np.mean([q[k] for q in qa])) for k in ("psnr_before", "psnr_after", "ssim_before",
                                                             "ssim_after", "delta_l_before", "delta_l_after")})

    return run_items(items, fn, opts, finish=finish)


__all__ = ["AlignParams", "flow_stats", "reliable_flow", "run", "scene_flow", "static_pair_qa"]
