"""The synthetic mini PASCAL VOC 2012 and the VOC reader (lodetools.sim.voc, lodetools.io.voc)."""

import hashlib
import shutil

import numpy as np
import pytest
from PIL import Image

from lodetools.errors import BadInput, MissingInput
from lodetools.io.images import read_image
from lodetools.io.voc import (
    cut_instance, find_voc_root, index_instances, list_ids, load_cutout, read_label_png, voc_palette,
)
from lodetools.sim.voc import write_voc


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    out = tmp_path_factory.mktemp("voc")
    truth = write_voc(out, seed=5, preset="test")
    return out, truth


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_layout_and_lists(voc):
    out, truth = voc
    v = out / "VOCdevkit" / "VOC2012"
    names = [im["name"] for im in truth["images"]]
    for d, ext in (("JPEGImages", ".jpg"), ("SegmentationClass", ".png"), ("SegmentationObject", ".png")):
        assert sorted(p.name for p in (v / d).iterdir()) == sorted(n + ext for n in names)
    train = (v / "ImageSets/Segmentation/train.txt").read_text().split()
    val = (v / "ImageSets/Segmentation/val.txt").read_text().split()
    assert train and val and not set(train) & set(val) and sorted(train + val) == sorted(names)
    assert find_voc_root(out) == v and find_voc_root(v) == v
    assert list_ids(out, "trainval") == names and list_ids(out, "val") == val


def test_same_seed_same_bytes_other_seed_differs(voc, tmp_path):
    out, _ = voc
    write_voc(tmp_path / "a", seed=5, preset="test")
    write_voc(tmp_path / "b", seed=6, preset="test")
    assert _digest(tmp_path / "a") == _digest(out)
    assert _digest(tmp_path / "b") != _digest(out)


def test_palette_pngs_hold_the_expected_indices(voc):
    """Checked with PIL alone against the returned ground truth."""
    out, truth = voc
    v = out / "VOCdevkit" / "VOC2012"
    for im in truth["images"]:
        cls_img = Image.open(v / "SegmentationClass" / f"{im['name']}.png")
        obj_img = Image.open(v / "SegmentationObject" / f"{im['name']}.png")
        assert cls_img.mode == "P" and obj_img.mode == "P"
        pal = np.array(obj_img.getpalette()[:768], np.uint8).reshape(256, 3)
        # the VOC colour map: 1 aeroplane dark red, 15 person, 255 the void colour
        assert tuple(pal[1]) == (128, 0, 0) and tuple(pal[15]) == (192, 128, 128)
        assert tuple(pal[255]) == (224, 224, 192) and tuple(pal[0]) == (0, 0, 0)
        np.testing.assert_array_equal(pal, voc_palette())
        cls, obj = np.asarray(cls_img), np.asarray(obj_img)
        jpg = Image.open(v / "JPEGImages" / f"{im['name']}.jpg")
        assert jpg.size == cls_img.size == obj_img.size and jpg.mode == "RGB"
        k = len(im["instances"])
        assert set(np.unique(obj)) == {0, 255, *range(1, k + 1)}
        np.testing.assert_array_equal(cls == 255, obj == 255)
        np.testing.assert_array_equal(cls == 0, obj == 0)
        for inst in im["instances"]:
            sel = obj == inst["id"]
            assert sel.sum() == inst["area"] > 0
            assert set(np.unique(cls[sel])) == {inst["class_id"]}
            if inst["source"].endswith("/horse"):
                assert inst["class_id"] == 13
        # the void band separates every object from the background and from each other
        for a, b in ((obj[1:], obj[:-1]), (obj[:, 1:], obj[:, :-1])):
            touch = (a != b) & (a != 255) & (b != 255)
            assert not touch.any()


def test_reader_indexes_the_truth_and_cuts_instances(voc):
    out, truth = voc
    refs = index_instances(out, split="trainval", min_area=1)
    expect = [(im["name"], i["id"], i["class_id"], i["area"]) for im in truth["images"] for i in im["instances"]]
    assert [(r.image_id, r.instance_id, r.class_id, r.area) for r in refs] == expect
    big = index_instances(out, min_area=200)
    assert [r.area for r in big] == [a for *_, a in expect if a >= 200] and len(big) < len(refs)
    r = refs[0]
    v = out / "VOCdevkit" / "VOC2012"
    cut = load_cutout(out, r)
    y0, x0, y1, x1 = r.bbox
    obj = np.asarray(Image.open(v / "SegmentationObject" / f"{r.image_id}.png"))
    jpg = np.asarray(Image.open(v / "JPEGImages" / f"{r.image_id}.jpg"), np.float32) / 255
    inner = (slice(1, -1), slice(1, -1))
    np.testing.assert_array_equal(cut.alpha[inner], (obj[y0:y1, x0:x1] == r.instance_id).astype(np.float32))
    assert cut.alpha[0].sum() == cut.alpha[-1].sum() == cut.alpha[:, 0].sum() == 0
    assert np.abs(cut.rgb[inner] - jpg[y0:y1, x0:x1]).max() < 1.5 / 255  # cv2 vs PIL JPEG decoding
    assert cut.class_id == r.class_id and cut.source == f"{r.image_id}#{r.instance_id}"


