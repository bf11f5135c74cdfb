"""The synthetic capture world on disk: presets, clip plan and ``world.json``.

``lodetools sim clips|rig|voc|all --out DIR`` writes::

    DIR/world.json                   what was made: seed, preset, sizes, counts per part
    DIR/clips/<name>.mp4             high-fps clips as videos (H.264, lossless RGB) ...
    DIR/clips/<name>/000000.png ...  ... or as folders of numbered PNG frames
    DIR/clips_truth/<name>/truth.json         poses, camera, coverage per frame, CRF, fps
    DIR/clips_truth/<name>/masks/000000.png   union footprint of the moving objects (0/255)
    DIR/clips_truth/<name>/frames/            the exact 8-bit frames (``--format both``)
    DIR/clips_truth/dataset.json, manifest.jsonl   the clip run's parameters and records
    DIR/rig/                         beam-splitter RAW pairs (raw-pairs layout), ``sim rig``
    DIR/VOCdevkit/VOC2012/           the mini PASCAL VOC, ``sim voc``

``DIR/clips`` holds nothing but clips, so it is directly the ``--videos``
input of ``lodetools synthesize``; the ground truth lives beside it. Clip
names say the camera: ``clip_000_static`` ... ``clip_005_shake``.

Every random choice of clip ``name`` comes from ``item_rng(seed, name)``:
the same seed gives the same bytes, whatever ``--workers`` or ``--shard``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from lodetools.errors import BadConfig
from lodetools.io.atomic import atomic_write_text
from lodetools.io.manifest import sha256_file

WORLD_JSON = "world.json"
CLIPS, CLIPS_TRUTH, RIG, VOC = "clips", "clips_truth", "rig", "VOCdevkit/VOC2012"


@dataclass(frozen=True)
class ClipPlan:
    """What ``sim clips`` makes (a preset, adjusted by options).

    Attributes
    ----------
    size : (H, W)
    clips : int
        Number of clips.
    shake_clips : int
        How many of them (the last ones) have camera shake.
    frames : int
        Frames per clip.
    fps : float
    crf : str
        Camera response spec (``gamma:2.2``, ``srgb``, ``linear`` or a table file).
    fmt : {'video', 'frames', 'both', 'mixed'}
        ``mixed`` alternates videos (even clips) and frame folders (odd clips).
    objects : (low, high)
        Moving objects per clip.
    speed : (low, high)
        Peak object speed, canvas widths per second.
    subframes : int
    object_masks : bool
        Also write per-object masks.
    video_quality : {'lossless', 'near-lossless'}
        H.264 in RGB, decoded bit for bit, or yuv444p (see :func:`lodetools.io.video.write_video`).
    """

    size: tuple = (180, 320)
    clips: int = 6
    shake_clips: int = 2
    frames: int = 130
    fps: float = 250.0
    crf: str = "gamma:2.2"
    fmt: str = "video"
    objects: tuple = (1, 3)
    speed: tuple = (0.5, 2.0)
    subframes: int = 1
    object_masks: bool = False
    video_quality: str = "lossless"


#: named presets: ``demo`` (about 320x180, enough windows for the demo) and ``test`` (tiny)
PRESETS = {
    "demo": ClipPlan(),
    "test": ClipPlan(size=(64, 96), clips=3, shake_clips=1, frames=30),
}


def clip_plan(preset: str = "demo", **overrides) -> ClipPlan:
    """A preset's plan with the given fields replaced (``None`` values are ignored).

    Raises
    ------
    BadConfig
        For an unknown preset or an impossible combination.
    """
    if preset not in PRESETS:
        raise BadConfig(f"unknown preset {preset!r}: expected {' or '.join(PRESETS)}")
    plan = replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})
    if "shake_clips" not in overrides or overrides["shake_clips"] is None:
        if "clips" in overrides and overrides["clips"] is not None:
            plan = replace(plan, shake_clips=plan.clips // 3)
    if plan.clips < 1:
        raise BadConfig(f"need at least one clip, got {plan.clips}")
    if not 0 <= plan.shake_clips <= plan.clips:
        raise BadConfig(f"shake clips must be 0 to {plan.clips}, got {plan.shake_clips}")
    if plan.fmt not in ("video", "frames", "both", "mixed"):
        raise BadConfig(f"bad format {plan.fmt!r}: expected video, frames, both or mixed")
    if plan.video_quality not in ("lossless", "near-lossless"):
        raise BadConfig(f"bad video quality {plan.video_quality!r}: expected lossless or near-lossless")
    if plan.frames < 1 or plan.fps <= 0:
        raise BadConfig(f"need frames >= 1 and fps > 0 (got {plan.frames}, {plan.fps})")
    lo, hi = plan.objects
    if not 0 <= lo <= hi <= 8:
        raise BadConfig(f"bad object count range {lo}-{hi}: need 0 <= low <= high <= 8")
    return plan


def clip_names(plan: ClipPlan) -> list[tuple[str, bool, str]]:
    """``(name, shake, format)`` per clip: the last ``shake_clips`` clips shake."""
    out = []
    for i in range(plan.clips):
        shake = i >= plan.clips - plan.shake_clips
        fmt = plan.fmt if plan.fmt != "mixed" else ("video" if i % 2 == 0 else "frames")
        out.append((f"clip_{i:03d}_{'shake' if shake else 'static'}", shake, fmt))
    return out


def make_world_clip(item, rng, *, root, plan: ClipPlan) -> dict:
    """Runner item function: draw, render and write one clip; return its manifest record.

    ``item.payload`` is ``(name, shake, fmt)``; paths in the record are relative
    to ``root/clips_truth`` (the run's output folder).
    """
    from lodetools.sim.clips import make_clip, write_clip

    name, shake, fmt = item.payload
    root = Path(root)
    clip = make_clip(rng, plan.size, plan.frames, plan.fps, n_objects=tuple(plan.objects), shake=shake,
                     crf=plan.crf, speed=tuple(plan.speed), subframes=plan.subframes)
    head = write_clip(clip, name, root / CLIPS, root / CLIPS_TRUTH, fmt=fmt, quality=plan.video_quality,
                      object_masks=plan.object_masks)
    files = {"truth": f"{name}/truth.json"}
    if head["video"]:
        files["video"] = f"../{CLIPS}/{name}.mp4"
    truth_dir = root / CLIPS_TRUTH
    return {"key": name, "files": files,
            "sha256": {k: sha256_file(truth_dir / v) for k, v in files.items()},
            "camera": clip.camera, "format": fmt, "n_frames": clip.n_frames, "fps": clip.fps,
            "crf": clip.crf.name, "objects": len(clip.objects), "mean_coverage": head["mean_coverage"],
            "background": clip.background}


def write_clips(opts, plan: ClipPlan, *, preset: str = "demo", recipe: str | None = None):
    """Render and write every clip of ``plan`` under ``opts.out`` (the world folder).

    The clips run on :func:`lodetools.runner.run_items` (``--workers``,
    ``--shard``, resume); its output folder is ``<world>/clips_truth``, which
    receives ``dataset.json`` and ``manifest.jsonl``; ``world.json`` records
    the part.

    Parameters
    ----------
    opts : lodetools.runner.RunOptions
        ``opts.out`` is the world folder.
    plan : ClipPlan
        From :func:`clip_plan`.
    preset, recipe : str
        Recorded in ``world.json`` / ``dataset.json``.

    Returns
    -------
    lodetools.runner.RunSummary

    Raises
    ------
    OutputConflict
        If ``clips_truth`` holds a run with other parameters (without ``overwrite``).

    Examples
    --------
    >>> from lodetools.runner import RunOptions
    >>> write_clips(RunOptions(out=Path("world"), seed=0, quiet=True), clip_plan("test"))  # doctest: +SKIP
    """
    import functools
    import time
    from dataclasses import asdict

    from lodetools.io.manifest import write_dataset_json
    from lodetools.runner import WorkItem, check_output, run_items

    root = Path(opts.out)
    truth = root / CLIPS_TRUTH
    params = {"seed": int(opts.seed), "plan": asdict(plan)}
    check_output(truth, "sim clips", params, overwrite=opts.overwrite)
    items = [WorkItem(name, (name, shake, fmt)) for name, shake, fmt in clip_names(plan)]
    fn = functools.partial(make_world_clip, root=root, plan=plan)
    t0 = time.perf_counter()
    counts: dict = {}

    def finish(summary):  # under the output lock, with every shard's records
        recs = summary.records
        counts.update({"clips": len(recs), "shake": sum(r["camera"] == "shake" for r in recs.values()),
                       "frames": sum(r["n_frames"] for r in recs.values())})
        write_dataset_json(truth, command="sim clips", params=params, recipe=recipe, counts=counts)
        update_world_json(root, "clips", {
            "seed": int(opts.seed), "preset": preset, "size": [plan.size[1], plan.size[0]],
            "fps": plan.fps, "frames_per_clip": plan.frames, "crf": plan.crf, "format": plan.fmt,
            "counts": counts, "names": sorted(recs),
            "mean_coverage": {k: r["mean_coverage"] for k, r in sorted(recs.items())},
            "seconds": round(time.perf_counter() - t0, 3)}, seed=opts.seed, preset=preset)

    return run_items(items, fn, replace(opts, out=truth), finish=finish)


def update_world_json(root, part: str, info: dict, *, seed: int, preset: str) -> dict:
    """Record one part (``clips``, ``rig``, ``voc``) in ``root/world.json`` (atomic)."""
    from lodetools import __version__

    p = Path(root) / WORLD_JSON
    doc = {}
    if p.is_file():
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError):
            doc = {}
    doc.update({"tool": "lodetools", "version": __version__, "seed": int(seed), "preset": preset,
                "layout": {"clips": CLIPS, "clips_truth": CLIPS_TRUTH, "rig": RIG, "voc": VOC}})
    doc.setdefault("parts", {})[part] = info
    atomic_write_text(p, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    return doc
