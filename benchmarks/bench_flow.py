"""c2f against the original pyflow: agreement, speed, and threads on a quiet and on a busy machine.

Prints, in one run, interleaved per pair and load condition: ``c2f`` with its
default threads (:func:`lodetools.parallel.cpu_threads`, decided per pyramid
level) and with 1 thread, then pyflow (Ce Liu's C++ code, built from its
public source), on

* the Middlebury "motorcycle" stereo pair bundled with scikit-image (741x500,
  true disparity; the flow from left to right is (-d, 0); pixels with an
  unknown disparity are left out of the end-point error, EPE);
* a synthetic pair at ReLoBlur's image size, 2152x1436: a photograph and the
  same photograph warped by a known smooth flow (an affine camera misalignment
  plus a low-frequency wave, up to ~4 px);

each "quiet" and "loaded" (two CPU-bound processes, ``while True: pass``,
competing for the cores). Columns: wall time, EPE against the truth, the gap to
pyflow's flow (mean and 95th percentile of |c2f - pyflow|, px) and pyflow's time
divided by c2f's (targets: gap <= 0.05 / 0.15 px, >= 5x quiet, >= 4x loaded).

pyflow is never installed in the project environment (the registry's
``pyflow`` is an unrelated package). Build it in a scratch folder (commands in
``tests/flow/test_pyflow_agreement.py``) and point the benchmark at it with
``--pyflow DIR`` or ``LODETOOLS_PYFLOW=DIR``; it is then run in the same
process, in the same conditions. Without it, the ratios use the pyflow times
stored in :data:`PYFLOW_STORED` (measured by this benchmark on the 2-core
development machine, with the load average printed next to them).

The load average (1 minute) is printed per condition: the machine may be
shared, so repeat a run whose quiet rows are not quiet.

Usage::

    PYTHONPATH=$PWD python benchmarks/bench_flow.py --pyflow /tmp/pyflow_src
    PYTHONPATH=$PWD python benchmarks/bench_flow.py --no-full      # motorcycle only
    PYTHONPATH=$PWD python benchmarks/bench_flow.py --backends     # + OpenCV's DIS/DeepFlow/TV-L1, quiet
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from lodetools.flow import endpoint_error, estimate_flow
from lodetools.flow.warp import warp_image

#: pyflow's wall time (s) measured by this benchmark with pyflow built from source (see the docstring),
#: used when pyflow is not importable: {pair: {condition: seconds}}
PYFLOW_STORED = {"motorcycle": {"quiet": 8.13, "loaded": 10.91},
                 "2152x1436": {"quiet": 79.81, "loaded": 157.27}}
PYFLOW_STORED_HOW = ("this benchmark with pyflow built from source (commit 8f8ab9e, g++ -O3) on the 2-core "
                     "development machine, 2026-11-30: motorcycle at load 1.4 (quiet) and 2.1 + the two "
                     "competitors; 2152x1436 at load 3.0 ('quiet', other jobs running) and 4.6 + the two "
                     "competitors")


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


def load_pyflow(path):
    """Ce Liu's pyflow module from ``path`` (a folder holding the built extension), or None."""
    import importlib
    import sys

    if not path:
        return None
    sys.path.insert(0, str(path))
    try:
        mod = importlib.import_module("pyflow")
    except ImportError:
        return None
    return mod if hasattr(mod, "coarse2fine_flow") else None


def pyflow_run(mod, ref, moving):
    """pyflow's flow with c2f's (and pyflow's demo) parameters; its progress lines (C++ stdout) hidden."""
    import sys

    a = np.ascontiguousarray(ref, np.float64)
    b = np.ascontiguousarray(moving, np.float64)
    sys.stdout.flush()
    saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    try:
        u, v, _ = mod.coarse2fine_flow(a, b, 0.012, 0.75, 20, 7, 1, 30, 0)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)
    return np.stack([u, v], -1).astype(np.float32)


class Competitors:
    """``n`` CPU-bound processes competing for the cores while the block runs."""

    def __init__(self, n):
        self.n = n
        self.procs = []

    def __enter__(self):
        import subprocess
        import sys

        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.n)]
        time.sleep(0.5 if self.n else 0)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


