"""Small local-blur scenes with known moving-object masks, for the masks tests and tuning.

A scene: a static linear-light photograph; each capture has 1-2 cut-outs
moving in a straight line; the sharp image is the scene at the mid instant
(short exposure, 1/``ratio`` of the long one), the blurred image is the mean of
``subframes`` instants over the long exposure; both get slight Poisson-Gaussian noise,
then gamma 1/2.2 to display values. The true mask is the union over the long
exposure of the objects' footprints (alpha > 0.1), as LODE defines it.
"""

from __future__ import annotations

import numpy as np

from lodetools.sim.photos import BACKGROUNDS, composite, linear_photo, make_cutout, render_layer
from lodetools.synth.cutout import pose_matrix


def _render(bg, objs, t):
    layers = []
    shape = bg.shape[:2]
    for cut, c0, v in objs:
        c = (c0[0] + v[0] * t, c0[1] + v[1] * t)
        layers.append(render_layer(cut, pose_matrix(c, 0.0, 1.0, cut.alpha.shape), shape))
    return composite(bg, layers), [a for _, a in layers]


def _display(lin, rng, noise):
    # Poisson-Gaussian sensor noise: variance = noise * x + (noise / 6)^2
    sigma = np.sqrt(noise * np.clip(lin, 0, 1) + (noise / 6) ** 2)
    lin = lin + (rng.standard_normal(lin.shape) * sigma).astype(np.float32)
    return np.power(np.clip(lin, 0, 1), 1 / 2.2).astype(np.float32)


def make_scene(rng, shape=(64, 96), n_pairs=4, *, background=None, subframes=15,
               ratio=10, speed=(0.05, 0.15), size=(0.25, 0.4), noise=1e-4, objects=(1, 2),
               only_target=None):
    """One scene: static pair, ``n_pairs`` captures with their true masks.

    Parameters
    ----------
    shape : (H, W)
    speed : (lo, hi)
        Displacement over the long exposure as a fraction of the width.
    size : (lo, hi)
        Object size as a fraction of the height.
    only_target : int, optional
        Give the capture with this index one extra object that no other capture has.

    Returns
    -------
    dict with ``static`` (sharp, blur), ``pairs`` list of (sharp, blur), ``masks`` list of bool
    """
    H, W = shape
    bg = linear_photo(background or BACKGROUNDS[rng.integers(len(BACKGROUNDS))], shape)
    static = (_display(bg, rng, noise), _display(bg, rng, noise))
    pairs, masks = [], []
    for k in range(n_pairs):
        objs = []
        n_obj = int(rng.integers(objects[0], objects[1] + 1))
        for _ in range(n_obj):
            s = int(rng.uniform(*size) * H)
            cut = make_cutout(rng, s)
            ang = rng.uniform(0, 2 * np.pi)
            v = rng.uniform(*speed) * W * np.array([np.cos(ang), np.sin(ang)])
            c0 = (rng.uniform(0.15, 0.85) * W, rng.uniform(0.2, 0.8) * H)
            objs.append((cut, c0, v))
        ts = np.linspace(-0.5, 0.5, subframes)
        frames, alphas = [], []
        for t in ts:
            img, al = _render(bg, objs, t)
            frames.append(img)
            alphas.extend(al)
        blur = np.mean(frames, axis=0)
        sts = np.linspace(-0.5 / ratio, 0.5 / ratio, 3)
        sharp = np.mean([_render(bg, objs, t)[0] for t in sts], axis=0)
        mask = np.max(alphas, axis=0) > 0.1 if alphas else np.zeros(shape, bool)
        pairs.append((_display(sharp, rng, noise), _display(blur, rng, noise)))
        masks.append(mask)
    return {"static": static, "pairs": pairs, "masks": masks}


def iou(a, b):
    """Intersection over union of two boolean masks (1 when both are empty)."""
    u = np.logical_or(a, b).sum()
    return 1.0 if u == 0 else float(np.logical_and(a, b).sum() / u)


def write_dataset(root, scenes, *, split="train", static=True, names=None):
    """Write scenes as a paired dataset (``align`` layout: static pair id ``reference``).

    Returns
    -------
    dict
        manifest key -> true mask.
    """
    from lodetools.io.layout import item_key, write_pair
    from lodetools.io.manifest import ManifestWriter, write_dataset_json

    truth = {}
    with ManifestWriter(f"{root}/manifest.jsonl") as w:
        for s, sc in enumerate(scenes):
            scene = f"scene{s:02d}"
            if static and sc.get("static") is not None:
                rec = write_pair(root, split, scene, "reference",
                                 {"sharp": sc["static"][0], "blur": sc["static"][1]})
                rec["static"] = True
                w.append(rec)
            for k, ((sharp, blur), m) in enumerate(zip(sc["pairs"], sc["masks"])):
                iid = names[s][k] if names else f"{k:04d}"
                w.append(write_pair(root, split, scene, iid, {"sharp": sharp, "blur": blur}))
                truth[item_key(split, scene, iid)] = m
    write_dataset_json(root, command="test-world", params={}, recipe=None, counts={"pairs": len(truth)})
    return truth


