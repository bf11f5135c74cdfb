"""Local Blur Synthesis (lodetools.synth.lbs) and the ``lbs`` pipeline on the mini VOC."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lodetools.color.crf import CRF
from lodetools.errors import BadConfig, BadInput
from lodetools.io.images import read_image, read_image_native, read_mask, write_image
from lodetools.io.manifest import read_manifest
from lodetools.pipelines.lbs import find_backgrounds
from lodetools.sim.photos import composite, linear_photo, make_cutout, render_layer
from lodetools.sim.voc import write_voc
from lodetools.synth.lbs import (
    LBSParams, linear_cutout, local_blur_sample, odd_frame_count, random_trajectory, synthesize_linear,
)

ROOT = Path(__file__).resolve().parents[2]
H, W = 64, 96


def _objects(rng, n_moving=2, n_static=1):
    mov = [make_cutout(rng, int(rng.integers(14, 28))) for _ in range(n_moving)]
    st = [make_cutout(rng, int(rng.integers(12, 20))) for _ in range(n_static)]
    return mov, st


@pytest.mark.parametrize("seed,signed", [(0, False), (1, True), (2, False)])
def test_sample_matches_whole_frame_compositing(seed, signed):
    """Against an independent float64 reference: every frame composited on the whole canvas
    with lodetools.sim.photos, blur = (mean frames)**(1/2.2), sharp = middle frame,
    mask = OR of alpha > 0 of the moving objects over all frames."""
    rng = np.random.default_rng(seed)
    bg = linear_photo("chelsea", (H, W))
    mov, st = _objects(rng)
    params = LBSParams(signed_translation=signed, translate_px=1.5)
    s = local_blur_sample(rng, bg, mov, st, params=params)
    assert s.n_frames % 2 == 1 and 7 <= s.n_frames <= 13
    frames, ref_mask = [], np.zeros((H, W), bool)
    for t in range(s.n_frames):
        layers = [render_layer(c, M, (H, W)) for c, M in zip(st, s.static_poses)]
        for c, traj in zip(mov, s.trajectories):
            layers.append(render_layer(c, traj[t], (H, W)))
            ref_mask |= layers[-1][1] > 0
        frames.append(composite(bg, layers).astype(np.float64))
    ref_blur = np.clip(np.mean(frames, axis=0), 0, 1) ** (1 / 2.2)
    ref_sharp = np.clip(frames[s.n_frames // 2], 0, 1) ** (1 / 2.2)
    np.testing.assert_array_equal(s.mask, ref_mask)
    assert ref_mask.any() and not ref_mask.all()
    assert np.abs(s.blur - ref_blur).max() < 1e-4
    assert np.abs(s.sharp - ref_sharp).max() < 1e-4


def test_outside_the_mask_blur_equals_sharp_and_static_objects_stay_sharp():
    rng = np.random.default_rng(2)
    bg = linear_photo("coffee", (H, W))
    mov, st = _objects(rng, n_static=2)
    s = local_blur_sample(rng, bg, mov, st, params=LBSParams(frames_min=13, frames_max=13))
    q = lambda x: np.floor(np.clip(x, 0, 1) * 255 + 0.5).astype(int)  # noqa: E731
    diff = np.abs(q(s.blur) - q(s.sharp)).max(axis=2)
    assert diff[~s.mask].max() <= 1 and (diff[~s.mask] > 0).mean() < 0.01  # identical up to rounding
    assert diff[s.mask].max() > 10  # and the moving objects are blurred
    static_alpha = np.zeros((H, W))
    for c, M in zip(st, s.static_poses):
        static_alpha = np.maximum(static_alpha, render_layer(c, M, (H, W))[1])
    solid = (static_alpha > 0.99) & ~s.mask
    assert solid.sum() > 50
    assert diff[solid].max() <= 1
    plain = CRF("gamma").to_display(bg)
    assert np.abs(s.sharp[solid] - plain[solid]).max() > 0.1  # the static objects are really there


def test_mask_covers_every_moving_pixel_of_every_frame_only():
    """Static objects are not in the mask; an object that never moves has a mask = its footprint."""
    rng = np.random.default_rng(3)
    bg = linear_photo("rocket", (H, W))
    mov, st = _objects(rng, n_moving=1, n_static=1)
    M = np.array([[1.0, 0, 30], [0, 1.0, 20]])
    traj = np.stack([M] * 5)
    res = synthesize_linear(bg, mov, [traj], st, [np.array([[1.0, 0, 5], [0, 1.0, 5]])])
    foot = render_layer(mov[0], M, (H, W))[1] > 0
    np.testing.assert_array_equal(res.mask, foot)
    np.testing.assert_allclose(res.blur, res.sharp, atol=1e-6)  # no motion, no blur


def test_apart_and_overlapping_movers_match_whole_frame_compositing():
    """Objects 0 and 2 overlap (composited together, 2 over 0), object 1 is elsewhere."""
    rng = np.random.default_rng(4)
    bg = linear_photo("astronaut", (H, W))
    mov = [make_cutout(rng, 18) for _ in range(3)]
    params = LBSParams(p_scale=1, p_rotate=1, translate_px=1.0)
    starts = [np.array([[1.0, 0, x], [0, 1.0, y]]) for x, y in ((5, 5), (70, 40), (12, 9))]
    trajs = [random_trajectory(rng, s_, c.alpha.shape, 9, params) for s_, c in zip(starts, mov)]
    res = synthesize_linear(bg, mov, trajs)
    frames = [composite(bg, [render_layer(c, tr[t], (H, W)) for c, tr in zip(mov, trajs)]) for t in range(9)]
    np.testing.assert_allclose(res.blur, np.mean(frames, axis=0), atol=1e-5)
    np.testing.assert_allclose(res.sharp, frames[4], atol=1e-5)
    ref_mask = np.zeros((H, W), bool)
    for c, tr in zip(mov, trajs):
        for M in tr:
            ref_mask |= render_layer(c, M, (H, W))[1] > 0
    np.testing.assert_array_equal(res.mask, ref_mask)


def test_trajectory_steps_follow_the_code_magnitudes():
    rng = np.random.default_rng(11)
    shape = (21, 17)
    start = np.array([[1.0, 0.0, 40.0], [0.0, 1.0, 30.0]])
    # translation only: each step moves 0 or +1 px per axis, never anything else
    tr = random_trajectory(rng, start, shape, 60, LBSParams(p_scale=0, p_rotate=0))
    steps = np.diff(tr[:, :, 2], axis=0)
    assert set(np.unique(steps)) == {0.0, 1.0}
    np.testing.assert_array_equal(tr[:, :, :2], np.broadcast_to(start[:, :2], tr[:, :, :2].shape))
    # scaling and rotation every step, no translation: about the object's own centre, within +-1 % / +-0.3 deg
    p = LBSParams(translate_px=0, p_scale=1, p_rotate=1)
    tr = random_trajectory(rng, start, shape, 60, p)
    c0 = np.array([(shape[1] - 1) / 2, (shape[0] - 1) / 2, 1.0])
    np.testing.assert_allclose(tr @ c0, np.broadcast_to(start @ c0, (60, 2)), atol=1e-9)
    A = tr[:, :, :2]
    scale = np.sqrt(np.linalg.det(A))
    angle = np.degrees(np.arctan2(A[:, 1, 0], A[:, 0, 0]))
    assert np.all(np.abs(scale[1:] / scale[:-1] - 1) <= 0.01 + 1e-12)
    assert np.all(np.abs(np.diff(angle)) <= 0.3 + 1e-9) and np.abs(np.diff(angle)).max() > 0.05
    # signed translation: one fixed direction per object and axis
    tr = random_trajectory(np.random.default_rng(2), start, shape, 40, LBSParams(signed_translation=True,
                                                                                 p_scale=0, p_rotate=0))
    steps = np.diff(tr[:, :, 2], axis=0)
    for axis in (0, 1):
        vals = set(np.unique(steps[:, axis])) - {0.0}
        assert len(vals) == 1 and vals <= {-1.0, 1.0}


def test_frame_counts_are_odd_and_cover_the_range():
    rng = np.random.default_rng(0)
    assert {odd_frame_count(rng, 7, 13) for _ in range(300)} == {7, 9, 11, 13}
    assert {odd_frame_count(rng, 5, 21) for _ in range(600)} == set(range(5, 22, 2))
    with pytest.raises(BadConfig):
        LBSParams(frames_min=8, frames_max=8).check()
    with pytest.raises(BadConfig):
        LBSParams(static_min=3, static_max=1).check()


def test_linear_cutout_rescales_by_1_2_without_bleeding():
    rgb = np.zeros((20, 30, 3), np.float32)
    rgb[...] = (0.5, 0.25, 1.0)
    rgb[:, :5] = 0.0  # colours outside the object must not leak into its edge
    alpha = np.zeros((20, 30), np.float32)
    alpha[1:-1, 5:-1] = 1.0
    cut = linear_cutout(rgb, alpha, CRF("gamma", gamma=2.2), scale=1.2)
    assert cut.alpha.shape == (24, 36) and cut.rgb.shape == (24, 36, 3)
    inside = cut.alpha > 0.01
    np.testing.assert_allclose(cut.rgb[inside], np.broadcast_to(np.float32([0.5, 0.25, 1.0]) ** 2.2,
                                                                (inside.sum(), 3)), rtol=1e-4)
    assert abs(cut.alpha.sum() - 1.44 * alpha.sum()) < 0.05 * alpha.sum()


# ---------------------------------------------------------------- pipeline / CLI


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("lbs")
    truth = write_voc(root / "voc", seed=5, preset="test")
    crf = CRF("gamma")
    for name in ("coffee", "chelsea"):
        write_image(root / "bg" / f"{name}.png", crf.to_display(linear_photo(name, (H, W))))
    write_image(root / "tiny" / "t.png", crf.to_display(linear_photo("rocket", (12, 12))))
    write_image(root / "mid" / "m.png", crf.to_display(linear_photo("rocket", (26, 26))))
    return root, truth


def _run(*args):
    from lodetools.commands.lbs import command

    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=True)


def _base(world, out, *extra):
    root, _ = world
    return ["--voc", root / "voc", "--backgrounds", root / "bg", "--out", out, "--count", 4,
            "--min-area", 40, "--quiet", *extra]


def _hashes(out):
    return {k: r["sha256"] for k, r in read_manifest(out).items()}


def test_cli_deterministic_serial_equals_workers(world, tmp_path):
    r = _run(*_base(world, tmp_path / "a", "--seed", 1))
    assert r.exit_code == 0, r.output
    r = _run(*_base(world, tmp_path / "b", "--seed", 1, "--workers", 2))
    assert r.exit_code == 0, r.output
    r = _run(*_base(world, tmp_path / "c", "--seed", 2))
    assert r.exit_code == 0, r.output
    a = _hashes(tmp_path / "a")
    assert len(a) == 4 and a == _hashes(tmp_path / "b")
    assert a != _hashes(tmp_path / "c")
    r = _run(*_base(world, tmp_path / "a", "--seed", 1))  # a rerun resumes: nothing to do
    assert r.exit_code == 0 and "0 done, 4 already done" in r.output


def test_cli_outputs_pairs_masks_and_provenance(world, tmp_path):
    root, truth = world
    r = _run(*_base(world, tmp_path / "o", "--recipe", "bladenet-lbs", "--frames-min", 5))
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "o" / "dataset.json").read_text())
    assert doc["parameters"]["synthesis"]["frames_min"] == 5 and doc["parameters"]["synthesis"]["frames_max"] == 13
    assert doc["parameters"]["synthesis"]["object_scale"] == 1.2 and doc["recipe"].endswith("bladenet-lbs.toml")
    classes = {f"{im['name']}#{i['id']}": i["class_id"] for im in truth["images"] for i in im["instances"]}
    for rec in read_manifest(tmp_path / "o").values():
        prov = rec["provenance"]
        roles = [o["role"] for o in prov["objects"]]
        assert roles.count("moving") == 2 and 1 <= roles.count("static") <= 2
        assert prov["frames"] % 2 == 1 and 5 <= prov["frames"] <= 13
        for o in prov["objects"]:
            assert o["class_id"] == classes[o["voc"]]
        assert prov["class_ids"] == [o["class_id"] for o in prov["objects"] if o["role"] == "moving"]
        blur = read_image_native(tmp_path / "o" / rec["files"]["blur"]).astype(int)
        sharp = read_image_native(tmp_path / "o" / rec["files"]["sharp"]).astype(int)
        mask = read_mask(tmp_path / "o" / rec["files"]["mask"])
        assert blur.shape == (H, W, 3) and mask.any()
        assert np.abs(blur - sharp).max(axis=2)[~mask].max() <= 1
        assert abs(mask.mean() - prov["blurred_fraction"]) < 1e-5


def test_backgrounds_from_a_folder_or_a_paired_dataset(world, tmp_path):
    root, _ = world
    assert [p.name for p in find_backgrounds(root / "bg")] == ["chelsea.png", "coffee.png"]
    for role in ("train_blur", "train_sharp"):
        write_image(tmp_path / "reds" / role / "000" / "00000000.png", np.zeros((8, 8, 3), np.float32))
    assert [p.parent.parent.name for p in find_backgrounds(tmp_path / "reds")] == ["train_sharp"]
    r = _run(*_base(world, tmp_path / "p", "--count", 2))
    assert r.exit_code == 0, r.output
    sharp = find_backgrounds(tmp_path / "p")
    assert len(sharp) == 2 and all(p.parent.name == "sharp" for p in sharp)
    (tmp_path / "empty").mkdir()
    r = _run(*_base(world, tmp_path / "q")[:2], "--backgrounds", tmp_path / "empty", "--out", tmp_path / "q",
             "--count", 1, "--min-area", 40)
    assert "no images" in str(r.exception)


def test_objects_larger_than_the_background_are_skipped_or_fail(world, tmp_path):
    root, _ = world
    # 26x26: some instances fit, the larger ones are skipped
    from lodetools.io.voc import index_instances
    from lodetools.pipelines.lbs import instance_shapes

    big = (instance_shapes(index_instances(root / "voc", min_area=40), 1.2) > 26).any(axis=1)
    assert 0 < big.sum() < big.size
    r = _run(*_base(world, tmp_path / "m")[:2], "--backgrounds", root / "mid", "--out", tmp_path / "m",
             "--count", 4, "--min-area", 40)
    assert r.exit_code == 0, r.output
    for rec in read_manifest(tmp_path / "m").values():
        assert all(o["size"][0] <= 26 and o["size"][1] <= 26 for o in rec["provenance"]["objects"])
    # 12x12: nothing fits -> a clear one-line error naming the background, exit 2
    p = subprocess.run([sys.executable, "-m", "lodetools", "lbs", "--voc", str(root / "voc"), "--backgrounds",
                        str(root / "tiny"), "--out", str(tmp_path / "t"), "--count", "2", "--min-area", "40"],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1].startswith("error: no VOC instance fits in this 12x12 background")
    assert "t.png" in p.stderr


def test_bad_voc_and_options_give_clear_errors(world, tmp_path):
    root, truth = world
    r = _run(*_base(world, tmp_path / "e", "--min-area", 10**6))
    assert isinstance(r.exception, BadInput) and "no object instances" in str(r.exception)
    args = _base(world, tmp_path / "n")
    r = _run(*args[:args.index("--count")], "--quiet")
    assert isinstance(r.exception, BadConfig) and "--count" in str(r.exception)
    r = _run(*_base(world, tmp_path / "f", "--frames-min", 8, "--frames-max", 8))
    assert isinstance(r.exception, BadConfig) and "odd" in str(r.exception)
    voc = tmp_path / "voc"
    shutil.copytree(root / "voc", voc)
    name = truth["images"][2]["name"]
    (voc / "VOCdevkit/VOC2012/SegmentationObject" / f"{name}.png").write_bytes(b"not a png")
    r = _run("--voc", voc, *_base(world, tmp_path / "g")[2:])
    assert isinstance(r.exception, BadInput) and f"{name}.png" in str(r.exception)
    # with --on-error skip the corrupt entry is left out, with a warning naming it
    r = _run("--voc", voc, *_base(world, tmp_path / "g2", "--on-error", "skip")[2:])
    assert r.exit_code == 0 and "warning: skipped VOC entry" in r.output and f"{name}.png" in r.output
    used = {o["voc"].split("#")[0] for rec in read_manifest(tmp_path / "g2").values()
            for o in rec["provenance"]["objects"]}
    assert used and name not in used
    # a corrupt background fails its sample; --on-error skip goes on and reports it
    shutil.copytree(root / "bg", tmp_path / "bg2")
    (tmp_path / "bg2" / "coffee.png").write_bytes(b"broken")
    r = _run(*_base(world, tmp_path / "h")[:2], "--backgrounds", tmp_path / "bg2", "--out", tmp_path / "h",
             "--count", 6, "--min-area", 40, "--on-error", "skip", "--quiet")
    assert r.exit_code == 3 and "cannot decode" in r.output
    done = read_manifest(tmp_path / "h")
    assert 0 < len(done) < 6 and all(rec["provenance"]["background"] == "chelsea.png" for rec in done.values())
    assert read_image(tmp_path / "h" / next(iter(done.values()))["files"]["blur"]).shape == (H, W, 3)


# ---------------------------------------------------------------- COCO as the segmentation source

def _rle_string(counts) -> str:
    """COCO's compressed RLE string of run lengths (as pycocotools' rleToString writes it)."""
    out = []
    for i, x in enumerate(counts):
        x = int(x) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr(48 + (c | 0x20 if more else c)))
    return "".join(out)


def _runs(mask: np.ndarray) -> list:
    """Column-major run lengths of a bool mask, starting with a run of zeros."""
    cols = mask.T.ravel().astype(np.int8)
    change = np.flatnonzero(np.diff(cols)) + 1
    runs = np.diff(np.concatenate([[0], change, [cols.size]])).tolist()
    return runs if cols[0] == 0 else [0, *runs]


#: flat object colours (display RGB codes) of the tiny COCO image, and its background colour
COCO_COLOURS = {11: (220, 40, 30), 12: (30, 200, 60), 13: (40, 60, 230)}
COCO_BACKGROUND = (128, 128, 128)


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    """A COCO 'train2017' of one 40x50 image: a polygon square, a polygon triangle, an RLE blob (+ a crowd)."""
    root = tmp_path_factory.mktemp("coco")
    h, w = 40, 50
    square = np.zeros((h, w), bool)
    square[4:20, 4:20] = True
    yy, xx = np.mgrid[:h, :w]
    tri = ((xx - 24) + 0.5 >= 0) & ((yy - 2) + 0.5 >= 0) & ((xx - 24) + (yy - 2) + 1 < 14)  # (24,2)-(38,2)-(24,16)
    blob = np.zeros((h, w), bool)
    blob[22:38, 30:46] = True
    blob[30:38, 30:38] = False
    img = np.empty((h, w, 3), np.uint8)
    img[:] = COCO_BACKGROUND
    for aid, m in ((11, square), (12, tri), (13, blob)):
        img[m] = COCO_COLOURS[aid]
    (root / "train2017").mkdir()
    write_image(root / "train2017" / "000000000042.png", img.astype(np.float32) / 255)
    anns = [
        {"id": 11, "image_id": 42, "category_id": 18, "iscrowd": 0, "area": 256.0, "bbox": [4, 4, 16, 16],
         "segmentation": [[4, 4, 20, 4, 20, 20, 4, 20]]},
        {"id": 12, "image_id": 42, "category_id": 3, "iscrowd": 0, "area": float(tri.sum()),
         "bbox": [24, 2, 14, 14], "segmentation": [[24, 2, 38, 2, 24, 16]]},
        {"id": 13, "image_id": 42, "category_id": 1, "iscrowd": 0, "area": float(blob.sum()),
         "bbox": [30, 22, 16, 16], "segmentation": {"size": [h, w], "counts": _rle_string(_runs(blob))}},
        {"id": 14, "image_id": 42, "category_id": 1, "iscrowd": 1, "area": 900.0, "bbox": [0, 0, 30, 30],
         "segmentation": {"size": [h, w], "counts": [0, h * w]}},
    ]
    doc = {"images": [{"id": 42, "file_name": "000000000042.png", "height": h, "width": w}], "annotations": anns,
           "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 18, "name": "dog"}]}
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(doc))
    return root, {11: square, 12: tri, 13: blob}, {11: 18, 12: 3, 13: 1}


def _coco_base(world, coco, out, *extra):
    return ["--coco", coco[0] / "annotations" / "instances_train2017.json", "--backgrounds", world[0] / "bg",
            "--out", out, "--min-area", 40, "--quiet", *extra]


def test_coco_rle_string_encoder_round_trips():
    from lodetools.io.coco import rle_string_to_counts

    for counts in ([3, 2, 4], [2, 6, 3, 4], [100], [0, 5, 1000, 3, 7, 2000, 1]):
        assert rle_string_to_counts(_rle_string(counts)) == counts


def test_cli_coco_pairs_masks_and_provenance(world, coco, tmp_path):
    """--coco: the VOC checks (blur = sharp outside the mask, provenance) with COCO sources."""
    r = _run(*_coco_base(world, coco, tmp_path / "o", "--count", 4, "--recipe", "bladenet-lbs"))
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "o" / "dataset.json").read_text())
    assert doc["sources"]["coco_instances"] == 3 and doc["sources"]["coco_classes"] == [1, 3, 18]
    assert doc["parameters"]["coco"].endswith("instances_train2017.json")
    assert doc["parameters"]["coco_images"].endswith("train2017") and "voc" not in doc["parameters"]
    for rec in read_manifest(tmp_path / "o").values():
        prov = rec["provenance"]
        for o in prov["objects"]:
            image, aid = o["coco"].split("#")
            assert image == "000000000042" and o["class_id"] == coco[2][int(aid)]
        blur = read_image_native(tmp_path / "o" / rec["files"]["blur"]).astype(int)
        sharp = read_image_native(tmp_path / "o" / rec["files"]["sharp"]).astype(int)
        mask = read_mask(tmp_path / "o" / rec["files"]["mask"])
        assert blur.shape == (H, W, 3) and mask.any()
        assert np.abs(blur - sharp).max(axis=2)[~mask].max() <= 1


def test_cli_coco_masks_are_the_annotated_shapes(world, coco, tmp_path):
    """Without motion or rescaling, each sample's mask is its COCO object's polygon or RLE mask where it was
    pasted (bilinear placement: between the pixels whose four source neighbours are all inside the object
    and those with any inside), and those core pixels carry exactly the object's own colour."""
    r = _run(*_coco_base(world, coco, tmp_path / "x", "--count", 8, "--moving", 1, "--static-min", 0,
                         "--static-max", 0, "--object-scale", 1, "--translate-px", 0, "--scale-step", 0,
                         "--rotate-deg", 0, "--frames-min", 3, "--frames-max", 3))
    assert r.exit_code == 0, r.output
    seen = set()
    for rec in read_manifest(tmp_path / "x").values():
        (o,) = rec["provenance"]["objects"]
        aid = int(o["coco"].split("#")[1])
        seen.add(aid)
        m = coco[1][aid]
        ys, xs = np.nonzero(m)
        alpha = np.pad(m[ys.min():ys.max() + 1, xs.min():xs.max() + 1], 1)  # the cut-out: 1 px zero margin
        ah, aw = alpha.shape
        assert o["size"] == [aw, ah]
        # canvas (X, Y) samples the cut-out at (X - tx, Y - ty); the pose puts its centre at "start"
        tx, ty = o["start"][0] - (aw - 1) / 2, o["start"][1] - (ah - 1) / 2
        Y, X = np.mgrid[:H, :W]
        sx, sy = np.floor(X - tx).astype(int), np.floor(Y - ty).astype(int)
        inside = []
        for dy in (0, 1):
            for dx in (0, 1):
                u, v = sx + dx, sy + dy
                ok = (u >= 0) & (u < aw) & (v >= 0) & (v < ah)
                inside.append(ok & alpha[np.clip(v, 0, ah - 1), np.clip(u, 0, aw - 1)])
        core, reach = np.logical_and.reduce(inside), np.logical_or.reduce(inside)
        mask = read_mask(tmp_path / "x" / rec["files"]["mask"])
        assert core.sum() > 0.5 * m.sum()
        assert not (core & ~mask).any() and not (mask & ~reach).any(), aid
        sharp = read_image_native(tmp_path / "x" / rec["files"]["sharp"]).astype(int)
        assert np.abs(sharp[core] - np.array(COCO_COLOURS[aid])).max() <= 1, aid
    assert seen == {11, 12, 13}  # both polygons and the RLE object were used