def bench_c2f_vs_pyflow(pairs, pf, rounds, quiet_only=False):
    import sys

    print(f"\n{'pair':<12}{'load':<8}{'run':<16}{'wall s':>8}{'EPE px':>8}{'gap mean':>10}{'gap p95':>9}"
          f"{'pyflow/c2f':>12}{'loadavg':>9}")
    summary = []
    for key, (ref, moving, truth, valid) in pairs:
        for cond, n in (("quiet", 0), ("loaded", 2))[:1 if quiet_only else 2]:
            with Competitors(n):
                if pf is not None:
                    ref_flow, t_pf, _ = timed(lambda: pyflow_run(pf, ref, moving))
                    how = "measured now"
                else:
                    ref_flow, t_pf, how = None, PYFLOW_STORED.get(key, {}).get(cond), PYFLOW_STORED_HOW
                for r in range(rounds):
                    for label, opts in (("c2f default", {}), ("c2f 1 thread", {"threads": 1})):
                        flow, wall, _ = timed(lambda: estimate_flow(ref, moving, "c2f", **opts))
                        epe = endpoint_error(flow, truth, valid)
                        gap = ""
                        if ref_flow is not None:
                            g = np.sqrt(((flow - ref_flow) ** 2).sum(-1))
                            gap = f"{g.mean():>10.3f}{np.percentile(g, 95):>9.3f}"
                        else:
                            gap = f"{'':>10}{'':>9}"
                        ratio = f"{t_pf / wall:>11.1f}x" if t_pf else f"{'n/a':>12}"
                        print(f"{key:<12}{cond:<8}{label:<16}{wall:>8.2f}{epe:>8.3f}{gap}{ratio}"
                              f"{os.getloadavg()[0]:>9.2f}", flush=True)
                        summary.append((key, cond, label, wall))
                if ref_flow is not None:
                    epe = endpoint_error(ref_flow, truth, valid)
                    print(f"{key:<12}{cond:<8}{'pyflow':<16}{t_pf:>8.2f}{epe:>8.3f}{'':>19}{'1.0x':>12}"
                          f"{os.getloadavg()[0]:>9.2f}", flush=True)
                elif t_pf:
                    print(f"{key:<12}{cond:<8}{'pyflow (stored)':<16}{t_pf:>8.2f}   ({how})", file=sys.stdout)
    # default vs 1 thread, per pair and condition (best of the rounds)
    print("\ndefault threads vs 1 thread (best of rounds; target: default <= 1.10 x 1 thread)")
    for key, _ in pairs:
        for cond in ("quiet", "loaded"):
            d = [w for k, c, lab, w in summary if (k, c, lab) == (key, cond, "c2f default")]
            o = [w for k, c, lab, w in summary if (k, c, lab) == (key, cond, "c2f 1 thread")]
            if d and o:
                print(f"  {key:<12}{cond:<8}{min(d) / min(o):.2f}")


def bench_pair(name, pair, methods):
    ref, moving, truth, valid = pair
    h, w = ref.shape[:2]
    print(f"\n== {name}: {w}x{h} ==")
    print(f"{'method':<14}{'EPE px':>9}{'wall s':>9}{'cpu s':>9}")
    for label, method, opts in methods:
        flow, wall, cpu = timed(lambda: estimate_flow(ref, moving, method, **opts))
        print(f"{label:<14}{endpoint_error(flow, truth, valid):>9.3f}{wall:>9.2f}{cpu:>9.2f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pyflow", default=os.environ.get("LODETOOLS_PYFLOW"),
                    help="folder with Ce Liu's pyflow extension built from source (default: $LODETOOLS_PYFLOW)")
    ap.add_argument("--no-full", action="store_true", help="leave out the 2152x1436 pair")
    ap.add_argument("--rounds", type=int, default=1, help="c2f runs per pair and condition")
    ap.add_argument("--quiet-only", action="store_true", help="leave out the runs with competing processes")
    ap.add_argument("--backends", action="store_true",
                    help="also OpenCV's DIS, DeepFlow and TV-L1 and the torch engine of c2f (quiet, motorcycle)")
    args = ap.parse_args()
    pf = load_pyflow(args.pyflow)
    print(f"pyflow: {'imported from ' + str(args.pyflow) if pf else 'not importable; stored times'}; "
          f"{len(os.sched_getaffinity(0))} usable cores; load average {os.getloadavg()[0]:.2f}")
    # compile / load the kernels and start the thread pool outside the timings (a level of
    # 160x240 runs the parallel code)
    warm = np.random.default_rng(0).random((160, 240, 3), dtype=np.float32)
    estimate_flow(warm, np.roll(warm, 1, 1), "c2f", threads=2)
    pairs = [("motorcycle", motorcycle())]
    if not args.no_full:
        pairs.append(("2152x1436", synthetic(1436, 2152)))
    bench_c2f_vs_pyflow(pairs, pf, args.rounds, args.quiet_only)
    if args.backends:
        methods = [("c2f torch", "c2f", {"engine": "torch", "threads": 1}), ("dis", "dis", {}),
                   ("deepflow", "deepflow", {}), ("tvl1", "tvl1", {})]
        bench_pair("motorcycle (Middlebury, skimage)", pairs[0][1], methods)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