def test_cut_instance_at_the_image_edge_is_padded():
    img = np.random.default_rng(0).random((10, 12, 3), dtype=np.float32)
    obj = np.zeros((10, 12), np.uint8)
    obj[0:4, 9:12] = 1
    from lodetools.io.voc import instances_of

    (ref,) = instances_of(obj, obj, "x")
    assert ref.bbox == (0, 9, 4, 12) and ref.area == 12 and ref.class_id == 1
    cut = cut_instance(img, obj, ref, pad=2)
    assert cut.alpha.shape == (8, 7) and cut.alpha.sum() == 12
    np.testing.assert_array_equal(cut.rgb[2:6, 2:5], img[0:4, 9:12])


def test_rgb_label_png_maps_back_to_indices(tmp_path):
    lab = np.array([[0, 1, 15], [255, 20, 3]], np.uint8)
    Image.fromarray(voc_palette()[lab]).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_label_png(tmp_path / "rgb.png"), lab)
    bad = voc_palette()[lab].copy()
    bad[0, 0] = (1, 2, 3)
    Image.fromarray(bad).save(tmp_path / "bad.png")
    with pytest.raises(BadInput, match="outside the VOC colour map"):
        read_label_png(tmp_path / "bad.png")


def test_bad_voc_inputs(voc, tmp_path):
    src, truth = voc
    root = tmp_path / "v"
    shutil.copytree(src, root)
    v = root / "VOCdevkit" / "VOC2012"
    name = truth["images"][1]["name"]
    with pytest.raises(MissingInput, match="not a PASCAL VOC"):
        find_voc_root(tmp_path)
    with pytest.raises(BadInput, match="no object instances of at least"):
        index_instances(root, min_area=10**6)  # an empty instance list is an error
    (v / "SegmentationObject" / f"{name}.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    with pytest.raises(BadInput, match="cannot decode label PNG") as e:
        index_instances(root, min_area=1)
    assert name in str(e.value)
    skipped = []
    refs = index_instances(root, min_area=1, skipped=skipped)
    assert len(skipped) == 1 and f"{name}.png" in skipped[0] and all(r.image_id != name for r in refs)
    shutil.copy(src / "VOCdevkit/VOC2012/SegmentationObject" / f"{name}.png", v / "SegmentationObject")
    (v / "JPEGImages" / f"{name}.jpg").unlink()
    with pytest.raises(MissingInput, match="JPEG is missing"):
        index_instances(root, min_area=1)
    shutil.copy(src / "VOCdevkit/VOC2012/JPEGImages" / f"{name}.jpg", v / "JPEGImages")
    cls = read_label_png(v / "SegmentationClass" / f"{name}.png")
    Image.fromarray(np.where(cls == 255, 255, 0).astype(np.uint8)).save(v / "SegmentationClass" / f"{name}.png")
    with pytest.raises(BadInput, match="has no class"):
        index_instances(root, min_area=1)
    (v / "ImageSets/Segmentation/val.txt").unlink()
    with pytest.raises(MissingInput, match="val.txt"):
        list_ids(root, "val")
    # a corrupt JPEG surfaces when the cut-out is loaded
    refs = index_instances(src, min_area=1)
    (v / "JPEGImages" / f"{refs[0].image_id}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(BadInput, match="cannot decode"):
        load_cutout(root, refs[0])
    assert read_image(src / "VOCdevkit/VOC2012/JPEGImages" / f"{refs[0].image_id}.jpg").shape == (64, 96, 3)


def test_boundary_band_by_hand():
    from lodetools.sim.voc import boundary_band

    lab = np.zeros((5, 5), np.uint8)
    lab[2, 2] = 1  # one object pixel: it and its 4 neighbours are on the boundary
    expect = np.zeros((5, 5), bool)
    expect[2, 1:4] = expect[1:4, 2] = True
    np.testing.assert_array_equal(boundary_band(lab, 0), expect)
    assert boundary_band(lab, 1).sum() == 21  # the cross dilated by a 3x3 square: all but the 4 corners
    lab[:] = 0
    lab[:, 3:] = 2  # a vertical edge between columns 2 and 3
    np.testing.assert_array_equal(np.nonzero(boundary_band(lab, 0).all(axis=0))[0], [2, 3])
