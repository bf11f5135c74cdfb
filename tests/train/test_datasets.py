"""Training datasets: blur-aware patch cropping, augmentation, determinism."""

import numpy as np
import pytest
import torch

from lodetools.errors import BadInput, MissingInput
from lodetools.train.datasets import CropDataset, augment, blur_aware_crop, load_source

from tests.support.train_data import make_dataset


def _centre_hits(mask, p, n=400, size=16):
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(n):
        y0, x0 = blur_aware_crop(mask, mask.shape, size, rng, p=p)
        assert 0 <= y0 <= mask.shape[0] - size and 0 <= x0 <= mask.shape[1] - size
        hits += bool(mask[y0 + size // 2, x0 + size // 2])
    return hits / n


def test_bapc_centres_on_blur_above_five_percent():
    mask = np.zeros((100, 100), bool)
    mask[40:48, 40:48] = True                            # 0.64 % blurred: below 5 %, always uniform
    assert _centre_hits(mask, p=1.0) < 0.05
    mask[30:60, 30:60] = True                            # 9 % blurred
    assert _centre_hits(mask, p=1.0) == 1.0              # centred on a blurred pixel every time
    frac = mask[8:92, 8:92].mean()                       # chance of a uniform crop's centre being blurred
    assert _centre_hits(mask, p=0.5) == pytest.approx(0.5 + 0.5 * frac, abs=0.07)
    assert _centre_hits(mask, p=0.0) == pytest.approx(frac, abs=0.06)
    # masks are 0/1: the official code's 0/255 fraction (x255) would pass the 5 % test here
    small = np.zeros((100, 100), np.uint8)
    small[45:50, 45:50] = 1                              # 0.25 %; as 0/255 it would "be" 64 %
    assert _centre_hits(small.astype(bool), p=1.0) < 0.05


def test_augment_dihedral_modes_are_the_eight_symmetries():
    a = np.arange(12).reshape(3, 4)
    outs = {augment([a], m)[0].tobytes() + bytes(augment([a], m)[0].shape) for m in range(8)}
    assert len(outs) == 8
    assert np.array_equal(augment([a], 1)[0], a[:, ::-1])
    assert np.array_equal(augment([a], 2)[0], np.rot90(a))


def test_crops_are_deterministic_consistent_and_cover_each_epoch(tmp_path):
    root = make_dataset(tmp_path / "d", n=3)
    src = load_source(root, "train", need_mask=True)
    ds = CropDataset(src, 32, seed=5, augmentation="dihedral", bapc_p=1.0)
    ds2 = CropDataset(src, 32, seed=5, augmentation="dihedral", bapc_p=1.0, cache=True)
    for g in (0, 4, 7):
        a, b = ds[g], ds2[g]
        assert all(torch.equal(a[k], b[k]) for k in ("blur", "sharp", "mask"))
        assert a["blur"].shape == (3, 32, 32) and a["mask"].shape == (1, 32, 32)
        # blur == sharp outside the mask (the synthetic blur is local): same crop and transform
        outside = a["mask"][0] == 0
        assert torch.allclose(a["blur"][:, outside], a["sharp"][:, outside], atol=1 / 255)
        assert a["mask"].sum() > 0                       # BAPC with p=1 (every mask is 25 %)
    assert not torch.equal(ds[0]["blur"], ds[3]["blur"])
    assert sorted(ds.pair_index(g) for g in range(3)) == [0, 1, 2]
    assert sorted(ds.pair_index(g) for g in range(3, 6)) == [0, 1, 2]
    other = CropDataset(src, 32, seed=6, augmentation="dihedral")
    assert any(not torch.equal(ds[g]["blur"], other[g]["blur"]) for g in range(3))


def test_bad_inputs(tmp_path):
    with pytest.raises(MissingInput):
        load_source(tmp_path / "none")
    root = make_dataset(tmp_path / "g", n=2, local=False)
    with pytest.raises(MissingInput, match="needs local-blur masks.*lodetools masks --data"):
        load_source(root, "train", need_mask=True)          # global-blur data has no masks: name the fix
    ds = CropDataset(load_source(root, "train"), 128, seed=0)
    with pytest.raises(BadInput, match="smaller than the crop"):
        ds[0]
    (tmp_path / "g" / "train" / "scene0" / "sharp" / "0000.png").write_bytes(b"not a png")
    corrupt = CropDataset(load_source(root, "train"), 32, seed=0)
    with pytest.raises(BadInput):
        [corrupt[g] for g in range(2)]                   # one of the two pairs is corrupt


def test_sample_batches_split_ranks_like_one_big_batch():
    from lodetools.train.datasets import SampleBatches
    one = list(SampleBatches(range(3, 6), 4))
    ranks = [list(SampleBatches(range(3, 6), 2, rank=r, world=2)) for r in (0, 1)]
    assert [a + b for a, b in zip(*ranks)] == one == [[12, 13, 14, 15], [16, 17, 18, 19], [20, 21, 22, 23]]
    alt = SampleBatches(range(0, 6), 1, stream=lambda t: t // 2, keep=lambda t: t % 2 == 1)
    assert list(alt) == [[0], [1], [2]] and len(alt) == 3
