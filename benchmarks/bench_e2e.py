"""End to end: every command at the papers' sizes against what a user would write by hand.

Each ``bench_<command>(size, tmp) -> rows`` runs the lodetools command end to
end (its pipeline ``run`` in this process, as the CLI does: planning, the work
runner, atomic writes, manifest, ``dataset.json``) and its hand-written
comparison (the bare library calls for the same work, writing the same files),
interleaved, three rounds each; a row holds the medians and the 1-minute load
average during the rounds. The machine is shared: read the ratio (ours /
comparison, below 1 is faster) with the load beside it.

Comparisons:

- ``synthesize``: the 25-line cv2 script (``cv2.VideoCapture``, a 256-entry LUT
  for ``g^-1``, float32 mean, ``** (1 / 2.2)``, two ``cv2.imwrite`` at OpenCV's
  default PNG settings), on a 1080p 250 fps H.264 clip, M = 11, windows back to
  back (12 pairs), ``--workers 1``.
- ``develop``: ``rawpy`` read + Menon demosaic (colour-demosaicing, float32)
  + white balance and gamma + two ``cv2.imwrite`` per pair.
- ``align``: the same development + ``estimate_flow`` (c2f) on the reference
  pair + ``cv2.remap`` of every blur image + the ``cv2.imwrite`` calls.
- ``lbs``: the PNG encoding of its three images per sample at OpenCV's default
  level plus its compositing (``synthesize_lbs``), per sample.

Usage::

    python benchmarks/bench_e2e.py                       # every command
    python benchmarks/bench_e2e.py synthesize lbs        # some
    python benchmarks/bench_e2e.py --workers 2 synthesize   # the --workers scaling rows too
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROUNDS = 3


def load1() -> float:
    return os.getloadavg()[0]


def interleaved(ours, theirs, rounds: int = ROUNDS, setup=None):
    """Run ``ours()`` and ``theirs()`` alternately; medians of the wall times and the mean load."""
    t_ours, t_theirs, loads = [], [], []
    for _ in range(rounds):
        for fn, acc in ((ours, t_ours), (theirs, t_theirs)):
            if setup is not None:
                setup()
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
            loads.append(load1())
    return statistics.median(t_ours), statistics.median(t_theirs), float(np.mean(loads))


def row(command, size, ours, theirs, load, per="run", note=""):
    return {"command": command, "size": size, "ours": ours, "theirs": theirs, "ratio": ours / theirs,
            "load": load, "per": per, "note": note}


# --------------------------------------------------------------------------- synthesize

def make_clip(path: Path, size, n_frames: int) -> Path:
    """A 250 fps H.264 clip (yuv420p, as cameras record) of a panning photograph and a moving patch."""
    if not path.exists():
        from bench_synthesize import make_video

        make_video(path, size, n_frames)
    return path


def handwritten_synthesize(video: Path, out: Path, m: int = 11, gamma: float = 2.2) -> int:
    """What a user writes by hand: back-to-back windows of M frames, blurred = mean in linear light."""
    import cv2

    (out / "blur").mkdir(parents=True, exist_ok=True)
    (out / "sharp").mkdir(parents=True, exist_ok=True)
    lut = ((np.arange(256) / 255.0) ** gamma).astype(np.float32)
    cap = cv2.VideoCapture(str(video))
    frames, n = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
        if len(frames) == m:
            acc = np.zeros(frame.shape, np.float32)
            for f in frames:
                acc += cv2.LUT(f, lut)
            acc /= m
            blur = (acc ** (1 / gamma) * 255 + 0.5).astype(np.uint8)
            cv2.imwrite(str(out / "blur" / f"{n:06d}.png"), blur)
            cv2.imwrite(str(out / "sharp" / f"{n:06d}.png"), frames[m // 2])
            frames, n = [], n + 1
    cap.release()
    return n


def lodetools_synthesize(video: Path, out: Path, m: int = 11, workers: int = 1, png_compression=None):
    from lodetools.pipelines.synthesize import SynthesizeParams, run
    from lodetools.runner import RunOptions

    return run([video], SynthesizeParams(m=m, windows_per_clip=0),
               RunOptions(out=out, workers=workers, quiet=True, overwrite=True,
                          png_compression=png_compression))


def bench_synthesize(size, tmp: Path, workers=(1,)) -> list:
    h, w = size
    video = make_clip(Path(tempfile.gettempdir()) / f"lodetools_e2e_{w}x{h}.mp4", size, 140)
    second = None
    if any(k > 1 for k in workers):  # two clips, so that two worker processes have an item each
        second = tmp / "clips2"
        second.mkdir(exist_ok=True)
        for name in ("a.mp4", "b.mp4"):
            if not (second / name).exists():
                os.symlink(video, second / name)
    lodetools_synthesize(video, tmp / "warm", 11)  # numba kernel loaded from its cache, imports done
    n = handwritten_synthesize(video, tmp / "warm_hand")
    rows = []

    def clean():
        for d in ("ours", "hand"):
            shutil.rmtree(tmp / d, ignore_errors=True)

    ours, theirs, load = interleaved(lambda: lodetools_synthesize(video, tmp / "ours"),
                                     lambda: handwritten_synthesize(video, tmp / "hand"), setup=clean)
    rows.append(row("synthesize", f"{w}x{h} M=11", ours, theirs, load, per=f"{n} pairs",
                    note="--workers 1, --png-compression fast"))
    o3, _, load3 = interleaved(lambda: lodetools_synthesize(video, tmp / "ours", png_compression=3),
                               lambda: None, setup=clean)
    rows.append(row("synthesize", f"{w}x{h} M=11", o3, theirs, load3, per=f"{n} pairs",
                    note="--png-compression 3 (the former default)"))
    for k in workers:
        if k == 1:
            continue

        def both(k):
            return lambda: lodetools_synthesize(second, tmp / "ours", workers=k)

        t1, tk, loadk = interleaved(both(1), both(k), setup=clean)
        rows.append(row("synthesize", f"{w}x{h} M=11 x2 clips", tk, t1, loadk, per=f"{2 * n} pairs",
                        note=f"--workers {k} vs --workers 1 (comparison column)"))
    return rows


# --------------------------------------------------------------------------- develop / align

def make_rig(tmp: Path, size) -> Path:
    """A one-scene synthetic rig (reference, whiteboard, one capture) with both cameras calibrated."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from _rig import calibrated_rig

    return calibrated_rig(tmp / "rig", size=size, scenes=1, captures=1)


