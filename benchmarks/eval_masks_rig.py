"""Accuracy of LBFMG masks on the synthetic RAW rig, through the real development chain.

Writes a synthetic beam-splitter capture folder (:func:`lodetools.sim.rig.write_rig`:
DNGs with colour casts, per-capture exposures, sensor noise, misalignment),
fits each camera's cast on its lightbox frame, develops every scene with
:func:`lodetools.pipelines.develop.develop_scene` (correction, beta, Menon,
white balance, colour matrix, sRGB gamma), warps camera B onto camera S with
the rig's true flow (what ``align`` aims at; ``--align affine`` uses the
static pair's global registration instead), runs LBFMG with the recipe's
``[masks]`` values and compares with the rig's true blur masks.

Prints mean IoU (issue 7 target >= 0.75) and the error of the mean blurred
fraction (target <= 2 percentage points).

    PYTHONPATH=$PWD python benchmarks/eval_masks_rig.py [--size 240x320] [--scenes 3] [--captures 4]
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

from lodetools.color.correction import fit_cast  # noqa: E402
from lodetools.io.images import read_mask  # noqa: E402
from lodetools.io.raw import read_raw, read_rig_config, scan_raw_pairs  # noqa: E402
from lodetools.masks.lbfmg import LBFMGParams, scene_masks, to_uint8  # noqa: E402
from lodetools.masks.stats import blurred_fraction  # noqa: E402
from lodetools.pipelines.develop import develop_scene  # noqa: E402
from lodetools.recipe import load_recipe  # noqa: E402
from lodetools.sim.rig import write_rig  # noqa: E402
from masks_world import iou  # noqa: E402


def recipe_params() -> LBFMGParams:
    _, rec = load_recipe("reloblur", "masks")
    return LBFMGParams.from_dict({("n_mixtures" if k == "mixtures" else k): v for k, v in rec.items()})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="240x320", help="HxW (even)")
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--captures", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--align", choices=["truth", "affine"], default="truth")
    args = ap.parse_args(argv)
    h, w = (int(x) for x in args.size.split("x"))
    p = recipe_params()
    print(f"LBFMG parameters (recipe): {p.to_dict()}")
    with tempfile.TemporaryDirectory() as tmp:
        rig_dir = Path(tmp) / "rig"
        t0 = time.perf_counter()
        truth = write_rig(rig_dir, seed=args.seed, size=(h, w), scenes=args.scenes, captures=args.captures)
        print(f"rig: {args.scenes} scenes x {args.captures} captures at {w}x{h} "
              f"({time.perf_counter() - t0:.1f} s)")
        rig = read_rig_config(rig_dir)
        calib = {cam: fit_cast(read_raw(rig_dir / f"lightbox_{cam}.dng", rig).bayer, truth["pattern"])
                 for cam in ("blur", "sharp")}
        ious, got, true = [], [], []
        X, Y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        for scene in scan_raw_pairs(rig_dir):
            spec = truth["scenes"][scene.name]
            dev = develop_scene(scene, calib["blur"], calib["sharp"], rig=rig)
            flow = np.load(rig_dir / spec["misalignment"]["flow"])
            pairs, static, ids = [], None, []
            for dp in dev.pairs:
                if args.align == "truth":
                    blur = cv2.remap(dp.blur, X + flow[..., 0], Y + flow[..., 1], cv2.INTER_CUBIC,
                                     borderMode=cv2.BORDER_REFLECT)
                else:
                    from lodetools.color.photometric import quad_warp_to_pixels

                    blur = cv2.warpAffine(dp.blur, np.asarray(quad_warp_to_pixels(dev.warp), np.float32), (w, h),
                                          flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                          borderMode=cv2.BORDER_REFLECT)
                pair = (to_uint8(dp.sharp), to_uint8(blur))
                if dp.static:
                    static = pair
                else:
                    pairs.append(pair)
                    ids.append(dp.id)
            for cid, m in zip(ids, scene_masks(pairs, static, p)):
                t = read_mask(rig_dir / spec["captures"][cid]["mask_blur"])
                ious.append(iou(m, t))
                got.append(blurred_fraction(m))
                true.append(blurred_fraction(t))
        print(f"masks: {len(ious)}; IoU per mask: {np.round(ious, 3).tolist()}")
        print(f"mean IoU {np.mean(ious):.3f} (target >= 0.75); mean blurred fraction {100 * np.mean(got):.2f} % "
              f"vs true {100 * np.mean(true):.2f} %: error {100 * (np.mean(got) - np.mean(true)):+.2f} points "
              f"(target within 2)")


if __name__ == "__main__":
    main()
