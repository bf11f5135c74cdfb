"""Tune LBFMG's MOG2 and morphology parameters for mean IoU on synthetic scenes with true masks.

Prints the best parameter sets (mean IoU against the true moving-object
masks, blurred-fraction error in percentage points) and the IoU of the
current recipe (``lodetools/recipes/reloblur.toml`` [masks]). The MOG2 foregrounds are
computed once per MOG2 setting and re-used across morphology settings.

    PYTHONPATH=$PWD python benchmarks/tune_masks.py [--world rig|own] [--size 240x320] [--scenes 8] [--jitter 1]

``rig``: scenes of the synthetic RAW rig (:mod:`lodetools.sim.rig`: its
objects, motions, per-capture exposures), rendered in linear light with the
two cameras aligned, noise and gamma (``tests/support/masks_world.rig_scene``);
``own``: ``tests/support/masks_world.make_scene``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from lodetools.masks.lbfmg import LBFMGParams, clean_mask, combine, foreground  # noqa: E402
from lodetools.recipe import load_recipe  # noqa: E402
from masks_world import iou, make_scene, rig_scene  # noqa: E402

GRID_MOG2 = dict(var_threshold=[16.0, 25.0, 40.0], init_frames=[1, 3], var_init=[15.0, 30.0])
GRID_MORPH = dict(erode=[1, 3, 5, 7], dilate=[3, 5, 9, 11, 13], shadows=["foreground", "background"])


def own_world(size, n_scenes, seed=2):
    """(pairs, static, true masks) of ``n_scenes`` scenes of 1-5 pairs from tests/support/masks_world.py."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_scenes):
        sc = make_scene(rng, size, n_pairs=int(rng.integers(1, 6)))
        out.append((sc["pairs"], sc["static"], sc["masks"]))
    return out


def rig_world(size, n_scenes, seed=0, captures=3, jitter=0.0):
    """(pairs, static, true masks) of ``n_scenes`` rig scenes."""
    out = []
    for i in range(n_scenes):
        sc = rig_scene(seed, i, size, captures, 16, jitter=jitter)
        out.append((sc["pairs"], sc["static"], sc["masks"]))
    return out


def evaluate(world, base: dict):
    """Mean IoU and fraction error (pp) of every morphology setting for one MOG2 setting."""
    p = LBFMGParams.from_dict(base)
    fgs = []
    for pairs, static, masks in world:
        for t in range(len(pairs)):
            others = [q for i, q in enumerate(pairs) if i != t]
            fgs.append((foreground(static[0], [q[0] for q in others], pairs[t][0], p),
                        foreground(static[1], [q[1] for q in others], pairs[t][1], p), masks[t]))
    rows = []
    for er, di, sh in itertools.product(*GRID_MORPH.values()):
        ious, got, true = [], [], []
        for fs, fb, tm in fgs:
            m = clean_mask(combine(fs, fb, sh), er, di)
            ious.append(iou(m, tm))
            got.append(m.mean())
            true.append(tm.mean())
        rows.append((float(np.mean(ious)), 100 * float(np.mean(got) - np.mean(true)),
                     {**base, "erode": er, "dilate": di, "shadows": sh}))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", choices=["rig", "own"], default="rig")
    ap.add_argument("--size", default="240x320", help="HxW of the scenes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jitter", type=float, default=0.0,
                    help="rig: random per-pair shift of the blurred images, up to this many pixels")
    ap.add_argument("--scenes", type=int, default=8)
    args = ap.parse_args(argv)
    h, w = (int(x) for x in args.size.split("x"))
    world = rig_world((h, w), args.scenes, args.seed, jitter=args.jitter) if args.world == "rig" else \
        own_world((h, w), args.scenes, args.seed)
    print(f"{sum(len(x[0]) for x in world)} masks in {len(world)} scenes of {w}x{h}")
    rows = []
    for values in itertools.product(*GRID_MOG2.values()):
        rows += evaluate(world, dict(zip(GRID_MOG2, values)))
    print(f"true blurred fraction: {100 * np.mean([m.mean() for x in world for m in x[2]]):.2f} %")
    rows.sort(key=lambda r: -r[0])
    for miou, ferr, prm in rows[:8]:
        print(f"IoU {miou:.3f}  fraction error {ferr:+.2f} pp  {prm}")
    _, rec = load_recipe("reloblur", "masks")
    rp = LBFMGParams.from_dict(rec)
    r = evaluate(world, {k: v for k, v in rp.to_dict().items() if k not in GRID_MORPH})
    mine = [x for x in r if x[2]["erode"] == rp.erode and x[2]["dilate"] == rp.dilate
            and x[2]["shadows"] == rp.shadows]
    if mine:
        print(f"recipe: IoU {mine[0][0]:.3f}  fraction error {mine[0][1]:+.2f} pp")


if __name__ == "__main__":
    main()