def rig_scene(seed, index, shape=(64, 96), captures=3, subframes=8, *, noise=1e-4, rng=None,
              exposures=True, jitter=0.0):
    """A scene of the synthetic RAW rig (:mod:`lodetools.sim.rig`) rendered in linear light.

    The rig's own scene description (objects, motions, background) and
    renderer, with camera B perfectly aligned to camera S (what ``align``
    aims at) and without the sensor: linear light, Poisson-Gaussian noise,
    gamma 1/2.2. Each capture keeps the rig's exposure (0.7-0.9, divided by
    0.8), which ``develop`` does not equalise, unless ``exposures=False``.
    ``jitter``: each blurred image shifted by a random offset of up to this
    many pixels (a per-pair alignment error).
    The true mask of a capture is the rig's blur mask (objects over the long
    exposure, in S's grid).

    Returns
    -------
    dict like :func:`make_scene`
    """
    from lodetools.sim import rig

    spec = rig._scene_spec(seed, index, shape, captures, subframes)
    spec["misalignment"]["matrix"] = np.eye(2, 3).tolist()
    rng = rng or np.random.default_rng([seed, index])

    def render(cid):
        s = rig.render_capture(spec, cid, shape, "sharp")
        b = rig.render_capture(spec, cid, shape, "blur")
        e = spec["reference_exposure"] if cid is None else spec["captures"][cid]["exposure"]
        e = e / 0.8 if exposures else 1.0
        blur = rig.long_exposure(b["frames"])
        if jitter:
            import cv2

            a, r = rng.uniform(0, 2 * np.pi), rng.uniform(0, jitter)
            blur = cv2.warpAffine(blur, np.float32([[1, 0, r * np.cos(a)], [0, 1, r * np.sin(a)]]),
                                  shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        pair = (_display(e * s["frames"][0], rng, noise), _display(e * blur, rng, noise))
        return pair, b["masks"].any(0)

    static, _ = render(None)
    pairs, masks = [], []
    for cid in spec["captures"]:
        p, m = render(cid)
        pairs.append(p)
        masks.append(m)
    return {"static": static, "pairs": pairs, "masks": masks}


def rig_dataset(rig_dir, out, *, size=(96, 128), scenes=2, captures=3, seed=0, align="truth", jitter=0.0):
    """Write a RAW rig, develop it and write a paired dataset with the truth masks aside.

    The rig (:func:`lodetools.sim.rig.write_rig`) is developed with
    :func:`lodetools.pipelines.develop.develop_scene` (casts fitted on the
    lightbox frames), camera B warped onto camera S with the rig's true flow
    (``align='truth'``: what ``align`` aims at) or the static pair's global
    registration (``'affine'``), plus a random shift of up to ``jitter`` pixels
    per pair (a per-pair alignment error), and written in ``align``'s layout (static pair
    id ``reference``, ``"static": true``) into ``out``.

    Returns
    -------
    dict
        manifest key -> true blur mask (bool).
    """
    from pathlib import Path

    import cv2

    from lodetools.color.correction import fit_cast
    from lodetools.io.images import read_mask
    from lodetools.io.layout import item_key, write_pair
    from lodetools.io.manifest import ManifestWriter, write_dataset_json
    from lodetools.io.raw import read_raw, read_rig_config, scan_raw_pairs
    from lodetools.pipelines.develop import develop_scene
    from lodetools.sim.rig import write_rig

    rig_dir, out = Path(rig_dir), Path(out)
    h, w = size
    truth = write_rig(rig_dir, seed=seed, size=(h, w), scenes=scenes, captures=captures)
    rig = read_rig_config(rig_dir)
    calib = {cam: fit_cast(read_raw(rig_dir / f"lightbox_{cam}.dng", rig).bayer, truth["pattern"])
             for cam in ("blur", "sharp")}
    X, Y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    jrng = np.random.default_rng(seed)
    masks = {}
    with ManifestWriter(out / "manifest.jsonl") as mw:
        for scene in scan_raw_pairs(rig_dir):
            spec = truth["scenes"][scene.name]
            dev = develop_scene(scene, calib["blur"], calib["sharp"], rig=rig)
            flow = np.load(rig_dir / spec["misalignment"]["flow"])
            for dp in dev.pairs:
                a, r = jrng.uniform(0, 2 * np.pi), jrng.uniform(0, jitter)
                f = flow + np.array([r * np.cos(a), r * np.sin(a)], np.float32)
                if align == "truth":
                    blur = cv2.remap(dp.blur, X + f[..., 0], Y + f[..., 1], cv2.INTER_CUBIC,
                                     borderMode=cv2.BORDER_REFLECT)
                else:
                    from lodetools.color.photometric import quad_warp_to_pixels

                    blur = cv2.warpAffine(dp.blur, np.asarray(quad_warp_to_pixels(dev.warp), np.float32),
                                          (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                          borderMode=cv2.BORDER_REFLECT)
                rec = write_pair(out, "test", scene.name, dp.id, {"sharp": dp.sharp, "blur": np.clip(blur, 0, 1)})
                if dp.static:
                    rec["static"] = True
                else:
                    masks[item_key("test", scene.name, dp.id)] = read_mask(
                        rig_dir / spec["captures"][dp.id]["mask_blur"])
                mw.append(rec)
    write_dataset_json(out, command="test-rig", params={"align": align}, recipe=None,
                       counts={"pairs": len(masks)})
    return masks