def test_coco_and_voc_exactly_one(world, coco, tmp_path):
    root = world[0]
    r = _run(*_coco_base(world, coco, tmp_path / "a", "--count", 1), "--voc", root / "voc")
    assert isinstance(r.exception, BadConfig) and "exactly one" in str(r.exception)
    r = _run("--backgrounds", root / "bg", "--out", tmp_path / "b", "--count", 1)
    assert isinstance(r.exception, BadConfig) and "--voc DIR or --coco" in str(r.exception)
    r = _run(*_base(world, tmp_path / "c", "--count", 1), "--coco-images", coco[0] / "train2017")
    assert isinstance(r.exception, BadConfig) and "--coco-images needs --coco" in str(r.exception)
    # an explicit image folder; a missing one names it
    r = _run(*_coco_base(world, coco, tmp_path / "d", "--count", 1), "--coco-images", tmp_path / "nope")
    assert "COCO image folder not found" in str(r.exception) and "nope" in str(r.exception)
    r = _run(*_coco_base(world, coco, tmp_path / "e", "--count", 1), "--coco-images", coco[0] / "train2017")
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "d").exists()


def test_bomb_label_png_and_coco_image_are_refused_from_their_headers(world, coco, tmp_path, capsys):
    """A VOC label PNG or a COCO image declaring 20000x20000 pixels: one line naming it, nothing decoded."""
    from lodetools.cli import main

    from tests.support.bad_files import bomb_png

    def cli(*args):
        with pytest.raises(SystemExit) as exc:
            main(["lbs", *map(str, args)])
        return exc.value.code

    root, truth = world
    voc = tmp_path / "voc"
    shutil.copytree(root / "voc", voc)
    bomb = bomb_png(voc / "VOCdevkit/VOC2012/SegmentationObject" / f"{truth['images'][2]['name']}.png")
    assert cli("--voc", voc, *_base(world, tmp_path / "v")[2:]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: image declares 20000x20000 pixels") and str(bomb) in err
    coco_root = tmp_path / "coco"
    shutil.copytree(coco[0], coco_root)
    bomb = bomb_png(coco_root / "train2017" / "000000000042.png")
    assert cli(*_coco_base(world, (coco_root,), tmp_path / "c", "--count", 1)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: image declares 20000x20000 pixels") and str(bomb) in err[0]
