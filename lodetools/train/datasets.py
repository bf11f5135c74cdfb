"""Training data over the paired layout (``lodetools.io.layout``), with masks.

Every sample is a function of (seed, global sample number) only, so training
is deterministic whatever the number of loader workers, resumes exactly from
an iteration number, and splits across DDP ranks without a sampler state:

* sample number ``g = (iteration * world + rank) * batch + j``;
* pair index = ``permutation(seed, epoch)[g % N]`` with ``epoch = g // N``
  (each pair once per epoch);
* the crop position and the augmentation come from ``default_rng([seed, g])``.

Blur-aware patch cropping (ReLoBlur Sec. 5 "BAPC", official code): with
probability ``p`` (0.5) and if the mask's blurred fraction is above
``min_fraction`` (5 %), the crop is centred on a uniformly drawn blurred
pixel (shifted to stay inside the image); otherwise it is uniform. The
official code computes the fraction on 0/255 masks, so its 5 % test always
passes; a 0/1 mask is used here, so the test means what it says.

Augmentations: ``'flip'`` (horizontal flip, ReLoBlur), ``'dihedral'`` (the 8
flip/90-degree rotation modes, LODE), or ``'none'``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lodetools.errors import BadInput, MissingInput
from lodetools.io.images import read_image, read_mask
from lodetools.io.layout import Pair, check_same_size, read_pairs

AUGMENTATIONS = ("none", "flip", "dihedral")


def blur_aware_crop(mask: np.ndarray | None, shape: tuple[int, int], size: int,
                    rng: np.random.Generator, *, p: float = 0.5, min_fraction: float = 0.05):
    """Top-left corner of a ``size`` x ``size`` crop (ReLoBlur BAPC).

    Parameters
    ----------
    mask : (H, W) bool/0-1 array or None
    shape : (H, W)
    size : int
        Crop side; must not exceed H or W.
    rng : numpy Generator
    p : float
        Probability of a blur-centred crop.
    min_fraction : float
        Blur-centred only if ``mask.mean() > min_fraction``.

    Returns
    -------
    (y0, x0) : ints
    """
    h, w = shape
    use_mask = rng.random() < p
    if use_mask and mask is not None and float(np.mean(mask)) > min_fraction:
        ys, xs = np.nonzero(mask)
        i = rng.integers(len(ys))
        y0 = int(np.clip(ys[i] - size // 2, 0, h - size))
        x0 = int(np.clip(xs[i] - size // 2, 0, w - size))
        return y0, x0
    return int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))


def augment(arrays: list, mode: int) -> list:
    """Apply dihedral mode ``mode`` in 0..7 (bit 0: h-flip, bits 1-2: k x 90-degree rotations)."""
    out = []
    for a in arrays:
        if mode & 1:
            a = a[:, ::-1]
        a = np.rot90(a, k=mode >> 1)
        out.append(np.ascontiguousarray(a))
    return out


def _hwc_to_chw(a: np.ndarray) -> torch.Tensor:
    if a.ndim == 2:
        a = a[..., None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


@dataclass
class PairSource:
    """One dataset's pairs (``root`` and ``split`` as given to :func:`read_pairs`)."""

    root: str
    split: str | None
    pairs: list


def load_source(root, split: str | None = "train", *, need_mask: bool = False, layout: str | None = None,
                masks=None, needed_by: str | None = None) -> PairSource:
    """The pairs of a dataset split (only those with masks if ``need_mask``), in any layout.

    Parameters
    ----------
    root : path
        Dataset root (any layout :mod:`lodetools.io.datasets` reads).
    split : str or None
    need_mask : bool
    layout : str, optional
        Force the layout, ``"NAME"`` or ``"NAME:VARIANT"``.
    masks : path, optional
        Masks made outside the dataset.
    needed_by : str, optional
        The network that needs the masks, named in the error.

    Raises
    ------
    MissingInput
        No dataset, no pairs, or no pair with a mask when one is needed (the
        message names the network and how to make masks).
    """
    from lodetools.io.datasets import MASKS_HINT
    pairs = read_pairs(root, split=split, require=("blur", "sharp"), layout=layout, masks=masks)
    if need_mask:
        with_mask = [p for p in pairs if p.mask is not None]
        if not with_mask:
            raise MissingInput(f"{needed_by or 'this network'} needs local-blur masks and no pair of split "
                               f"{split!r} has one; " + MASKS_HINT.format(root=root), root)
        pairs = with_mask
    return PairSource(str(root), split, pairs)


