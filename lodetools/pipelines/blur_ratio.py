"""The ``stats blur-ratio`` pipeline: blurred-area ratio curves per dataset (LODE Figure 3).

One work item per source video: pick a random run of consecutive frames
spanning about 1/120 s (:func:`lodetools.masks.ratio.frames_for_fps`), compute
DeepFlow between its first and last frame, and record the ratio curve in the
manifest. The curves are then averaged per dataset into ``blur_ratio.csv``
(one column per dataset) and drawn in ``blur_ratio.png``; per-clip curves go
to ``blur_ratio_clips.csv``.

A dataset is a folder of videos/frame folders (``--videos``) or a paired
dataset written by ``synthesize`` (``--pairs``): for each pair, the frames
starting at its sharp (middle) frame are re-read from the source video named
in its provenance. Pairs without a reachable source video are skipped and
reported (a blurred/sharp pair alone does not hold the motion between frames).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lodetools.errors import BadConfig, BadInput, MissingInput
from lodetools.io.atomic import atomic_write_bytes, atomic_write_text
from lodetools.io.layout import read_pairs
from lodetools.io.paths import safe_name
from lodetools.io.video import count_frames, iter_frames, probe_video
from lodetools.masks.ratio import THRESHOLDS, frames_for_fps, ratio_curve
from lodetools.pipelines.synthesize import find_clips
from lodetools.io.manifest import write_dataset_json
from lodetools.runner import RunOptions, RunSummary, WorkItem, check_output, recorded_parameters, run_items


@dataclass(frozen=True)
class Source:
    """One video to measure: dataset label, path, and where to start (None: random)."""

    dataset: str
    name: str
    path: Path
    start: int | None = None
    fps: float | None = None


def collect_sources(videos=(), pairs=(), labels=(), fps: float | None = None, layout: str | None = None
                    ) -> tuple[list[str], list[Source], dict[str, str]]:
    """The datasets' labels, the videos to measure, and skipped pairs (key -> reason).

    Labels name the datasets in order: every ``--videos`` folder, then every
    ``--pairs`` folder; by default a folder's name. ``layout`` forces the
    layout the ``pairs`` datasets are read with (:func:`lodetools.io.layout.read_pairs`);
    pairs without a source video in their provenance are skipped.

    Raises
    ------
    BadConfig
        No dataset, a wrong number of labels, or a repeated label.
    """
    datasets = [("videos", Path(v)) for v in videos] + [("pairs", Path(p)) for p in pairs]
    if not datasets:
        raise BadConfig("give at least one --videos DIR or --pairs DIR")
    if labels and len(labels) != len(datasets):
        raise BadConfig(f"{len(labels)} --label values for {len(datasets)} datasets "
                        "(labels follow the --videos folders, then the --pairs folders)")
    names = list(labels) if labels else [p.resolve().name or str(p) for _, p in datasets]
    if len(set(names)) != len(names):
        raise BadConfig(f"dataset labels must differ: {', '.join(names)} (use --label)")
    sources, skipped = [], {}
    for (kind, path), label in zip(datasets, names):
        if kind == "videos":
            for name, p in find_clips([path]):
                sources.append(Source(label, name, p, None, fps))
            continue
        for pair in read_pairs(path, layout=layout):
            prov = pair.record.get("provenance") or {}
            src, mid = prov.get("source"), prov.get("middle")
            if not src or mid is None or not Path(src).exists():
                skipped[f"{label}/{pair.key}"] = "no source video in its provenance" if not src or mid is None \
                    else f"source video not found: {src}"
                continue
            sources.append(Source(label, pair.key, Path(src), int(mid), fps or prov.get("fps")))
    if not sources:
        raise MissingInput("no video to measure", ", ".join(str(p) for _, p in datasets))
    return names, sources, skipped


def measure(item: WorkItem, rng: np.random.Generator, *, n_frames: int | None) -> dict:
    """Ratio curve of one video (a runner item function)."""
    src: Source = item.payload
    fps = src.fps
    if fps is None:
        fps = probe_video(src.path).fps
    k = n_frames or frames_for_fps(fps)
    if src.start is None:
        total = count_frames(src.path)
        if total < k:
            raise BadInput(f"video has {total} frames, fewer than the {k} needed", src.path)
        start = int(rng.integers(0, total - k + 1))
    else:
        start = src.start
    run = []
    with contextlib.closing(iter_frames(src.path, check_length=False)) as frames:
        for i, f in enumerate(frames):
            if i >= start:
                run.append(np.array(f))
            if len(run) == k:
                break
    if len(run) < k:
        raise BadInput(f"video ended before frames {start}..{start + k - 1}", src.path)
    curve = ratio_curve(run)
    return {"key": item.key, "dataset": src.dataset, "clip": src.name, "source": str(src.path),
            "fps": fps, "frames": [start, start + k - 1], "curve": [float(v) for v in curve]}


def mean_curves(records, labels) -> dict[str, np.ndarray]:
    """Average per-clip curves per dataset label (labels without records are left out)."""
    acc: dict[str, list] = {}
    for rec in records:
        acc.setdefault(rec["dataset"], []).append(rec["curve"])
    return {lab: np.mean(acc[lab], axis=0) for lab in labels if lab in acc}


def write_outputs(out: Path, curves: dict, records, counts: dict) -> None:
    """``blur_ratio.csv``, ``blur_ratio_clips.csv`` and ``blur_ratio.png`` (atomic writes)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["threshold"] + list(curves))
    for i, t in enumerate(THRESHOLDS):
        w.writerow([f"{t:.1f}"] + [f"{curves[k][i]:.6f}" for k in curves])
    atomic_write_text(out / "blur_ratio.csv", buf.getvalue())
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["dataset", "clip", "source", "first_frame", "last_frame"] + [f"{t:.1f}" for t in THRESHOLDS])
    for rec in records:
        w.writerow([rec["dataset"], rec["clip"], rec["source"], *rec["frames"]]
                   + [f"{v:.6f}" for v in rec["curve"]])
    atomic_write_text(out / "blur_ratio_clips.csv", buf.getvalue())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for lab, c in curves.items():
        ax.plot(THRESHOLDS, c, marker=".", label=f"{lab} ({counts.get(lab, 0)} clips)")
    ax.set_xlabel("optical flow threshold (pixels)")
    ax.set_ylabel("blurred area ratio")
    ax.set_xlim(0, 5)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Blurred area ratio (LODE Fig. 3 protocol, DeepFlow)")
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    atomic_write_bytes(out / "blur_ratio.png", png.getvalue())


