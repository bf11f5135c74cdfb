"""Tiny synthetic paired datasets for the training tests (helpers, not tests)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, uniform_filter1d

from lodetools.io.layout import write_pair
from lodetools.io.manifest import write_dataset_json


def _photos():
    from skimage import data
    imgs = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    return [im.astype(np.float32) / 255 for im in imgs]


def _gaussian_blur_linear(sharp: np.ndarray, sigma: float, gamma: float = 2.2) -> np.ndarray:
    """Isotropic gaussian blur (std ``sigma`` px) of an (H, W, 3) display image, done in
    linear light (display ** gamma) and re-encoded."""
    lin = gaussian_filter(sharp ** gamma, (sigma, sigma, 0), mode="nearest")
    return (lin ** (1 / gamma)).astype(np.float32)


def make_dataset(root, n: int = 4, size=(64, 96), *, local: bool = True, seed: int = 0,
                 splits=("train",), blur_len: int = 5, blur_type: str = "box",
                 blur_sigma: float = 2.0) -> str:
    """Write ``n`` pairs per split: sharp = a photo crop, blur = horizontal box blur of
    ``blur_len`` px (``blur_type="box"``) or a gaussian of std ``blur_sigma`` px in linear light
    (``blur_type="gaussian"``) inside a rectangle (``local``) or everywhere, mask = the rectangle
    (local only)."""
    if blur_type not in ("box", "gaussian"):
        raise ValueError(f"unknown blur_type {blur_type!r}")
    rng = np.random.default_rng(seed)
    photos = _photos()
    h, w = size
    records = []
    for split in splits:
        for i in range(n):
            ph = photos[i % len(photos)]
            y0 = rng.integers(0, ph.shape[0] - 2 * h)
            x0 = rng.integers(0, ph.shape[1] - 2 * w)
            sharp = ph[y0:y0 + 2 * h:2, x0:x0 + 2 * w:2].copy()
            if blur_type == "box":
                blurred = uniform_filter1d(sharp, blur_len, axis=1, mode="nearest")
            else:
                blurred = _gaussian_blur_linear(sharp, blur_sigma)
            if local:
                mask = np.zeros((h, w), bool)
                my, mx = rng.integers(0, h // 2), rng.integers(0, w // 2)
                mask[my:my + h // 2, mx:mx + w // 2] = True
                blur = np.where(mask[..., None], blurred, sharp)
                imgs = {"blur": blur, "sharp": sharp, "mask": mask}
            else:
                imgs = {"blur": blurred, "sharp": sharp}
            records.append(write_pair(root, split, f"scene{i % 2}", f"{i:04d}", imgs))
    import json
    from pathlib import Path
    Path(root, "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    write_dataset_json(root, command="test", params={}, recipe=None, counts={"pairs": len(records)})
    return str(root)
