"""``lodetools sim clips|rig|voc|all``: write the synthetic capture world."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lodetools.commands._options import params_from_click, run_options, run_options_from
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


def sim_params(values: dict, parts) -> "SimParams":
    """Typed parameters of the world from the options' values (``WxH`` and ``LOW-HIGH`` parsed)."""
    from lodetools.pipelines.sim import SimParams

    def pair(text, kind):
        return None if text is None else tuple(kind(v) for v in str(text).replace(",", "-").split("-"))

    size = pair(str(values["size"]).lower().replace("x", "-") if values.get("size") else None, int)
    return params_from_click(SimParams, values, parts=parts, size=size, objects=pair(values.get("objects"), int),
                             speed=pair(values.get("speed"), float))


def run_world(values: dict, parts, recipe: str | None = None) -> int:
    """Write ``parts`` of the world under ``--out``; returns the exit code."""
    from lodetools.pipelines.sim import run
    from lodetools.runner import report

    summary = run(None, sim_params(values, parts), run_options_from(values, desc="clips", recipe=recipe))
    code = report(summary, what="clips") if "clips" in parts else 0
    if not values.get("quiet"):
        for part, info in summary.info["parts"].items():
            if part != "clips":
                click.echo(f"{part}: written to {Path(values['out']) / info['path']} in "
                           f"{info['seconds']:.1f} s", err=True)
    return code


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
    values, recipe = resolve_params(ctx, "sim.clips")
    sys.exit(run_world(values, ("clips",), recipe))


@command.command("rig")
@part_options
def rig_command(**params):
    """Beam-splitter RAW rig captures as DNG (raw-pairs layout) in DIR/rig.

    Per scene: a static reference pair, a whiteboard pair and numbered
    blur/sharp captures, plus lightbox frames, with every true parameter as
    JSON (ReLoBlur section "Paired Image Acquisition").

    Example: lodetools sim rig --out world --preset demo
    """
    run_world(params, ("rig",))


@command.command("voc")
@part_options
def voc_command(**params):
    """A mini PASCAL VOC 2012 (DIR/VOCdevkit/VOC2012) with objects cut from photographs.

    Example: lodetools sim voc --out world --preset test
    """
    run_world(params, ("voc",))


@command.command("all")
@world_options
@clip_options
@click.pass_context
def all_command(ctx, **_):
    """Clips, rig and VOC in one go (the clip options apply to the clips).

    Example: lodetools sim all --out world --seed 0 --preset demo --workers 2
    """
    values, recipe = resolve_params(ctx, "sim.all")
    sys.exit(run_world(values, ("clips", "rig", "voc"), recipe))

