"""Benchmark: how long ``lodetools sim`` takes to write the synthetic world.

The issue's target: ``sim all`` at demo size finishes in under 60 s on 2
cores. This script runs the real command (a subprocess, as a user would)
with ``--workers 2`` for the clips, then the rig and VOC parts when their
modules are installed, and prints each part's wall-clock time and the
ratio of the total to the 60 s target. It also times the clip stages in
process (render, H.264 encode, PNG frames) per frame, to show where the
time goes.

Usage::

    python benchmarks/bench_sim.py            # demo preset (the issue's size)
    python benchmarks/bench_sim.py --quick    # test preset
    python benchmarks/bench_sim.py --full     # same as the default (demo is the issue's size)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 60.0


def _cli(args, env):
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "lodetools", *args], env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if res.returncode != 0:
        print(f"  command failed ({res.returncode}): {res.stderr.strip()}")
    return dt, res.returncode


def stage_times(preset: str) -> None:
    """Per-frame cost of the clip stages, in this process (1 core)."""
    import numpy as np

    from lodetools.io.images import write_image
    from lodetools.io.video import write_video
    from lodetools.runner import item_rng
    from lodetools.sim.clips import make_clip
    from lodetools.sim.world import PRESETS

    plan = PRESETS[preset]
    n = 40
    clip = make_clip(item_rng(0, "bench"), plan.size, n, plan.fps, n_objects=3)
    t0 = time.perf_counter()
    frames = [f.display for f in clip.frames()]
    render = (time.perf_counter() - t0) / n
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        write_video(Path(d) / "a.mp4", iter(frames), plan.fps, quality=plan.video_quality)
        enc = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for i, f in enumerate(frames):
            write_image(Path(d) / f"{i:06d}.png", f)
        png = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for i, f in enumerate(frames):
            write_image(Path(d) / f"m{i:06d}.png", np.asarray(f[..., 0] > 128))
        mask = (time.perf_counter() - t0) / n
    h, w = plan.size
    print(f"per frame at {w}x{h} (3 objects, 1 core): render {render * 1e3:.1f} ms, "
          f"H.264 lossless encode {enc * 1e3:.1f} ms, PNG frame {png * 1e3:.1f} ms, mask PNG {mask * 1e3:.1f} ms")
    print(f"  encode / render = {enc / render:.2f}x, PNG frame / H.264 frame = {png / enc:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="test preset instead of demo")
    ap.add_argument("--full", action="store_true", help="the issue's size (the demo preset; default)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    preset = "test" if args.quick else "demo"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    print(f"lodetools sim at preset {preset!r}, {args.workers} workers, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    stage_times(preset)
    total = 0.0
    with tempfile.TemporaryDirectory() as d:
        out = str(Path(d) / "world")
        common = ["--out", out, "--seed", "0", "--preset", preset, "--quiet"]
        dt, _ = _cli(["sim", "clips", *common, "--workers", str(args.workers)], env)
        total += dt
        import json

        info = json.loads((Path(out) / "world.json").read_text())["parts"]["clips"]
        nfr = info["counts"]["frames"]
        print(f"sim clips: {dt:.1f} s for {info['counts']['clips']} clips, {nfr} frames "
              f"({nfr / dt:.0f} frames/s)")
        for part in ("rig", "voc"):
            if importlib.util.find_spec(f"lodetools.sim.{part}") is None:
                print(f"sim {part}: not installed (lodetools.sim.{part} missing), not timed")
                continue
            dt, _ = _cli(["sim", part, *common], env)
            total += dt
            print(f"sim {part}: {dt:.1f} s")
    print(f"total: {total:.1f} s; target {TARGET_S:.0f} s; ratio total/target = {total / TARGET_S:.2f}")


if __name__ == "__main__":
    main()
