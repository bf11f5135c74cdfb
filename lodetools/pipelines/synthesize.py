"""The ``synthesize`` pipeline: blurred/sharp pairs from high-frame-rate videos.

GoPro/REDS/LODE recipe (LODE section 3 and appendix A.1): per clip, N
non-overlapping windows of M consecutive frames (M odd, drawn per window from
``[frames_min, frames_max]``); blurred = ``g(mean(g^-1(frames)))`` (LODE Eqs.
(6)-(7)), sharp = the middle frame, bit-exact. Clips are split into
train/val/test by video, so no source video feeds two splits.

One work item per clip: the clip is decoded once, front to back, and each
window is averaged as its frames stream past (memory: at most one window's
M frames, never the clip). A clip whose decoding fails part-way leaves no
file behind (the windows it already wrote are removed) and is reported.

Output layout (:mod:`lodetools.io.layout`): ``<split>/<clip>/blur/<mid>.png``
and ``.../sharp/<mid>.png`` where ``<clip>`` is the source video's name and
``<mid>`` the six-digit index of the sharp (middle) frame in the clip, as
GoPro names its files by frame number. M, the frame range, the CRF, the seed
and the saturation/noise settings are in each record's ``provenance``.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from lodetools.color.crf import parse_crf
from lodetools.errors import BadConfig, BadInput, LodeError, MissingInput
from lodetools.io.images import list_images
from lodetools.io.layout import item_key, write_pair
from lodetools.io.manifest import write_dataset_json
from lodetools.io.paths import confined, safe_name
from lodetools.io.video import VideoInfo, is_video_file, iter_frames, list_videos, probe_video
from lodetools.runner import (RunOptions, RunSummary, WorkItem, check_output, item_rng, png_setting,
                              recorded_parameters, run_items)
from lodetools.synth.averaging import (
    Noise, Saturation, check_window_length, odd_lengths, plan_windows, synthesize_windows,
)


@dataclass(frozen=True)
class Clip:
    """One source video: a file or a frame folder."""

    name: str
    path: Path
    n_frames: int
    fps: float | None
    info: VideoInfo | None = None   # what probing found (reused when decoding)


def find_clips(inputs) -> list[tuple[str, Path]]:
    """The source videos of ``inputs``: ``(name, path)`` in natural order.

    Each input is a folder of videos (files and frame sub-folders), a single
    video file, or a single folder of frames. The clip name is the file stem
    or folder name, made safe for the layout.

    Raises
    ------
    MissingInput
        An input does not exist, or no video is found at all.
    BadInput
        Two clips share a name.
    """
    found: list[tuple[str, Path]] = []
    for inp in inputs:
        p = Path(inp)
        if not p.exists():
            raise MissingInput("video folder not found", p)
        if p.is_file():
            if not is_video_file(p):
                raise BadInput("not a video file (by extension)", p)
            paths = [p]
        else:
            paths = list_videos(p)
            if not paths and list_images(p):
                paths = [p]  # the folder is itself one clip of frames
        for q in paths:
            found.append((safe_name(q.stem if q.is_file() else q.name, what="clip name"), q))
    if not found:
        raise MissingInput("no videos or frame folders found", ", ".join(str(i) for i in inputs) or "(none)")
    seen: dict[str, Path] = {}
    for name, q in found:
        if name in seen:
            raise BadInput(f"two clips are named {name!r}: {seen[name]} and {q}", q)
        seen[name] = q
    return found


def window_lengths(m: int | None, frames_min: int, frames_max: int) -> list[int]:
    """The allowed window lengths: ``[m]`` if given, else the odd values in the range.

    Raises
    ------
    BadConfig
        Even M (the sharp image must be the middle frame), M < 3, or an empty range.
    """
    if m is not None:
        return [check_window_length(m)]
    return odd_lengths(frames_min, frames_max)


def _count(value, fraction, n: int, what: str) -> int:
    if value is not None and fraction is not None:
        raise BadConfig(f"give --{what}-count or --{what}-fraction, not both")
    if fraction is not None:
        if not 0 <= fraction <= 1:
            raise BadConfig(f"--{what}-fraction {fraction} must be in [0, 1]")
        return int(math.floor(fraction * n + 0.5))
    if value is not None and value < 0:
        raise BadConfig(f"--{what}-count {value} must be >= 0")
    return int(value or 0)


def assign_splits(names, seed: int, *, val_count=None, val_fraction=None,
                  test_count=None, test_fraction=None) -> dict[str, str]:
    """Split clips by video: clip name -> ``'train' | 'val' | 'test'``.

    A permutation of the sorted names seeded by ``seed`` alone: the first
    clips go to val, the next to test, the rest to train. The same clips and
    seed always give the same split, whatever the sharding or worker count.

    Raises
    ------
    BadConfig
        Count and fraction both given, or more val + test clips than clips.
    """
    names = sorted(names)
    n = len(names)
    nv = _count(val_count, val_fraction, n, "val")
    nt = _count(test_count, test_fraction, n, "test")
    if nv + nt > n:
        raise BadConfig(f"asked for {nv} val + {nt} test clips but only {n} clips are usable")
    order = item_rng(seed, "split").permutation(n)
    split = {}
    for rank, i in enumerate(order):
        split[names[i]] = "val" if rank < nv else "test" if rank < nv + nt else "train"
    return split


def probe_clip(name: str, path: Path, fps: float | None) -> Clip:
    """Frame count (exact) and frame rate (``fps`` overrides the container's).

    Raises
    ------
    BadInput
        If the file cannot be decoded, or holds clearly fewer frames than its
        container's duration x frame rate (a truncated file: more than 2 % and
        more than one frame missing).
    """
    info = probe_video(path, exact=True)  # one ffmpeg run: header and packet count, nothing decoded
    return Clip(name, path, int(info.n_frames), fps if fps else info.fps, info)


#: frames the reader thread decodes ahead of the averaging (ring buffers beyond the longest window)
PREFETCH = 4


def encode_threads() -> int:
    """Threads that encode and write a clip's PNGs while the next windows are decoded and averaged.

    Every usable core (:func:`lodetools.parallel.usable_cores`, at most 4): a
    PNG encode is one independent call that releases the GIL, with no barrier
    to wait at, so a busy machine slows it down but never makes two threads
    slower than one.
    """
    from lodetools.parallel import usable_cores

    return max(1, min(4, usable_cores()))


def process_clip(item: WorkItem, rng: np.random.Generator, *, out: Path, crf_spec: str,
                 lengths: list[int], windows_per_clip: int, bit_depth: int, seed: int,
                 saturation: Saturation | None, noise: Noise | None, png_compression=None) -> list[dict]:
    """Synthesise every window of one clip (a runner item function).

    The windows are planned from the item's generator, then the clip is
    streamed once, as a pipeline within the process: a thread reads the
    decoded frames (ffmpeg decodes in its own process) up to
    :data:`PREFETCH` frames ahead into reused buffers, this thread averages
    each window, and :func:`encode_threads` threads encode and write the
    pairs (at most two windows per thread waiting), so decoding, averaging
    and PNG encoding overlap. The outputs do not depend on the overlap. On a
    decoding error the files already written for this clip are removed and
    :class:`BadInput` is raised.
    """
    from concurrent.futures import ThreadPoolExecutor

    split, clip = item.payload
    crf = parse_crf(crf_spec)
    windows = plan_windows(clip.n_frames, lengths, rng, windows_per_clip)
    written: list[Path] = []
    records = []
    base_prov = {"source": str(Path(clip.path).resolve()), "clip": clip.name, "fps": clip.fps, "crf": crf.name,
                 "seed": seed, "clip_frames": clip.n_frames,
                 "saturation": None if saturation is None else vars(saturation).copy(),
                 "noise": None if noise is None else vars(noise).copy()}

    def write(res):
        iid = f"{res.window.middle:06d}"
        sharp = res.sharp
        if bit_depth == 16 and sharp.dtype == np.uint8:
            sharp = sharp.astype(np.uint16) * np.uint16(257)  # the same values, 16-bit
        rec = write_pair(out, split, clip.name, iid, {"blur": res.blur, "sharp": sharp},
                         bit_depth=bit_depth, png_compression=png_compression)
        written.extend(confined(out, rel) for rel in rec["files"].values())
        rec["provenance"] = {**base_prov, **res.provenance}
        return rec

    nthreads = encode_threads()
    pending: list = []
    with ThreadPoolExecutor(nthreads, thread_name_prefix="lodetools-encode") as pool:
        try:
            # the averaging holds at most max(M) - 1 frames when it asks for the next one, so a
            # ring of max(M) + PREFETCH buffers lets the reader run PREFETCH frames ahead
            ring = max(lengths) + PREFETCH
            with contextlib.closing(iter_frames(clip.path, ring=ring, info=clip.info,
                                                prefetch=PREFETCH)) as frames:
                for res in synthesize_windows(enumerate(frames), windows, crf, saturation=saturation,
                                              noise=noise, rng=rng, bit_depth=bit_depth,
                                              reuse=max(lengths) + 1):
                    pending.append(pool.submit(write, res))
                    while len(pending) > 2 * nthreads:  # bounded memory: wait for the oldest pair
                        records.append(pending.pop(0).result())
            while pending:
                records.append(pending.pop(0).result())
        except BaseException as exc:
            for fut in pending:  # let the writes in flight finish, then remove every file of the clip
                fut.cancel()
            pool.shutdown(wait=True)
            for p in written:
                with contextlib.suppress(OSError):
                    p.unlink()
            if isinstance(exc, LodeError) and exc.path is None:
                raise BadInput(exc.what, clip.path) from None
            raise
    return records


@dataclass
class Plan:
    """What a synthesize run will do."""

    items: list[WorkItem]
    skipped: dict[str, str]
    splits: dict[str, str]
    failed: dict[str, str] = field(default_factory=dict)  # bad clips left out (on_error='skip')


def plan(inputs, *, seed: int, lengths: list[int], fps: float | None, windows_per_clip: int,
         val_count=None, val_fraction=None, test_count=None, test_fraction=None,
         on_error: str = "stop") -> Plan:
    """Find, probe and split the clips; one work item per usable clip.

    A clip shorter than the shortest allowed M is skipped (listed in
    ``Plan.skipped`` with the reason) and takes no part in the split; so is a
    corrupt or truncated video with ``on_error='skip'`` (else its error is
    raised before anything is written). Every
    clip is probed (also under ``--shard``) so that all shards agree on the split.
    """
    if windows_per_clip < 0:
        raise BadConfig(f"--windows-per-clip {windows_per_clip} must be >= 0 (0: as many as fit)")
    clips, skipped, failed = [], {}, {}
    for name, path in find_clips(inputs):
        try:
            clip = probe_clip(name, path, fps)
        except LodeError as exc:
            if on_error != "skip":
                raise
            skipped[name] = exc.what
            failed[f"clip {name}"] = exc.message
            continue
        if clip.n_frames < min(lengths):
            skipped[name] = f"{clip.n_frames} frames, shorter than M = {min(lengths)}"
            continue
        clips.append(clip)
    if not clips:
        raise BadInput("no clip is long enough for a window of "
                       f"{min(lengths)} frames", ", ".join(str(i) for i in inputs))
    splits = assign_splits([c.name for c in clips], seed, val_count=val_count, val_fraction=val_fraction,
                           test_count=test_count, test_fraction=test_fraction)
    items = [WorkItem(item_key(splits[c.name], c.name, "clip"), (splits[c.name], c)) for c in clips]
    return Plan(items, skipped, splits, failed)


COMMAND = "synthesize"


@dataclass(frozen=True)
class SynthesizeParams:
    """What ``synthesize`` computes (the ``[synthesize]`` recipe values).

    Attributes
    ----------
    m : int, optional
        Fixed frames per blurred image (odd, >= 3); overrides the range below.
    frames_min, frames_max : int
        M is drawn per window from the odd values in ``[frames_min, frames_max]``
        (LODE appendix A.1: 7 to 13).
    windows_per_clip : int
        Non-overlapping windows per clip (LODE: 1); 0 takes as many as fit,
        back to back, as GoPro does [2]_.
    crf : str
        Camera response ``g`` of LODE Eqs. (6)-(7): ``gamma:G`` (GoPro: 2.2),
        ``srgb``, ``linear``, or a file holding a 256 x 1|3 inverse-CRF table.
    fps : float, optional
        Frame rate of the input, recorded in provenance (None: the container's).
    val_count, val_fraction, test_count, test_fraction : int or float, optional
        Clips in the val / test splits, as a count or a fraction (one of each
        pair); the split is by video, so no clip feeds two splits.
    bit_depth : {8, 16}
        PNG bit depth of the outputs.
    saturation : bool
        Boost clipped pixels by ``a ~ U(saturation_min, saturation_max)`` in
        linear light before averaging, clip after (RSBlur [3]_; beyond GoPro/LODE).
    saturation_min, saturation_max : float
        Range of the boost (RSBlur: 0.25 to 1.75).
    noise : bool
        Poisson-Gaussian noise on the blurred image in linear light (beyond GoPro/LODE).
    noise_shot, noise_read : float
        Shot-noise scale ``a`` (variance ``a x``) and read-noise standard deviation.

    References
    ----------
    .. [1] Li et al., "Real-World Deep Local Motion Deblurring" (LODE), AAAI 2023.
    .. [2] Nah et al., "Deep Multi-Scale CNN for Dynamic Scene Deblurring", CVPR 2017.
    .. [3] Rim et al., "Realistic Blur Synthesis for Learning Image Deblurring", ECCV 2022.
    """

    m: int | None = None
    frames_min: int = 7
    frames_max: int = 13
    windows_per_clip: int = 1
    crf: str = "gamma:2.2"
    fps: float | None = None
    val_count: int | None = None
    val_fraction: float | None = None
    test_count: int | None = None
    test_fraction: float | None = None
    bit_depth: Literal[8, 16] = 8
    saturation: bool = False
    saturation_min: float = 0.25
    saturation_max: float = 1.75
    noise: bool = False
    noise_shot: float = 0.002
    noise_read: float = 0.002


def run(videos, params: SynthesizeParams, opts: RunOptions) -> RunSummary:
    """Synthesise blurred/sharp pairs from the clips of ``videos`` into ``opts.out``.

    Parameters
    ----------
    videos : sequence of path
        Folders of videos and/or frame folders, single videos, single frame folders.
    params : SynthesizeParams
    opts : RunOptions

    Returns
    -------
    RunSummary
        ``info``: ``clips`` (usable clips), ``skipped_clips`` (name -> why),
        ``clip_splits`` (name -> split).

    Raises
    ------
    BadConfig
        Bad parameters, or no input.
    OutputConflict
        ``opts.out`` holds a run with other parameters (without ``overwrite``).
    """
    videos = tuple(Path(v) for v in (videos or ()))
    lengths = window_lengths(params.m, params.frames_min, params.frames_max)
    crf = parse_crf(params.crf)
    if params.bit_depth not in (8, 16):
        raise BadConfig(f"--bit-depth {params.bit_depth}: expected 8 or 16")
    saturation = None
    if params.saturation:
        lo, hi = params.saturation_min, params.saturation_max
        if not 0 <= lo <= hi:
            raise BadConfig(f"saturation gain range {lo}..{hi}: need 0 <= min <= max")
        saturation = Saturation(lo, hi)
    noise = None
    if params.noise:
        if params.noise_shot < 0 or params.noise_read < 0:
            raise BadConfig("noise levels must be >= 0")
        noise = Noise(params.noise_shot, params.noise_read)
    if not videos:
        raise BadConfig("no input: give --videos DIR (a folder of videos or frame folders)")
    recorded = recorded_parameters(params, opts, videos=videos)
    check_output(opts.out, COMMAND, recorded, overwrite=opts.overwrite)
    p = plan(videos, seed=opts.seed, lengths=lengths, fps=params.fps,
             windows_per_clip=params.windows_per_clip, val_count=params.val_count,
             val_fraction=params.val_fraction, test_count=params.test_count,
             test_fraction=params.test_fraction, on_error=opts.on_error)
    fn = functools.partial(process_clip, out=opts.out, crf_spec=crf.name if crf.kind != "table" else
                           params.crf, lengths=lengths, windows_per_clip=params.windows_per_clip,
                           bit_depth=params.bit_depth, seed=opts.seed, saturation=saturation, noise=noise,
                           png_compression=opts.png_compression)

    def finish(summary):  # under the output lock, with every shard's records
        splits: dict = {}
        for rec in summary.records.values():
            splits[rec["split"]] = splits.get(rec["split"], 0) + 1
        write_dataset_json(opts.out, command=COMMAND, params=recorded, recipe=opts.recipe,
                           counts={"pairs": len(summary.records), "clips": len(p.items), **splits},
                           extra={"skipped_clips": p.skipped, "clip_splits": dict(sorted(p.splits.items())),
                                  "png_compression": png_setting(opts)})

    summary = run_items(p.items, fn, opts, finish=finish)
    summary.failed.update(p.failed)  # a bad clip left out under --on-error skip is a failed item
    summary.out = Path(opts.out)
    summary.info = {"clips": len(p.items), "skipped_clips": dict(p.skipped),
                    "clip_splits": dict(sorted(p.splits.items()))}
    return summary


__all__ = ["Clip", "Plan", "SynthesizeParams", "assign_splits", "find_clips", "plan", "probe_clip",
           "process_clip", "run", "window_lengths"]
