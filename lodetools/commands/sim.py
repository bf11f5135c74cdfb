"""``lodetools sim clips|rig|voc|all``: write the synthetic capture world."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import click

from lodetools.commands._options import run_options, run_options_from
from lodetools.errors import BadConfig, LodeError
from lodetools.recipe import resolve_params

EXAMPLE = "lodetools sim all --out world --seed 0 --preset demo"


def _size(ctx, param, value):
    if value is None:
        return None
    try:
        w, h = (int(v) for v in str(value).lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not WxH, e.g. 320x180") from None
    if w < 16 or h < 16:
        raise click.BadParameter(f"{value!r} is too small (at least 16x16)")
    return f"{w}x{h}"


def _pair(kind):
    def parse(ctx, param, value):
        if value is None:
            return None
        try:
            lo, hi = (kind(v) for v in str(value).replace(",", "-").split("-"))
        except ValueError:
            raise click.BadParameter(f"{value!r} is not LOW-HIGH, e.g. 1-3") from None
        if lo > hi or lo < 0:
            raise click.BadParameter(f"{value!r}: need 0 <= LOW <= HIGH")
        return f"{lo}-{hi}"
    return parse


_PRESET = click.option("--preset", type=click.Choice(["demo", "test"]), default="demo", show_default=True,
                       help="Sizes and counts: demo (320x180, 6 clips x 130 frames, demo rig and VOC) "
                            "or test (96x64, 3 clips x 30 frames, tiny rig and VOC).")


def world_options(f):
    """``--preset`` plus the run options (``--out --seed --workers ...``)."""
    return run_options(_PRESET(f))


def part_options(f):
    """``--out --seed --preset --quiet`` (the rig and VOC writers run in one process)."""
    opts = [
        click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="World folder (the part goes into its subfolder)."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed; the same seed gives the same bytes."),
        _PRESET,
        click.option("--quiet", "-q", is_flag=True, help="No progress output."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def clip_options(f):
    opts = [
        click.option("--size", callback=_size, default=None,
                     help="Frame size WxH (preset: 320x180 demo, 96x64 test)."),
        click.option("--clips", type=click.IntRange(min=1), default=None,
                     help="Number of clips (preset: 6 demo, 3 test)."),
        click.option("--shake-clips", type=click.IntRange(min=0), default=None,
                     help="How many clips (the last ones) have camera shake: global blur "
                          "(default a third of --clips)."),
        click.option("--frames", type=click.IntRange(min=1), default=None,
                     help="Frames per clip (preset: 130 demo, 30 test)."),
        click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="Clip length in seconds (instead of --frames): frames = round(duration x fps)."),
        click.option("--fps", type=click.FloatRange(min=1e-3), default=None,
                     help="Frame rate stored in the videos and truth [250]; motion per frame scales "
                          "with 1/fps as for a real camera."),
        click.option("--crf", default=None,
                     help="Camera response the frames are encoded with: gamma:2.2 (default), srgb, "
                          "linear, or a 256-row inverse-CRF table file (.txt/.csv/.npy)."),
        click.option("--format", "fmt", type=click.Choice(["video", "frames", "both", "mixed"]), default=None,
                     help="clips/ holds videos (<name>.mp4, H.264), frame folders "
                          "(<name>/000000.png ...), both (video in clips/, exact PNG frames in "
                          "clips_truth/<name>/frames/) or mixed (videos and frame folders alternate) "
                          "[video]."),
        click.option("--video-quality", type=click.Choice(["lossless", "near-lossless"]), default=None,
                     help="lossless: H.264 on RGB (libx264rgb, qp 0), decodes to the frames bit for bit; "
                          "near-lossless: H.264 yuv444p qp 0, within ~0.35 levels, plays in more "
                          "players [lossless]."),
        click.option("--objects", callback=_pair(int), default=None,
                     help="Moving objects per clip, LOW-HIGH [1-3]."),
        click.option("--speed", callback=_pair(float), default=None,
                     help="Peak object speed in frame widths per second, LOW-HIGH [0.5-2.0]."),
        click.option("--subframes", type=click.IntRange(min=1), default=None,
                     help="Renders averaged per frame: exposure blur within one frame [1]."),
        click.option("--object-masks", is_flag=True, default=None,
                     help="Also write per-object masks (clips_truth/<name>/objects/<k>/)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _plan(params):
    from lodetools.sim.world import clip_plan

    size = params.get("size")
    over = {
        "size": None if size is None else tuple(int(v) for v in reversed(size.split("x"))),
        "clips": params.get("clips"), "shake_clips": params.get("shake_clips"),
        "frames": params.get("frames"), "fps": params.get("fps"), "crf": params.get("crf"),
        "fmt": params.get("fmt"), "subframes": params.get("subframes"),
        "video_quality": params.get("video_quality"),
        "object_masks": params.get("object_masks") or None,
        "objects": None if params.get("objects") is None else tuple(int(v) for v in params["objects"].split("-")),
        "speed": None if params.get("speed") is None else tuple(float(v) for v in params["speed"].split("-")),
    }
    if params.get("duration") is not None:
        if params.get("frames") is not None:
            raise BadConfig("give --frames or --duration, not both")
        fps = over["fps"] or clip_plan(params["preset"]).fps
        over["frames"] = max(1, int(round(params["duration"] * fps)))
    plan = clip_plan(params["preset"], **over)
    from lodetools.color.crf import parse_crf

    parse_crf(plan.crf)  # a bad --crf fails before anything is written
    return plan


def run_clips(params) -> int:
    """Write ``clips/`` and ``clips_truth/`` under ``--out``; returns the exit code."""
    from lodetools.runner import report
    from lodetools.sim.world import write_clips

    plan = _plan(params)
    summary = write_clips(run_options_from(params, desc="clips"), plan, preset=params["preset"],
                          recipe=params.get("recipe"))
    return report(summary, what="clips")


def _part_module(part: str):
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


def run_part(part: str, params) -> None:
    """``rig`` -> ``sim.rig.write_rig(DIR/rig)``; ``voc`` -> ``sim.voc.write_voc(DIR)``."""
    from lodetools.sim import world

    mod = _part_module(part)
    root = Path(params["out"])
    fn = getattr(mod, f"write_{part}", None)
    if fn is None:
        raise LodeError(f"lodetools.sim.{part} has no write_{part} function")
    target = root / world.RIG if part == "rig" else root
    t0 = time.perf_counter()
    result = fn(target, seed=int(params["seed"]), preset=params["preset"])
    info = dict(_summary(result), seed=int(params["seed"]), preset=params["preset"],
                path=world.RIG if part == "rig" else world.VOC, seconds=round(time.perf_counter() - t0, 3))
    world.update_world_json(root, part, info, seed=int(params["seed"]), preset=params["preset"])
    if not params.get("quiet"):
        click.echo(f"{part}: written to {root / info['path']} in {info['seconds']:.1f} s", err=True)


@click.group("sim")
def command():
    """Write the synthetic capture world: high-fps clips, a RAW rig, a mini VOC.

    Everything is rendered from photographs bundled with scikit-image (no
    download) and comes with its ground truth. Layout under --out:
    clips/ (videos or frame folders; usable as `synthesize --videos`),
    clips_truth/<name>/ (truth.json, masks/), rig/ (raw-pairs layout),
    VOCdevkit/VOC2012/, and world.json describing what was made.
    The same --seed gives the same bytes.

    Example: lodetools sim all --out world --seed 0 --preset demo
    """


@command.command("clips")
@world_options
@clip_options
@click.pass_context
def clips_command(ctx, **_):
    """High-frame-rate clips with ground truth (masks, poses, camera, coverage).

    A static background photograph and 1 to 3 objects cut from other
    photographs move along smooth random trajectories (translation,
    rotation, scale); the last --shake-clips clips add camera shake. Frames
    are rendered in linear light and encoded with --crf, so CRF inversion is
    exactly checkable. Clip names say the camera: clip_000_static,
    clip_005_shake.

    Example: lodetools sim clips --out world --preset test --format both
    """
    params, _ = resolve_params(ctx, "sim.clips")
    sys.exit(run_clips(params))


@command.command("rig")
@part_options
def rig_command(**params):
    """Beam-splitter RAW rig captures as DNG (raw-pairs layout) in DIR/rig.

    Per scene: a static reference pair, a whiteboard pair and numbered
    blur/sharp captures, plus lightbox frames, with every true parameter as
    JSON (ReLoBlur section "Paired Image Acquisition").

    Example: lodetools sim rig --out world --preset demo
    """
    run_part("rig", params)


@command.command("voc")
@part_options
def voc_command(**params):
    """A mini PASCAL VOC 2012 (DIR/VOCdevkit/VOC2012) with objects cut from photographs.

    Example: lodetools sim voc --out world --preset test
    """
    run_part("voc", params)


@command.command("all")
@world_options
@clip_options
@click.pass_context
def all_command(ctx, **_):
    """Clips, rig and VOC in one go (the clip options apply to the clips).

    Example: lodetools sim all --out world --seed 0 --preset demo --workers 2
    """
    params, _ = resolve_params(ctx, "sim.all")
    for part in ("rig", "voc"):  # fail before writing anything if a part is missing
        _part_module(part)
    code = run_clips(params)
    if code:
        sys.exit(code)
    for part in ("rig", "voc"):
        run_part(part, params)
    sys.exit(0)