def load_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read (blur, sharp, mask or None) as float32 (H, W, 3), (H, W, 3), bool (H, W)."""
    blur = read_image(pair.blur)
    sharp = read_image(pair.sharp)
    check_same_size(blur, sharp, pair.sharp)
    mask = None
    if pair.mask is not None:
        mask = read_mask(pair.mask)
        check_same_size(blur, mask, pair.mask)
    return blur, sharp, mask


class CropDataset(torch.utils.data.Dataset):
    """Random crops of a paired dataset, indexed by the global sample number ``g``.

    ``dataset[g]`` -> dict ``blur`` (3, S, S), ``sharp`` (3, S, S), ``mask``
    (1, S, S) float 0/1 (zeros when the pair has no mask), ``has_mask`` bool.

    Parameters
    ----------
    source : PairSource
    crop : int
        Crop side S (images smaller than S raise BadInput).
    seed : int
    bapc_p, bapc_min_fraction : float
        Blur-aware patch cropping (see :func:`blur_aware_crop`); ``bapc_p=0`` disables it.
    augmentation : {'none', 'flip', 'dihedral'}
    cache : bool
        Keep decoded images in memory (small datasets, tests).
    """

    def __init__(self, source: PairSource, crop: int, seed: int = 0, *, bapc_p: float = 0.5,
                 bapc_min_fraction: float = 0.05, augmentation: str = "flip", cache: bool = False):
        if augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {AUGMENTATIONS}")
        self.source, self.crop, self.seed = source, int(crop), int(seed)
        self.bapc_p, self.bapc_min_fraction = float(bapc_p), float(bapc_min_fraction)
        self.augmentation = augmentation
        self._cache = {} if cache else None
        self._perm = {}

    def __len__(self) -> int:
        return len(self.source.pairs)

    def pair_index(self, g: int) -> int:
        """Index of the pair used by global sample ``g`` (one pass per epoch)."""
        n = len(self.source.pairs)
        epoch = g // n
        if epoch not in self._perm:
            if len(self._perm) > 4:
                self._perm.clear()
            self._perm[epoch] = np.random.default_rng([self.seed, 7, epoch]).permutation(n)
        return int(self._perm[epoch][g % n])

    def _load(self, i: int):
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        data = load_pair(self.source.pairs[i])
        if self._cache is not None:
            self._cache[i] = data
        return data

    def __getitem__(self, g: int) -> dict:
        g = int(g)
        pair = self.source.pairs[self.pair_index(g)]
        blur, sharp, mask = self._load(self.pair_index(g))
        h, w = blur.shape[:2]
        s = self.crop
        if h < s or w < s:
            raise BadInput(f"image {w}x{h} is smaller than the crop {s}x{s}", pair.blur)
        rng = np.random.default_rng([self.seed, g])
        y0, x0 = blur_aware_crop(mask, (h, w), s, rng, p=self.bapc_p, min_fraction=self.bapc_min_fraction)
        win = (slice(y0, y0 + s), slice(x0, x0 + s))
        m = (mask[win] if mask is not None else np.zeros((s, s), bool)).astype(np.float32)
        arrays = [blur[win], sharp[win], m]
        if self.augmentation == "flip":
            arrays = augment(arrays, int(rng.integers(2)))
        elif self.augmentation == "dihedral":
            arrays = augment(arrays, int(rng.integers(8)))
        return {"blur": _hwc_to_chw(arrays[0]), "sharp": _hwc_to_chw(arrays[1]),
                "mask": _hwc_to_chw(arrays[2]), "has_mask": mask is not None}


class SampleBatches(torch.utils.data.Sampler):
    """Lazy batches of global sample numbers for the iterations a phase runs, on one rank.

    Iteration ``t`` (in ``iterations``) yields the batch of sample numbers
    ``(stream(t) * world + rank) * batch + j``, j < batch, so ranks draw
    disjoint samples and ``world`` processes with ``batch`` each see exactly
    the samples one process with ``world * batch`` would.

    Parameters
    ----------
    iterations : range
        The global iterations this sampler serves (filtered by ``keep``).
    batch : int
        Per-rank batch size.
    rank, world : int
        DDP rank and world size.
    stream : callable, optional
        ``stream(t)`` -> this dataset's own step counter at iteration ``t``
        (alternating phases each count their own steps); default ``t``.
    keep : callable, optional
        ``keep(t)`` -> whether iteration ``t`` uses this sampler's dataset.
    """

    def __init__(self, iterations: range, batch: int, rank: int = 0, world: int = 1, stream=None, keep=None):
        self.iterations, self.batch = iterations, int(batch)
        self.rank, self.world = int(rank), int(world)
        self.stream = stream or (lambda t: t)
        self.keep = keep or (lambda t: True)

    def __len__(self) -> int:
        return sum(1 for t in self.iterations if self.keep(t))

    def __iter__(self):
        for t in self.iterations:
            if self.keep(t):
                base = (self.stream(t) * self.world + self.rank) * self.batch
                yield list(range(base, base + self.batch))
