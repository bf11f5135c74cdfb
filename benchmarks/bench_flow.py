"""Optical flow: EPE and time of every backend, side by side, in one process.

Pairs:

* the Middlebury "motorcycle" stereo pair bundled with scikit-image (741x500,
  true disparity; the flow from left to right is (-d, 0); pixels with an
  unknown (inf/NaN) disparity are left out of the EPE);
* a synthetic pair: a photograph and the same photograph warped by a known
  smooth flow (an affine camera misalignment plus a low-frequency wave, up to
  ~4 px), 1076x718 by default, 2152x1436 (ReLoBlur's image size) with ``--full``.

References compared against: pyflow (Ce Liu's C++ code; not installable here,
so its figures measured on this kind of machine are quoted from
``reference-notes.md``: motorcycle 3.31 px in 5.4 s, ~67 s at 3 MP) and, run
here side by side, OpenCV's DIS, DeepFlow and Dual TV-L1.

Times: wall clock and process CPU time (the machine is shared; CPU time is the
steadier figure). ``c2f`` is timed with its defaults (the compiled CPU engine,
numba threads on the large levels: 2 on this machine), with 1 thread, and as
the torch engine (1 thread; the code that runs on CUDA), after a warm-up call
that loads the compiled kernels. The issue's targets (2 cores): motorcycle
<= 1.0 s, 2152x1436 <= 12 s.

Usage::

    PYTHONPATH=$PWD python benchmarks/bench_flow.py            # motorcycle + 1076x718
    PYTHONPATH=$PWD python benchmarks/bench_flow.py --full     # + 2152x1436
    PYTHONPATH=$PWD python benchmarks/bench_flow.py --skip tvl1
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np

from lodetools.flow import available_methods, endpoint_error, estimate_flow
from lodetools.flow.warp import warp_image

PYFLOW_REFERENCE = {"motorcycle": {"epe": 3.31, "time": 5.4}, "2152x1436": {"time": 67.0}}


def motorcycle():
    from skimage import data

    left, right, disp = data.stereo_motorcycle()
    valid = np.isfinite(disp)
    truth = np.stack([-np.where(valid, disp, 0), np.zeros_like(disp)], -1).astype(np.float32)
    return left.astype(np.float32) / 255, right.astype(np.float32) / 255, truth, valid


def synthetic(h, w):
    """(ref, moving, truth, valid) with moving(x + truth(x)) == ref(x)."""
    from lodetools.sim.photos import linear_photo

    moving = np.clip(linear_photo("coffee", (h, w)) ** (1 / 2.2), 0, 1).astype(np.float32)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.deg2rad(0.15)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    fx = 2.0 + (np.cos(a) - 1) * (x - cx) - np.sin(a) * (y - cy) + 1.0 * np.sin(2 * np.pi * y / h)
    fy = -1.2 + np.sin(a) * (x - cx) + (np.cos(a) - 1) * (y - cy) + 0.8 * np.cos(2 * np.pi * x / w)
    truth = np.stack([fx, fy], -1).astype(np.float32)
    ref, valid = warp_image(moving, truth)
    m = 8
    inner = np.zeros((h, w), bool)
    inner[m:-m, m:-m] = True
    return ref, moving, truth, valid & inner


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def bench_pair(name, pair, methods, ref_key):
    ref, moving, truth, valid = pair
    h, w = ref.shape[:2]
    print(f"\n== {name}: {w}x{h} ==")
    print(f"{'method':<14}{'EPE px':>9}{'wall s':>9}{'cpu s':>9}   vs pyflow (quoted)")
    rows = {}
    for label, method, opts in methods:
        flow, wall, cpu = timed(lambda: estimate_flow(ref, moving, method, **opts))
        epe = endpoint_error(flow, truth, valid)
        rows[label] = (epe, wall, cpu)
        pf = PYFLOW_REFERENCE.get(ref_key, {})
        note = ""
        if "time" in pf:
            note += f"time x{pf['time'] / max(wall, 1e-9):.2f} faster (wall)"
        if "epe" in pf:
            note += f", EPE {epe / pf['epe']:.3f} of pyflow's {pf['epe']}"
        print(f"{label:<14}{epe:>9.3f}{wall:>9.2f}{cpu:>9.2f}   {note}", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="also the 2152x1436 synthetic pair")
    ap.add_argument("--only-full", action="store_true", help="only the 2152x1436 synthetic pair")
    ap.add_argument("--skip", nargs="*", default=[], help="backends to leave out")
    ap.add_argument("--no-torch", action="store_true", help="leave out the (slow) torch engine of c2f")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    # compile / load the kernels and start the thread pool outside the timings (a level of
    # 160x240 runs the parallel code)
    warm = np.random.default_rng(0).random((160, 240, 3), dtype=np.float32)
    estimate_flow(warm, np.roll(warm, 1, 1), "c2f")
    estimate_flow(warm, np.roll(warm, 1, 1), "c2f", engine="torch")
    methods = [("c2f", "c2f", {}), ("c2f (1 thr)", "c2f", {"threads": 1})]
    if not args.no_torch:
        methods.append(("c2f torch", "c2f", {"engine": "torch", "threads": 1}))
    methods += [("dis", "dis", {}), ("deepflow", "deepflow", {}), ("tvl1", "tvl1", {})]
    if "pyflow" in available_methods():
        methods.append(("pyflow", "pyflow", {}))
    methods = [m for m in methods if m[1] not in args.skip and m[0] not in args.skip]
    print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores shared)")
    if not args.only_full:
        bench_pair("motorcycle (Middlebury, skimage)", motorcycle(), methods, "motorcycle")
        bench_pair("synthetic smooth flow", synthetic(718, 1076), methods, "")
    if args.full or args.only_full:
        bench_pair("synthetic smooth flow, ReLoBlur size", synthetic(1436, 2152),
                   [m for m in methods if m[1] != "tvl1"], "2152x1436")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