COMMAND = "stats blur-ratio"


@dataclass(frozen=True)
class BlurRatioInputs:
    """The datasets to measure.

    Attributes
    ----------
    videos : tuple of pathlib.Path
        Datasets given as folders of videos and/or frame folders.
    pairs : tuple of pathlib.Path
        Datasets written by ``synthesize``: frames are re-read from each
        pair's source video, starting at its sharp frame.
    """

    videos: tuple[Path, ...] = ()
    pairs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class BlurRatioParams:
    """How the blurred-area ratio is measured (LODE section 5.1, Figure 3).

    Attributes
    ----------
    label : tuple of str
        Dataset names for the plot, in order: the ``videos`` datasets, then
        the ``pairs`` datasets (empty: folder names).
    fps : float, optional
        Frame rate of every input (None: the container's, or the pairs'
        provenance).
    frames : int, optional
        Consecutive frames per measurement, flow from the first to the last
        (None: from the frame rate so the run spans about 1/120 s, LODE
        section 5.1: 2 at 120 fps, 3 at 240/250 fps).
    layout : str, optional
        Force the layout of the ``pairs`` datasets, ``"NAME"`` or
        ``"NAME:VARIANT"`` (see :mod:`lodetools.io.datasets`; detected when None).
    """

    label: tuple[str, ...] = ()
    fps: float | None = None
    frames: int | None = None
    layout: str | None = None


def run(inputs: BlurRatioInputs, params: BlurRatioParams, opts: RunOptions) -> RunSummary:
    """Measure every video, write the curves, ``dataset.json`` and the plot into ``opts.out``.

    Returns
    -------
    RunSummary
        ``info``: ``curves`` (label -> mean ratio per threshold of
        :data:`~lodetools.masks.ratio.THRESHOLDS`) and ``skipped_pairs``
        (key -> why).

    Raises
    ------
    BadConfig
        No dataset, bad ``frames`` or labels.
    OutputConflict
        ``opts.out`` holds a run with other parameters (without ``overwrite``).
    """
    recorded = recorded_parameters(params, opts, videos=inputs.videos, pairs=inputs.pairs)
    check_output(opts.out, COMMAND, recorded, overwrite=opts.overwrite)
    k = params.frames
    if k is not None and k < 2:
        raise BadConfig(f"--frames {k}: need at least 2")
    labels, sources, skipped = collect_sources(inputs.videos, inputs.pairs, params.label, params.fps,
                                               layout=params.layout)
    items = [WorkItem(f"{safe_name(s.dataset, what='label')}/{s.name}", s) for s in sources]
    curves: dict = {}

    def finish(summary):  # under the output lock, with every shard's records
        records = list(summary.records.values())
        curves.update(mean_curves(records, labels))
        counts = {lab: sum(r["dataset"] == lab for r in records) for lab in labels}
        if curves:
            write_outputs(Path(opts.out), curves, records, counts)
        write_dataset_json(opts.out, command=COMMAND, params=recorded, recipe=opts.recipe,
                           counts={"videos": len(summary.records), **{lab: counts[lab] for lab in curves}},
                           extra={"skipped_pairs": skipped})

    summary = run_items(items, functools.partial(measure, n_frames=k), opts, finish=finish)
    summary.out = Path(opts.out)
    summary.info = {"curves": curves, "skipped_pairs": skipped}
    return summary
