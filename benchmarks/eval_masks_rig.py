"""Accuracy of ``lodetools masks`` on the synthetic RAW rig, through the real development chain.

Writes a synthetic beam-splitter capture folder (:func:`lodetools.sim.rig.write_rig`:
DNGs with colour casts, per-capture exposures, sensor noise, misalignment),
develops it (:func:`lodetools.pipelines.develop.develop_scene`), warps camera
B onto camera S with the rig's true flow (``--align affine``: the static
pair's global registration), writes a paired dataset in ``align``'s layout
(``tests/support/masks_world.rig_dataset``), runs ``lodetools masks --recipe reloblur``
on it and compares the masks with the rig's true blur masks.

Prints mean IoU (issue 7 target >= 0.75) and the error of the mean blurred
fraction (target within 2 percentage points).

    PYTHONPATH=$PWD python benchmarks/eval_masks_rig.py [--size 240x320] [--scenes 3] [--captures 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from lodetools.io.images import read_mask  # noqa: E402
from lodetools.io.manifest import read_manifest  # noqa: E402
from masks_world import iou, rig_dataset  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="240x320", help="HxW (even)")
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--captures", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--align", choices=["truth", "affine"], default="truth")
    ap.add_argument("--jitter", type=float, default=0.0,
                    help="random per-pair alignment error up to this many pixels (truth alignment)")
    args = ap.parse_args(argv)
    h, w = (int(x) for x in args.size.split("x"))
    from click.testing import CliRunner

    from lodetools.commands.masks import command

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        truth = rig_dataset(Path(tmp) / "rig", Path(tmp) / "ds", size=(h, w), scenes=args.scenes,
                            captures=args.captures, seed=args.seed, align=args.align,
                            jitter=args.jitter)
        print(f"rig: {args.scenes} scenes x {args.captures} captures at {w}x{h}, developed "
              f"({time.perf_counter() - t0:.1f} s)")
        t0 = time.perf_counter()
        res = CliRunner().invoke(command, ["--data", str(Path(tmp) / "ds"), "--recipe", "reloblur", "--quiet"])
        if res.exit_code != 0:
            raise SystemExit(f"masks failed: {res.output} {res.exception}")
        print(f"masks: {time.perf_counter() - t0:.1f} s")
        recs = read_manifest(Path(tmp) / "ds")
        got = {k: read_mask(Path(tmp) / "ds" / recs[k]["files"]["mask"]) for k in truth}
        ious = [iou(got[k], truth[k]) for k in truth]
        gf = np.mean([m.mean() for m in got.values()])
        tf = np.mean([m.mean() for m in truth.values()])
        stats = json.loads((Path(tmp) / "ds" / "mask_stats.json").read_text())["summary"]
        print(f"masks: {len(ious)}; IoU per mask: {np.round(ious, 3).tolist()}")
        print(f"mean IoU {np.mean(ious):.3f} (target >= 0.75); mean blurred fraction {100 * gf:.2f} % "
              f"(mask_stats.json: {100 * stats['mean']:.2f} %) vs true {100 * tf:.2f} %: "
              f"error {100 * (gf - tf):+.2f} points (target within 2)")


if __name__ == "__main__":
    main()
