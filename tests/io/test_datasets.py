"""The layout reader (lodetools.io.datasets) on tiny copies of each published dataset, and COCO."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support import datasets_world as world
from lodetools.errors import BadConfig, BadInput, MissingInput
from lodetools.io.datasets import detect_layout, parse_layout, read_dataset, scan_dataset, summarize
from lodetools.io.images import read_mask
from lodetools.io.layout import read_pairs

#: layout -> {split: (pairs, scenes, with_sharp, with_mask)} as the makers write them
COUNTS = {
    "gopro": {"train": (6, 2, 6, 0), "test": (3, 1, 3, 0)},
    "reds": {"train": (4, 2, 4, 0), "val": (2, 1, 2, 0), "test": (2, 1, 0, 0)},
    "realblur": {"train": (8, 4, 8, 0), "test": (4, 2, 4, 0)},
    "hide": {"train": (2, 1, 2, 0), "test": (3, 2, 3, 0)},
    "reloblur": {"train": (6, 3, 6, 6), "test": (2, 1, 2, 2)},
    "bladenet": {"train": (4, 1, 4, 4), "test": (2, 1, 2, 2)},
    "plain": {"train": (4, 2, 4, 2), "test": (2, 1, 2, 2)},
}


@pytest.mark.parametrize("name", list(COUNTS))
def test_detect_and_read_every_layout(dataset_worlds, name):
    root, truth = dataset_worlds[name]
    before = world.tree(root)
    assert detect_layout(root)[0] == name
    scan = scan_dataset(root)
    assert scan.problems == []
    got = {s: (c["pairs"], c["scenes"], c["with_sharp"], c["with_mask"]) for s, c in summarize(scan).items()}
    assert got == COUNTS[name]
    assert {p.key for p in scan.pairs} == set(truth)
    for p in scan.pairs:
        t = truth[p.key]
        # every file is the one the maker wrote for this key (pixels compared, not names)
        assert np.array_equal(np.asarray(Image.open(p.blur).convert("RGB")), t.blur)
        if t.sharp is None:
            assert p.sharp is None
        else:
            assert np.array_equal(np.asarray(Image.open(p.sharp).convert("RGB")), t.sharp)
        if t.mask is None:
            assert p.mask is None
        else:
            assert np.array_equal(read_mask(p.mask), t.mask)
    assert world.tree(root) == before  # read in place, nothing written


def test_read_pairs_goes_through_the_reader(dataset_worlds):
    root, truth = dataset_worlds["reloblur"]
    pairs = read_pairs(root, split="test", require=("blur", "sharp", "mask"))
    assert [p.key for p in pairs] == ["test/s09/seq1/1", "test/s09/seq1/2"]
    assert pairs[0].record["layout"] == "reloblur"
    assert pairs[0].record["files"]["mask"] == "masks/test/s09/seq1/1.png"


def test_variants(dataset_worlds):
    root, truth = dataset_worlds["gopro"]
    key = "train/GOPR0372_07_00/000047"
    gamma = {p.key: p for p in read_dataset(root, layout="gopro:blur_gamma", split="train")}
    assert gamma[key].blur.parent.name == "blur_gamma"
    assert np.array_equal(np.asarray(Image.open(gamma[key].blur)), 255 - truth[key].blur)
    root, truth = dataset_worlds["reds"]
    jpeg = read_dataset(root, layout="reds:blur_jpeg", split="train")
    assert len(jpeg) == 4 and all(p.blur.suffix == ".jpg" for p in jpeg)
    root, truth = dataset_worlds["realblur"]
    r = read_dataset(root, layout="realblur:R", split="test")
    assert {p.scene for p in r} == {"RealBlur-R/scene101"} and len(r) == 2
    with pytest.raises(BadConfig, match="no variant"):
        parse_layout("gopro:blurry")
    with pytest.raises(BadConfig, match="unknown layout"):
        parse_layout("kitti")


def test_realblur_list_pairs_gt_first(dataset_worlds):
    root, truth = dataset_worlds["realblur"]
    for p in read_dataset(root, split="train"):
        assert p.blur.parent.name == "blur" and p.sharp.parent.name == "gt"
        assert p.blur.name.split("_")[1] == p.sharp.name.split("_")[1]
        assert p.record["list_file"].startswith(f"RealBlur_{p.scene[9]}_train")


def test_reds_test_set_has_no_sharp(dataset_worlds):
    root, _ = dataset_worlds["reds"]
    assert len(read_dataset(root, split="test", require=("blur",))) == 2
    with pytest.raises(MissingInput, match="has a sharp image"):
        read_dataset(root, split="test")


def test_mask_free_dataset_names_the_fix(dataset_worlds):
    root, _ = dataset_worlds["gopro"]
    with pytest.raises(MissingInput, match=r"lodetools masks --data .* --out DIR.*--masks DIR"):
        read_dataset(root, split="train", require=("blur", "sharp", "mask"))


def test_external_masks_folder(dataset_worlds, tmp_path):
    root, truth = dataset_worlds["gopro"]
    for key, t in truth.items():
        split, scene, item = key.split("/")
        world.write_png(tmp_path / split / scene / "mask" / f"{item}.png", t.blur[..., 0] > 128)
    pairs = read_dataset(root, split="train", require=("blur", "sharp", "mask"), masks=tmp_path)
    assert len(pairs) == 6
    assert all(np.array_equal(read_mask(p.mask), truth[p.key].blur[..., 0] > 128) for p in pairs)


def test_plain_unsplit_folder(tmp_path):
    truth = {}
    for k in range(2):
        blur, sharp, _ = world.make_triplet(k)
        world.write_png(tmp_path / "mine" / "blur" / f"{k}.png", blur)
        world.write_png(tmp_path / "mine" / "gt" / f"{k}.png", sharp)
    scan = scan_dataset(tmp_path / "mine")
    assert scan.layout == "plain" and scan.splits == ["all"]
    assert [p.key for p in scan.pairs] == ["all/mine/0", "all/mine/1"]
    with pytest.raises(MissingInput, match="no split 'test'.*splits here: all; use --split all"):
        read_dataset(tmp_path / "mine", split="test")


# ----------------------------------------------------------------------------- bad input

def _copy(dataset_worlds, name, tmp_path) -> Path:
    src, _ = dataset_worlds[name]
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def test_realblur_list_naming_a_missing_file(dataset_worlds, tmp_path):
    root = _copy(dataset_worlds, "realblur", tmp_path)
    lst = root / "RealBlur_J_test_list.txt"
    lines = lst.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace("blur_2.png", "blur_9.png")
    lst.write_text("".join(lines))
    with pytest.raises(MissingInput) as e:
        read_dataset(root, split="test")
    assert "RealBlur_J_test_list.txt line 2 names a missing blurred image" in e.value.message
    assert e.value.path.endswith("scene101/blur/blur_9.png")
    assert len(read_dataset(root, split="train")) == 8  # the other split is still readable
    scan = scan_dataset(root)
    assert len(scan.problems) == 1


def test_hide_blur_without_gt_partner(dataset_worlds, tmp_path):
    root = _copy(dataset_worlds, "hide", tmp_path)
    os.remove(root / "HIDE_dataset" / "GT" / "7fromGOPR0997.MP4.png")
    with pytest.raises(MissingInput, match=r"no GT/ partner \(expected GT/7fromGOPR0997.MP4.png\)") as e:
        read_dataset(root, split="test")
    assert e.value.path.endswith("test-long-shot/7fromGOPR0997.MP4.png")
    # deblurring needs no ground truth
    assert len(read_dataset(root, split="test", require=("blur",))) == 3


def test_mask_of_another_size(dataset_worlds, tmp_path):
    root = _copy(dataset_worlds, "reloblur", tmp_path)
    bad = root / "masks" / "train" / "s01" / "seq2" / "1.png"
    world.write_png(bad, np.zeros((world.H, world.W + 2), bool))
    with pytest.raises(BadInput, match=f"mask is {world.W + 2}x{world.H} but its blurred image is "
                                       f"{world.W}x{world.H}") as e:
        read_dataset(root, split="train", require=("blur", "sharp", "mask"))
    assert Path(e.value.path) == bad


def test_ambiguous_root(dataset_worlds, tmp_path):
    root = _copy(dataset_worlds, "realblur", tmp_path)
    shutil.copytree(dataset_worlds["gopro"][0] / "GOPRO_Large", root / "GOPRO_Large")
    with pytest.raises(BadInput, match="ambiguous dataset root: it looks like gopro and realblur"):
        detect_layout(root)
    assert len(read_dataset(root, layout="gopro", split="test")) == 3
    assert len(read_dataset(root, layout="realblur", split="test")) == 4


def test_empty_split(dataset_worlds, tmp_path):
    root = _copy(dataset_worlds, "realblur", tmp_path)
    for v in "JR":
        (root / f"RealBlur_{v}_test_list.txt").write_text("")
    with pytest.raises(MissingInput, match="split 'test' is empty") as e:
        read_dataset(root, split="test")
    assert e.value.path.endswith("_test_list.txt")
    root = _copy(dataset_worlds, "gopro", tmp_path)
    with pytest.raises(MissingInput, match=r"no split 'val' in this gopro dataset \(splits here: test, train\)"):
        read_dataset(root, split="val")


def test_unrecognised_and_missing_roots(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(MissingInput, match="not a lodetools dataset .*nor a known published layout"):
        detect_layout(tmp_path / "x")
    with pytest.raises(MissingInput, match="dataset folder not found"):
        read_pairs(tmp_path / "nope")
    with pytest.raises(MissingInput, match="not a hide dataset root"):
        read_dataset(tmp_path / "x", layout="hide")


def test_bladenet_counts_must_match(dataset_worlds, tmp_path):
    root = _copy(dataset_worlds, "bladenet", tmp_path)
    os.remove(root / "train" / "sharp" / "0003_gt.png")
    with pytest.raises(BadInput, match="blur/ holds 4 images but sharp/ 3; BladeNet pairs them by sorted name"):
        read_dataset(root, split="train")


# ----------------------------------------------------------------------------- COCO

def test_rle_string_hand_cases():
    from lodetools.io.coco import decode_rle, rle_string_to_counts
    # the first three runs as they are: 3 -> '3', 2 -> '2', 4 -> '4'
    assert rle_string_to_counts("324") == [3, 2, 4]
    # the fourth run 4 is stored as 4 - 6 = -2: 5-bit two's complement 30 (sign bit set) -> chr(48 + 30) = 'N'
    assert rle_string_to_counts("263N") == [2, 6, 3, 4]
    # the fourth run 9 is stored as 9 - 2 = 7 -> '7'
    assert rle_string_to_counts("1237") == [1, 2, 3, 9]
    # 100 = 4 + 3 * 32: 'T' (48 + 32 + 4, more follows) then '3'
    assert rle_string_to_counts("T3") == [100]
    m = decode_rle({"size": [3, 3], "counts": "324"})
    assert m.tolist() == [[False, True, False], [False, True, False], [False, False, False]]
    with pytest.raises(ValueError, match="add up"):
        decode_rle({"size": [3, 4], "counts": [3, 2, 4]})


def test_polygon_fill_hand_case():
    from lodetools.io.coco import polygons_to_mask
    # a square with corners on pixel edges covers exactly the pixels inside
    m = polygons_to_mask([[2, 1, 6, 1, 6, 4, 2, 4]], 6, 8)
    exp = np.zeros((6, 8), bool)
    exp[1:4, 2:6] = True
    assert np.array_equal(m, exp)
    # a right triangle (0,0)-(4,0)-(0,4): pixel centres with x + y < 4
    t = polygons_to_mask([[0, 0, 4, 0, 0, 4]], 5, 5)
    yy, xx = np.mgrid[:5, :5]
    assert np.array_equal(t, (xx + 0.5) + (yy + 0.5) < 4)


def _make_coco(root: Path):
    from skimage import data
    img = data.astronaut()[100:140:1, 200:250]  # 40x50
    (root / "val2017").mkdir(parents=True)
    Image.fromarray(img).save(root / "val2017" / "000000000007.png")
    rect = np.zeros((40, 50), bool)
    rect[5:25, 10:30] = True
    blob = np.zeros((40, 50), bool)
    blob[20:36, 30:46] = True
    blob[28:36, 30:38] = False
    cols = blob.T.ravel()  # column-major runs starting with zeros
    change = np.flatnonzero(np.diff(cols.astype(np.int8))) + 1
    runs = np.diff(np.concatenate([[0], change, [cols.size]])).tolist()
    anns = [
        {"id": 11, "image_id": 7, "category_id": 18, "iscrowd": 0, "area": 400.0,
         "bbox": [10, 5, 20, 20], "segmentation": [[10, 5, 30, 5, 30, 25, 10, 25]]},
        {"id": 12, "image_id": 7, "category_id": 1, "iscrowd": 0, "area": float(blob.sum()),
         "bbox": [30, 20, 16, 16], "segmentation": {"size": [40, 50], "counts": runs}},
        {"id": 13, "image_id": 7, "category_id": 1, "iscrowd": 1, "area": 500.0,
         "bbox": [0, 0, 10, 10], "segmentation": {"size": [40, 50], "counts": [0, 2000]}},
        {"id": 14, "image_id": 7, "category_id": 1, "iscrowd": 0, "area": 4.0,
         "bbox": [0, 0, 2, 2], "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]},
    ]
    doc = {"images": [{"id": 7, "file_name": "000000000007.png", "height": 40, "width": 50}],
           "annotations": anns, "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}]}
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(doc))
    return img, rect, blob


def test_coco_cutouts(tmp_path):
    from lodetools.io.coco import index_instances, load_cutout
    from lodetools.io.voc import VocCutout
    img, rect, blob = _make_coco(tmp_path)
    refs = index_instances(tmp_path, split="val2017", min_area=100)
    assert [(r.instance_id, r.class_id, r.class_name) for r in refs] == [(11, 18, "dog"), (12, 1, "person")]
    assert refs[0].source == "000000000007#11"
    for ref, m in zip(refs, (rect, blob)):
        cut = load_cutout(tmp_path, ref, split="val2017", pad=1)
        assert isinstance(cut, VocCutout) and cut.source == ref.source and cut.class_id == ref.class_id
        ys, xs = np.nonzero(m)
        y0, x0, y1, x1 = ys.min() - 1, xs.min() - 1, ys.max() + 2, xs.max() + 2
        assert np.array_equal(cut.alpha > 0, m[y0:y1, x0:x1])
        assert np.allclose(cut.rgb, img[y0:y1, x0:x1] / 255.0, atol=1e-6)
    assert len(index_instances(tmp_path, split="val2017", min_area=100, include_crowd=True)) == 3


def test_coco_bad_input(tmp_path):
    from lodetools.io.coco import index_instances
    _make_coco(tmp_path)
    with pytest.raises(MissingInput, match=r"no instances_train2017.json \(found: instances_val2017.json\)"):
        index_instances(tmp_path, split="train2017")
    os.remove(tmp_path / "val2017" / "000000000007.png")
    with pytest.raises(MissingInput, match="image 000000000007.png is annotated but missing"):
        index_instances(tmp_path, split="val2017", min_area=100)
