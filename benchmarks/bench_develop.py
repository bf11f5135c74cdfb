"""Speed of ``lodetools develop`` per pair, split by stage (issue 5 benchmark).

Writes a one-scene synthetic rig (reference, whiteboard and one capture),
calibrates both cameras, then times one blur/sharp pair through every stage:
read (rawpy), correction (Eqs. 3-5), beta (registration + static-region
Eq. 6 + Eq. 7), demosaic (Menon 2007), colour (white balance, matrix,
gamma), write (two 8-bit PNGs). Menon with and without its refining step
are run side by side, and the per-pair total is compared with the issue's
target of 4 s per pair at 2152x1436 on 2 cores (the two images of a pair
are independent, so with ``--workers 2`` two demosaics run at once; the
"2-core" figure is the wall time when both images' ISP run in parallel).

Usage::

    PYTHONPATH=. python benchmarks/bench_develop.py          # 1076x718 (quarter area)
    PYTHONPATH=. python benchmarks/bench_develop.py --full   # 2152x1436 (ReLoBlur's size)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

TARGET_S = 4.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="2152x1436 frames (default 1076x718)")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    import cv2

    from lodetools.color.correction import cast_image, correct_bayer, fit_cast
    from lodetools.color.isp import apply_matrix, demosaic, encode_gamma, render
    from lodetools.color.photometric import apply_beta, estimate_beta, quad_channels, register_quads
    from lodetools.io.layout import write_pair
    from lodetools.io.raw import read_raw, read_rig_config
    from lodetools.sim.rig import write_rig

    h, w = (1436, 2152) if args.full else (718, 1076)
    tmp = Path(tempfile.mkdtemp(prefix="bench_develop_"))
    t0 = time.perf_counter()
    write_rig(tmp / "raw", seed=0, preset="test", size=(h, w), scenes=1, captures=1, subframes=8)
    print(f"rig {w}x{h} written in {time.perf_counter() - t0:.1f} s (not part of the figures)")
    rig = read_rig_config(tmp / "raw")
    fits = {c: (lambda f: fit_cast(f.bayer, f.pattern))(read_raw(tmp / "raw" / f"lightbox_{c}.dng", rig))
            for c in ("blur", "sharp")}
    scene = tmp / "raw" / "scene01"
    rb, rs = read_raw(scene / "reference_blur.dng", rig), read_raw(scene / "reference_sharp.dng", rig)
    warp = register_quads(quad_channels(correct_bayer(rb.bayer, fits["blur"]), rb.pattern),
                          quad_channels(correct_bayer(rs.bayer, fits["sharp"]), rs.pattern))
    wb = np.array([1.9, 1.0, 1.3])

    demosaic(np.zeros((8, 8), np.float32), rb.pattern)  # warm-up: imports colour-science outside the timing
    casts = {c: cast_image(fits[c], (h, w), rb.pattern) for c in ("blur", "sharp")}  # once per scene

    wall = {k: [] for k in ("read", "correction", "beta", "demosaic", "colour", "write")}
    cpu = {k: [] for k in wall}

    def timed(stage, fn):
        t, c = time.perf_counter(), time.process_time()
        res = fn()
        wall[stage].append(time.perf_counter() - t)
        cpu[stage].append(time.process_time() - c)
        return res

    menon_plain, both_parallel = [], []
    for _ in range(args.repeat):
        b, s = timed("read", lambda: (read_raw(scene / "0001_blur.dng", rig), read_raw(scene / "0001_sharp.dng", rig)))
        cb, cs = timed("correction", lambda: (correct_bayer(b.bayer, fits["blur"], cast=casts["blur"]),
                                              correct_bayer(s.bayer, fits["sharp"], cast=casts["sharp"])))

        def beta_stage():
            beta, _ = estimate_beta(cb, cs, b.pattern, warp=warp, saturated=b.saturated | s.saturated)
            return apply_beta(cb, beta, b.pattern)

        cb = timed("beta", beta_stage)
        rgb = timed("demosaic", lambda: [demosaic(x, b.pattern) for x in (cb, cs)])
        m = s.camera_to_srgb @ np.diag(wb)
        out = timed("colour", lambda: [encode_gamma(apply_matrix(x, m)) for x in rgb])
        timed("write", lambda: write_pair(tmp / "out", "test", "scene01", "0001", {"blur": out[0], "sharp": out[1]}))
        t, c = time.perf_counter(), time.process_time()
        for x in (cb, cs):
            demosaic(x, b.pattern, refining_step=False)
        menon_plain.append((time.perf_counter() - t, time.process_time() - c))
        cv2.setNumThreads(1)
        t = time.perf_counter()
        with ThreadPoolExecutor(2) as ex:  # the two images of a pair on the 2 cores
            list(ex.map(lambda x: render(x, b.pattern, wb_gains=wb, camera_to_srgb=s.camera_to_srgb), (cb, cs)))
        both_parallel.append(time.perf_counter() - t)
        cv2.setNumThreads(-1)

    mw = {k: float(np.median(v)) for k, v in wall.items()}
    mc = {k: float(np.median(v)) for k, v in cpu.items()}
    tw, tc = sum(mw.values()), sum(mc.values())
    print(f"\nper pair at {w}x{h} (median of {args.repeat}; Menon with refining step, float32, 1 process)")
    print("  (wall time depends on the machine's load; CPU time is the process's own)")
    print(f"  {'stage':<11s} {'wall s':>8s} {'cpu s':>8s}")
    for k in mw:
        print(f"  {k:<11s} {mw[k]:8.3f} {mc[k]:8.3f}  ({100 * mc[k] / tc:4.1f} % of cpu)")
    print(f"  {'total':<11s} {tw:8.3f} {tc:8.3f}  ratio to the 4 s target: wall {tw / TARGET_S:.2f}, "
          f"cpu {tc / TARGET_S:.2f}")
    pw, pc = (float(np.median([v[i] for v in menon_plain])) for i in (0, 1))
    print(f"\nMenon demosaic of the pair: with refining step {mw['demosaic']:.3f} s wall / {mc['demosaic']:.3f} s cpu, "
          f"without {pw:.3f} s / {pc:.3f} s (ratio {mc['demosaic'] / max(pc, 1e-9):.2f} cpu)")
    par = float(np.median(both_parallel))
    tw2 = tw - mw["demosaic"] - mw["colour"] + par
    print(f"2 cores, the pair's two ISP runs in parallel threads: ISP {par:.3f} s wall, pair total {tw2:.3f} s wall, "
          f"ratio to target {tw2 / TARGET_S:.2f}")
    if not args.full:
        print(f"(2152x1436 has 4x the pixels: expect about {4 * tc:.1f} s cpu per pair; run --full to measure)")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