def _bare_develop(raw: Path, out: Path, *, flow: bool = False) -> None:
    """The bare library calls: rawpy, Menon (colour-demosaicing, float32), white balance, gamma,
    cv2.imwrite per image; with ``flow``: c2f on the reference pair and cv2.remap of every blur image."""
    import cv2
    import rawpy
    from colour.utilities import set_default_float_dtype
    from colour_demosaicing import demosaicing_CFA_Bayer_Menon2007

    from lodetools.flow import estimate_flow

    out.mkdir(parents=True, exist_ok=True)
    scene = raw / "scene01"
    pairs = [("reference", scene / "reference_blur.dng", scene / "reference_sharp.dng")]
    pairs += [(p.name[:-9], p, p.with_name(p.name.replace("_blur", "_sharp")))
              for p in sorted(scene.glob("*_blur.dng")) if not p.name.startswith(("reference", "whiteboard"))]
    set_default_float_dtype(np.float32)
    flow_field = None
    for pid, fb, fs in pairs:
        imgs = []
        for f in (fb, fs):
            with rawpy.imread(str(f)) as r:
                bayer = r.raw_image_visible.astype(np.float32) / float(r.white_level)
            rgb = demosaicing_CFA_Bayer_Menon2007(bayer, "RGGB") * np.float32([1.9, 1.0, 1.3])
            imgs.append(np.clip(rgb, 0, 1) ** np.float32(1 / 2.2))
        if flow and flow_field is None:
            flow_field = estimate_flow(imgs[1], imgs[0], "c2f")
        if flow:
            h, w = flow_field.shape[:2]
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            imgs[0] = cv2.remap(imgs[0], gx + flow_field[..., 0], gy + flow_field[..., 1], cv2.INTER_CUBIC)
        for role, img in zip(("blur", "sharp"), imgs):
            cv2.imwrite(str(out / f"{pid}_{role}.png"), (img[..., ::-1] * 255 + 0.5).astype(np.uint8))
    set_default_float_dtype(np.float64)


def _lodetools_raw(command: str, rig: Path, out: Path) -> None:
    from lodetools.pipelines.develop import DevelopParams, RawInputs
    from lodetools.runner import RunOptions

    inputs = RawInputs(rig / "raw", rig / "cal" / "blur.toml", rig / "cal" / "sharp.toml")
    opts = RunOptions(out=out, quiet=True, overwrite=True)
    if command == "develop":
        from lodetools.pipelines.develop import run

        run(inputs, DevelopParams(), opts)
    else:
        from lodetools.pipelines.align import AlignParams, run

        run(inputs, AlignParams(), opts)


