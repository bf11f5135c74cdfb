"""Speed of LBFMG masks (``lodetools masks``): masks per second.

Figures (each printed with its ratio against what it is compared with, both run
here side by side):

1. ``scene_masks`` (ReLoBlur Algorithm 1 per target: two MOG2 models fed the
   static pair ``init_frames`` times and the scene's other pairs, target at
   rate 0, combine, erode, dilate) against the bare OpenCV cost of the same
   MOG2 ``apply`` calls (the reference: what any LBFMG implementation must
   spend); the ratio is our overhead.
2. The same with OpenCV on 1 thread against 2 threads.
3. The whole pipeline (``run_masks``: PNG decode, masks, PNG encode, manifest,
   statistics) with ``--workers 1`` against ``--workers 2`` (one scene per worker).

Parameters: the recipe's (``lodetools/recipes/reloblur.toml`` [masks]). Default size
1076x718 (half of ReLoBlur's); ``--full`` uses ReLoBlur's 2152x1436.

    PYTHONPATH=$PWD python benchmarks/bench_masks.py [--full] [--pairs 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from lodetools.masks.lbfmg import LBFMGParams, scene_masks, to_uint8  # noqa: E402
from lodetools.pipelines.masks import MasksParams, run as run_masks  # noqa: E402
from lodetools.recipe import load_recipe  # noqa: E402
from lodetools.runner import RunOptions  # noqa: E402
from masks_world import make_scene, write_dataset  # noqa: E402


def _bare_mog2(pairs, static, p: LBFMGParams) -> None:
    """The reference: the MOG2 apply calls of Algorithm 1 and nothing else."""
    for t in range(len(pairs)):
        for k in (0, 1):
            m = cv2.createBackgroundSubtractorMOG2(p.history, p.var_threshold, p.detect_shadows)
            for _ in range(p.init_frames):
                m.apply(static[k])
            for i, q in enumerate(pairs):
                if i != t:
                    m.apply(q[k])
            m.apply(pairs[t][k], learningRate=0)


def _time(fns, repeat):
    """Best time of each function, run interleaved (the machine's load hits both alike)."""
    best = [np.inf] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="ReLoBlur size 2152x1436")
    ap.add_argument("--pairs", type=int, default=5, help="pairs per scene (besides the static pair)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    shape = (1436, 2152) if args.full else (718, 1076)
    p = LBFMGParams.from_dict(load_recipe("reloblur", "masks")[1])
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    sc = make_scene(rng, shape, n_pairs=args.pairs, subframes=7)
    print(f"scene {shape[1]}x{shape[0]}, {args.pairs} pairs + static (rendered in {time.perf_counter() - t0:.1f} s)")
    pairs = [(to_uint8(s), to_uint8(b)) for s, b in sc["pairs"]]
    static = (to_uint8(sc["static"][0]), to_uint8(sc["static"][1]))
    n = len(pairs)

    cv2.setNumThreads(2)
    ours, ref = _time([lambda: scene_masks(pairs, static, p), lambda: _bare_mog2(pairs, static, p)], args.repeat)
    print(f"[1] scene_masks, 2 threads: {n / ours:.2f} masks/s; bare MOG2 applies: {n / ref:.2f} masks/s; "
          f"ratio (ours/bare speed) {ref / ours:.2f}")
    def single():
        cv2.setNumThreads(1)
        scene_masks(pairs, static, p)
        cv2.setNumThreads(2)

    one, ours = _time([single, lambda: scene_masks(pairs, static, p)], args.repeat)
    print(f"[2] scene_masks, 1 thread: {n / one:.2f} masks/s; 2 threads: {n / ours:.2f} masks/s; "
          f"speed-up {one / ours:.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "ds"
        write_dataset(data, [sc, sc])
        rates = {}
        for w in (1, 2):
            out = Path(tmp) / f"out{w}"
            t0 = time.perf_counter()
            run_masks(data, MasksParams(lbfmg=p), RunOptions(out=out, workers=w, quiet=True))
            rates[w] = 2 * n / (time.perf_counter() - t0)
        print(f"[3] pipeline (PNG I/O, 2 scenes): --workers 1 {rates[1]:.2f} masks/s; --workers 2 "
              f"{rates[2]:.2f} masks/s; ratio {rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
