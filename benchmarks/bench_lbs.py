"""Local Blur Synthesis speed: samples per second, per-stage split, against a plain float64 version.

Builds a mini VOC at real VOC image size (500x375) and a sharp background,
then times, in one process:

- ``ours``: :func:`lodetools.synth.lbs.local_blur_sample` (float32, each object
  warped only into its box, frames averaged only where the moving objects reach);
- ``reference``: the straightforward implementation of the same compositing:
  every frame rendered on the whole canvas in float64 (full-canvas warps of
  every static and moving object, alpha compositing, mean, CRF);

with the same cut-outs and random draws, and checks that both agree. Then the
whole per-sample pipeline (read background, load VOC cut-outs, synthesise,
write blur/sharp/mask PNGs) is timed per stage.

Usage::

    PYTHONPATH=$PWD python benchmarks/bench_lbs.py            # 640x360, 6 samples
    PYTHONPATH=$PWD python benchmarks/bench_lbs.py --full     # 1280x720 (REDS size), 10 samples
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from lodetools.color.crf import CRF
from lodetools.io.images import read_image, write_image
from lodetools.io.layout import write_pair
from lodetools.io.voc import index_instances, load_cutout
from lodetools.pipelines.lbs import PAD, instance_shapes
from lodetools.sim.photos import linear_photo
from lodetools.sim.voc import write_voc
from lodetools.synth.lbs import (
    LBSParams, linear_cutout, local_blur_sample, odd_frame_count, random_position, random_trajectory,
)


def reference_sample(rng, background, moving, static, params, crf):
    """The plain version: whole-canvas float64 warps and compositing of every frame."""
    H, W = background.shape[:2]
    L = odd_frame_count(rng, params.frames_min, params.frames_max)
    static_poses = [random_position(rng, c.alpha.shape, (H, W)) for c in static]
    starts = [random_position(rng, c.alpha.shape, (H, W)) for c in moving]
    trajs = [random_trajectory(rng, s, c.alpha.shape, L, params) for s, c in zip(starts, moving)]

    def layer(c, M):
        pm = cv2.warpAffine((c.rgb * c.alpha[:, :, None]).astype(np.float64), M, (W, H), flags=cv2.INTER_LINEAR)
        a = np.clip(cv2.warpAffine(c.alpha.astype(np.float64), M, (W, H), flags=cv2.INTER_LINEAR), 0, 1)
        return pm, a

    acc = np.zeros((H, W, 3))
    mask = np.zeros((H, W), bool)
    sharp = None
    for t in range(L):
        frame = background.astype(np.float64)
        for c, M in zip(static, static_poses):
            pm, a = layer(c, M)
            frame = frame * (1 - a[:, :, None]) + pm
        for c, tr in zip(moving, trajs):
            pm, a = layer(c, tr[t])
            frame = frame * (1 - a[:, :, None]) + pm
            mask |= a > params.footprint_threshold
        acc += frame
        if t == L // 2:
            sharp = frame
    blur = np.clip(acc / L, 0, 1) ** (1 / crf.gamma)
    return blur, np.clip(sharp, 0, 1) ** (1 / crf.gamma), mask, L


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="1280x720 (REDS size) and 10 samples")
    ap.add_argument("--samples", type=int, default=None)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    size = (720, 1280) if args.full else (360, 640)
    n = args.samples or (10 if args.full else 6)
    crf = CRF("gamma", gamma=2.2, name="gamma:2.2")
    params = LBSParams()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_voc(tmp / "voc", seed=0, preset="demo", n_images=8, size=(375, 500))
        refs = index_instances(tmp / "voc", min_area=1000)
        shapes = instance_shapes(refs, params.object_scale)
        bg_path = tmp / "bg.png"
        write_image(bg_path, crf.to_display(linear_photo("coffee", size)))
        print(f"LBS at {size[1]}x{size[0]}, {n} samples, {len(refs)} VOC instances "
              f"(median cut-out {int(np.median(shapes[:, 1]))}x{int(np.median(shapes[:, 0]))} after x1.2), "
              f"L odd in [{params.frames_min}, {params.frames_max}], 1 thread")

        # ---- algorithm: ours vs the float64 whole-canvas reference, same inputs and draws
        bg_lin = crf.to_linear(read_image(bg_path))
        t_ours = t_ref = 0.0
        code_diffs = []
        inter = union = 0
        stages: dict = {}
        for i in range(n):
            pick = np.random.default_rng(100 + i).choice(len(refs), 4, replace=False)
            cuts = [linear_cutout(vc.rgb, vc.alpha, crf, scale=params.object_scale, source=vc.source)
                    for vc in (load_cutout(tmp / "voc", refs[j], pad=PAD) for j in pick)]
            mov, st = cuts[:2], cuts[2:]
            t0 = time.perf_counter()
            s = local_blur_sample(np.random.default_rng(i), bg_lin, mov, st, params=params, crf=crf)
            t1 = time.perf_counter()
            rb, rs, rm, L = reference_sample(np.random.default_rng(i), bg_lin, mov, st, params, crf)
            t2 = time.perf_counter()
            t_ours += t1 - t0
            t_ref += t2 - t1
            for k, v in s.timings.items():
                stages[k] = stages.get(k, 0.0) + v
            q = lambda x: np.floor(np.clip(x, 0, 1) * 255 + 0.5)  # noqa: E731
            code_diffs.append(np.abs(q(s.blur) - q(rb)).ravel())
            code_diffs.append(np.abs(q(s.sharp) - q(rs)).ravel())
            inter += int((s.mask & rm).sum())
            union += int((s.mask | rm).sum())
        print(f"  synthesis  ours      {n / t_ours:8.2f} samples/s  ({1000 * t_ours / n:7.1f} ms/sample)")
        print(f"  synthesis  reference {n / t_ref:8.2f} samples/s  ({1000 * t_ref / n:7.1f} ms/sample)  "
              f"ours is {t_ref / t_ours:.1f}x faster")
        d = np.concatenate(code_diffs)
        print(f"  agreement (8-bit codes, blur and sharp): {100 * (d == 0).mean():.3f} % equal, "
              f"{100 * (d > 1).mean():.4f} % differ by more than 1, max {int(d.max())}; mask IoU "
              f"{inter / max(union, 1):.5f}  (OpenCV warps float32 and float64 images with different "
              f"interpolation precision)")
        print("  synthesis stages (ms/sample): " + ", ".join(f"{k} {1000 * v / n:.1f}" for k, v in stages.items()))

        # ---- the whole per-sample pipeline, stage by stage
        from lodetools.pipelines.lbs import make_sample
        from lodetools.runner import WorkItem

        tim = dict(read_background=0.0, load_cutouts=0.0, linearise=0.0, synthesis=0.0, write_pngs=0.0)
        for i in range(n):
            rng = np.random.default_rng(1000 + i)
            t0 = time.perf_counter()
            bg = read_image(bg_path)
            t1 = time.perf_counter()
            pick = rng.choice(len(refs), 4, replace=False)
            cuts = [linear_cutout(vc.rgb, vc.alpha, crf, scale=params.object_scale, source=vc.source)
                    for vc in (load_cutout(tmp / "voc", refs[j], pad=PAD) for j in pick)]
            t2 = time.perf_counter()
            lin = crf.to_linear(bg)
            t3 = time.perf_counter()
            s = local_blur_sample(rng, lin, cuts[:2], cuts[2:], params=params, crf=crf)
            t4 = time.perf_counter()
            write_pair(tmp / "out", "train", "lbs", f"{i:06d}", {"blur": s.blur, "sharp": s.sharp, "mask": s.mask})
            t5 = time.perf_counter()
            for k, a, b in (("read_background", t0, t1), ("load_cutouts", t1, t2), ("linearise", t2, t3),
                            ("synthesis", t3, t4), ("write_pngs", t4, t5)):
                tim[k] += b - a
        total = sum(tim.values())
        print(f"  pipeline per sample: {n / total:.2f} samples/s ({1000 * total / n:.1f} ms): "
              + ", ".join(f"{k} {1000 * v / n:.1f}" for k, v in tim.items()))
        # the same through the pipeline's item function (what `lodetools lbs` runs per sample)
        fn = functools.partial(make_sample, out=tmp / "out2", objects=tmp / "voc", refs=refs, shapes=shapes,
                               backgrounds=[bg_path], bg_root=tmp, params=params, crf=crf, split="train",
                               scene="lbs", bit_depth=8)
        t0 = time.perf_counter()
        for i in range(n):
            fn(WorkItem(f"k{i}", f"{i:06d}"), np.random.default_rng(i))
        t = time.perf_counter() - t0
        print(f"  make_sample (lodetools lbs, 1 worker): {n / t:.2f} samples/s ({1000 * t / n:.1f} ms/sample)")


if __name__ == "__main__":
    main()
