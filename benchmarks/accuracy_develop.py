"""Accuracy of calibrate color + develop on the synthetic rig (against its truth).

Prints, for a rig of the chosen preset: the calibrated cast vs the true cast
(max relative error over the frame), lightbox non-uniformity before/after,
the beta error of both estimators (``static``, the default, and ``full``,
ReLoBlur Eq. (6) as printed) for every pair, and Delta-L (appendix Eq. (1))
on each static reference pair before/after (paper: 4.55 % -> 2.87 %).

Usage::

    PYTHONPATH=. python benchmarks/accuracy_develop.py [--preset demo|test] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="demo", choices=["demo", "test"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", default=None, help="HxW, e.g. 128x192")
    args = ap.parse_args()
    from lodetools.color.correction import fit_cast, poly_image
    from lodetools.io.raw import read_raw, read_rig_config, scan_raw_pairs
    from lodetools.pipelines.develop import DevelopOptions, develop_scene
    from lodetools.sim import rig

    size = tuple(int(v) for v in args.size.split("x")) if args.size else None
    d = Path(tempfile.mkdtemp(prefix="acc_develop_"))
    truth = rig.write_rig(d, seed=args.seed, preset=args.preset, size=size)
    h, w = truth["size"]
    print(f"rig: preset {args.preset}, seed {args.seed}, {w}x{h}, {len(truth['scenes'])} scenes")
    fits = {}
    for cam in ("blur", "sharp"):
        f = read_raw(d / f"lightbox_{cam}.dng")
        fit = fits[cam] = fit_cast(f.bayer, f.pattern)
        err = max(np.abs((poly_image(fit.coeffs[c], (h, w)) / poly_image(fit.coeffs[c], (h, w))[h // 2, w // 2])
                         / (rig.true_cast(truth, cam, c) / rig.true_cast(truth, cam, c)[h // 2, w // 2]) - 1).max()
                  for c in range(3))
        print(f"cast {cam}: max error vs truth {100 * err:.3f} %; non-uniformity "
              f"{100 * fit.nonuniformity_before.max():.2f} % -> {100 * fit.nonuniformity_after.max():.3f} %")
    true_beta = np.array(truth["beta"])
    errs = {"static": [], "full": []}
    for scene in scan_raw_pairs(d):
        for region in errs:
            dev = develop_scene(scene, fits["blur"], fits["sharp"], rig=read_rig_config(d),
                                options=DevelopOptions(beta_region=region, refining_step=False))
            for p in dev.pairs:
                errs[region].append(np.abs(p.beta / true_beta - 1).max())
            if region == "static":
                q = dev.qa
                print(f"{scene.name}: Delta-L smoothed {100 * q['delta_l_before']['smoothed']:.2f} % -> "
                      f"{100 * q['delta_l_after']['smoothed']:.2f} %, registered "
                      f"{100 * q['delta_l_before']['registered']:.2f} % -> {100 * q['delta_l_after']['registered']:.2f} %, "
                      f"plain {100 * q['delta_l_before']['plain']:.2f} % -> {100 * q['delta_l_after']['plain']:.2f} %")
    for region, e in errs.items():
        print(f"beta {region:<6s}: max error {100 * max(e):.3f} %, mean {100 * np.mean(e):.3f} % over {len(e)} pairs")
    print(f"ratio mean error full / static: {np.mean(errs['full']) / np.mean(errs['static']):.1f}")
    import shutil

    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
