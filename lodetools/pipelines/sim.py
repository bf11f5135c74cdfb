"""The ``sim`` pipeline: write the synthetic capture world (clips, RAW rig, mini VOC).

Each part has its writer in :mod:`lodetools.sim`: the clips run on the work
runner (:func:`lodetools.sim.world.write_clips`: workers, shards, resume), the
rig (:func:`lodetools.sim.rig.write_rig`) and the VOC
(:func:`lodetools.sim.voc.write_voc`) are written in one process. Every part
is recorded in ``<out>/world.json``; the same seed gives the same bytes.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from lodetools.errors import BadConfig, LodeError
from lodetools.runner import RunOptions, RunSummary

PARTS = ("clips", "rig", "voc")


@dataclass(frozen=True)
class SimParams:
    """What the synthetic world holds.

    ``None`` takes the preset's value (:func:`lodetools.sim.world.clip_plan`).

    Attributes
    ----------
    parts : tuple of {'clips', 'rig', 'voc'}
        The parts to write, in order.
    preset : {'demo', 'test'}
        Sizes and counts: demo (320x180, 6 clips x 130 frames, demo rig and
        VOC) or test (96x64, 3 clips x 30 frames, tiny rig and VOC).
    size : tuple of int, optional
        Frame size ``(W, H)`` of the clips.
    clips : int, optional
        Number of clips.
    shake_clips : int, optional
        How many clips (the last ones) have camera shake (global blur).
    frames : int, optional
        Frames per clip.
    duration : float, optional
        Clip length in seconds instead of ``frames``: frames = round(duration x fps).
    fps : float, optional
        Frame rate of the clips; motion per frame scales with 1/fps.
    crf : str, optional
        Camera response the frames are encoded with (gamma:2.2, srgb, linear
        or an inverse-CRF table file).
    fmt : {'video', 'frames', 'both', 'mixed'}, optional
        How clips are stored.
    video_quality : {'lossless', 'near-lossless'}, optional
    objects : tuple of int, optional
        Moving objects per clip, ``(low, high)``.
    speed : tuple of float, optional
        Peak object speed in frame widths per second, ``(low, high)``.
    subframes : int, optional
        Renders averaged per frame (exposure blur within one frame).
    object_masks : bool, optional
        Also write per-object masks.
    """

    parts: tuple[Literal["clips", "rig", "voc"], ...] = PARTS
    preset: Literal["demo", "test"] = "demo"
    size: tuple[int, int] | None = None
    clips: int | None = None
    shake_clips: int | None = None
    frames: int | None = None
    duration: float | None = None
    fps: float | None = None
    crf: str | None = None
    fmt: Literal["video", "frames", "both", "mixed"] | None = None
    video_quality: Literal["lossless", "near-lossless"] | None = None
    objects: tuple[int, int] | None = None
    speed: tuple[float, float] | None = None
    subframes: int | None = None
    object_masks: bool | None = None


def clip_plan_of(params: SimParams):
    """The :class:`lodetools.sim.world.ClipPlan` of ``params`` (the CRF checked).

    Raises
    ------
    BadConfig
        Both ``frames`` and ``duration``, or a bad CRF.
    """
    from lodetools.color.crf import parse_crf
    from lodetools.sim.world import clip_plan

    over = {
        "size": None if params.size is None else (int(params.size[1]), int(params.size[0])),
        "clips": params.clips, "shake_clips": params.shake_clips, "frames": params.frames,
        "fps": params.fps, "crf": params.crf, "fmt": params.fmt, "subframes": params.subframes,
        "video_quality": params.video_quality, "object_masks": params.object_masks or None,
        "objects": params.objects, "speed": params.speed,
    }
    if params.duration is not None:
        if params.frames is not None:
            raise BadConfig("give --frames or --duration, not both")
        fps = over["fps"] or clip_plan(params.preset).fps
        over["frames"] = max(1, int(round(params.duration * fps)))
    plan = clip_plan(params.preset, **over)
    parse_crf(plan.crf)  # a bad CRF fails before anything is written
    return plan


def part_module(part: str):
    """Import ``lodetools.sim.<part>`` or fail with a clear error if it is not installed."""
    name = f"lodetools.sim.{part}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name in (name, "lodetools.sim"):
            raise LodeError(f"the '{part}' part of the synthetic world is not available in this "
                            f"lodetools ({name} is missing)") from None
        raise


def _summary(truth) -> dict:
    """The small part of a writer's ground truth, for world.json: scalars, short
    lists, and the length of long lists (the full truth stays in the part's folder)."""
    if not isinstance(truth, dict):
        return {}
    out, counts = {}, {}
    for k, v in truth.items():
        if v is None or isinstance(v, (str, int, float, bool)):
            out[k] = v
        elif isinstance(v, (list, tuple)):
            if len(v) <= 4 and all(isinstance(x, (str, int, float, bool)) for x in v):
                out[k] = list(v)
            else:
                counts[k] = len(v)
    if counts:
        out["counts"] = counts
    return out


def write_part(part: str, root, *, seed: int, preset: str) -> dict:
    """Write one one-process part (``rig`` -> ``root/rig``, ``voc`` -> ``root``) and record it in world.json.

    Returns
    -------
    dict
        What ``world.json`` records for the part (``path``, ``seconds``, a summary of its truth).
    """
    from lodetools.sim import world

    mod = part_module(part)
    root = Path(root)
    fn = getattr(mod, f"write_{part}", None)
    if fn is None:
        raise LodeError(f"lodetools.sim.{part} has no write_{part} function")
    target = root / world.RIG if part == "rig" else root
    t0 = time.perf_counter()
    result = fn(target, seed=int(seed), preset=preset)
    info = dict(_summary(result), seed=int(seed), preset=preset,
                path=world.RIG if part == "rig" else world.VOC, seconds=round(time.perf_counter() - t0, 3))
    world.update_world_json(root, part, info, seed=int(seed), preset=preset)
    return info


def run(inputs, params: SimParams, opts: RunOptions) -> RunSummary:
    """Write the parts of the world into ``opts.out``.

    Parameters
    ----------
    inputs : None
        The world reads nothing: it renders photographs bundled with scikit-image.
    params : SimParams
    opts : RunOptions
        The clips use every option (workers, shard, resume); the rig and the
        VOC only ``out`` and ``seed``.

    Returns
    -------
    RunSummary
        The clips' run (empty without clips); ``info['parts']``: part -> what
        ``world.json`` records of it.
    """
    for part in params.parts:  # fail before writing anything if a part is missing or unknown
        if part not in PARTS:
            raise BadConfig(f"unknown part {part!r} of the world: expected {', '.join(PARTS)}")
        part_module(part)
    plan = clip_plan_of(params) if "clips" in params.parts else None
    summary, parts = RunSummary(), {}
    for part in params.parts:
        if part == "clips":
            from lodetools.sim.world import write_clips

            summary = write_clips(replace(opts, desc=opts.desc or "clips"), plan, preset=params.preset,
                                  recipe=opts.recipe)
            if not summary.ok:
                break
            parts[part] = {"clips": len(summary.records)}
        else:
            parts[part] = write_part(part, opts.out, seed=opts.seed, preset=params.preset)
    summary.out = Path(opts.out)
    summary.info = {"parts": parts}
    return summary