def _bench_raw(command: str, size, tmp: Path) -> list:
    rig = make_rig(tmp, size)
    h, w = size
    _lodetools_raw(command, rig, tmp / "warm")  # imports, numba caches
    _bare_develop(rig / "raw", tmp / "warm_bare", flow=command == "align")
    ours, theirs, load = interleaved(lambda: _lodetools_raw(command, rig, tmp / "ours"),
                                     lambda: _bare_develop(rig / "raw", tmp / "bare", flow=command == "align"))
    return [row(command, f"{w}x{h}", ours / 2, theirs / 2, load, per="pair (reference + 1 capture)",
                note="whiteboard, registration, QA included in lodetools")]


def bench_develop(size, tmp: Path) -> list:
    return _bench_raw("develop", size, tmp)


def bench_align(size, tmp: Path) -> list:
    return _bench_raw("align", size, tmp)


# --------------------------------------------------------------------------- lbs

def bench_lbs(size, tmp: Path, count: int = 6) -> list:
    """lbs run vs its compositing (synthesize_lbs on the same draws) + cv2.imwrite of its three images."""
    import cv2

    from lodetools.color.crf import parse_crf
    from lodetools.io.images import write_image
    from lodetools.pipelines.lbs import LbsInputs, LbsParams, run
    from lodetools.runner import RunOptions, item_rng
    from lodetools.sim.photos import linear_photo
    from lodetools.sim.voc import write_voc
    from lodetools.synth.lbs import LBSParams, linear_cutout, local_blur_sample
    from lodetools.io.voc import index_instances, load_cutout
    from lodetools.pipelines.lbs import PAD

    h, w = size
    crf = parse_crf("gamma:2.2")
    write_voc(tmp / "voc", seed=0, preset="demo", n_images=8, size=(375, 500))
    (tmp / "bg").mkdir()
    write_image(tmp / "bg" / "bg.png", crf.to_display(linear_photo("coffee", size)))
    params = LbsParams(count=count)
    refs = index_instances(tmp / "voc", min_area=1000)

    def ours():
        run(LbsInputs(voc=tmp / "voc", backgrounds=tmp / "bg"), params,
            RunOptions(out=tmp / "ours", quiet=True, overwrite=True))

    def bare():
        from lodetools.io.images import read_image

        out = tmp / "bare"
        out.mkdir(exist_ok=True)
        for i in range(count):
            rng = item_rng(0, f"train/lbs/{i:06d}")
            rng.integers(1)
            bg = read_image(tmp / "bg" / "bg.png")
            picks = rng.choice(len(refs), size=3)
            cuts = [linear_cutout(*(lambda c: (c.rgb, c.alpha))(load_cutout(tmp / "voc", refs[j], pad=PAD)), crf,
                                  scale=params.synthesis.object_scale) for j in picks]
            s = local_blur_sample(rng, crf.to_linear(bg), cuts[:2], cuts[2:], params=LBSParams(), crf=crf)
            for role, img in (("blur", s.blur), ("sharp", s.sharp), ("mask", s.mask)):
                a = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8) if img.dtype != bool else \
                    img.astype(np.uint8) * 255
                cv2.imwrite(str(out / f"{i}_{role}.png"), a[..., ::-1] if a.ndim == 3 else a)

    ours()
    bare()
    t_ours, t_bare, load = interleaved(ours, bare)
    return [row("lbs", f"{w}x{h}", t_ours / count, t_bare / count, load, per="sample",
                note="comparison: its compositing + 3 cv2.imwrite")]


# --------------------------------------------------------------------------- main

BENCHES = {
    "synthesize": (bench_synthesize, (1080, 1920)),
    "develop": (bench_develop, (1436, 2152)),
    "align": (bench_align, (1436, 2152)),
    "lbs": (bench_lbs, (720, 1280)),
}


def print_table(rows, file=sys.stdout):
    print(f"{'command':<11} {'size':<22} {'lodetools':>10} {'comparison':>11} {'ratio':>6} {'load':>5}  per / note",
          file=file)
    for r in rows:
        print(f"{r['command']:<11} {r['size']:<22} {r['ours']:>9.2f}s {r['theirs']:>10.2f}s {r['ratio']:>6.2f} "
              f"{r['load']:>5.1f}  {r['per']}; {r['note']}", file=file)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("commands", nargs="*", help=f"some of {', '.join(BENCHES)} (default: all)")
    ap.add_argument("--workers", type=int, default=1, help="also time synthesize with this many workers")
    args = ap.parse_args(argv)
    names = args.commands or list(BENCHES)
    rows = []
    with tempfile.TemporaryDirectory(prefix="lodetools_e2e_") as d:
        for name in names:
            fn, size = BENCHES[name]
            tmp = Path(d) / name
            tmp.mkdir()
            kw = {"workers": (1, args.workers)} if name == "synthesize" and args.workers > 1 else {}
            rows += fn(size, tmp, **kw)
            print_table(rows[-1:])
    print()
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; median of {ROUNDS} interleaved rounds")
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
