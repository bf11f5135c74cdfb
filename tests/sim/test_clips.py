"""The synthetic high-frame-rate clips: determinism, ground truth, CRF, trajectories."""

import json

import cv2
import numpy as np
import pytest

from lodetools.color.crf import parse_crf, table_crf
from lodetools.errors import BadConfig
from lodetools.io.images import float_to_uint, list_images, read_image_native, read_mask
from lodetools.io.video import iter_frames
from lodetools.runner import item_rng
from lodetools.sim.clips import make_clip, write_clip
from lodetools.sim.trajectory import camera_shake, compose_affine, random_trajectory

SIZE = (64, 96)


def _clip(seed=0, key="c", n=12, **kw):
    return make_clip(item_rng(seed, key), SIZE, n, 250.0, **kw)


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    clip = _clip(n_objects=2)
    head = write_clip(clip, "clip_000_static", root / "clips", root / "clips_truth", fmt="both",
                      object_masks=True)
    return root, clip, head


def test_same_seed_same_bytes_other_seed_differs(tmp_path, written):
    root, _, _ = written
    again = tmp_path / "again"
    write_clip(_clip(n_objects=2), "clip_000_static", again / "clips", again / "clips_truth", fmt="both",
               object_masks=True)
    a, b = _tree(root), _tree(again)
    assert a.keys() == b.keys() and a == b
    other = tmp_path / "other"
    write_clip(_clip(seed=1, n_objects=2), "clip_000_static", other / "clips", other / "clips_truth",
               fmt="video")
    assert (other / "clips/clip_000_static.mp4").read_bytes() != a["clips/clip_000_static.mp4"]


def test_video_decodes_to_the_png_frames(written):
    root, clip, head = written
    pngs = list_images(root / "clips_truth/clip_000_static/frames")
    decoded = list(iter_frames(root / "clips/clip_000_static.mp4"))
    assert len(pngs) == len(decoded) == clip.n_frames == head["n_frames"]
    for p, d in zip(pngs, decoded):  # lossless H.264 (RGB): bit for bit
        assert np.array_equal(read_image_native(p), d)
    assert head["video"]["quality"] == "lossless"


def test_truth_masks_and_poses_match_rendering(written):
    root, clip, _ = written
    truth = json.loads((root / "clips_truth/clip_000_static/truth.json").read_text())
    assert truth["camera"] == "static" and truth["crf"] == "gamma:2.2" and truth["fps"] == 250.0
    assert len(truth["frames"]) == clip.n_frames and len(truth["objects"]) == 2
    bg = clip.background_linear()
    for fr in clip.frames():
        rec = truth["frames"][fr.index]
        stem = f"{fr.index:06d}"
        union = read_mask(root / "clips_truth/clip_000_static/masks" / f"{stem}.png")
        assert np.array_equal(union, fr.mask)
        assert rec["coverage"] == pytest.approx(union.mean(), abs=1e-6) and rec["coverage"] > 0
        # static camera: outside every object's support the frame is the background, bit for bit
        outside = fr.alphas.max(axis=0) == 0
        assert outside.mean() > 0.3
        assert np.array_equal(fr.linear[outside], bg[outside])
        assert np.array_equal(fr.display[outside], float_to_uint(clip.crf.to_display(bg), 8)[outside])
        # inside the footprints the objects change the image
        assert np.abs(fr.linear[union] - bg[union]).mean() > 0.01
        # the stored matrices reproduce each object's footprint from its cut-out
        for k, (obj, pose) in enumerate(zip(clip.objects, rec["poses"])):
            m = np.array(pose["matrix"])
            warped = cv2.warpAffine(obj.cutout.alpha, m, (SIZE[1], SIZE[0]), flags=cv2.INTER_LINEAR) > 0.5
            stored = read_mask(root / f"clips_truth/clip_000_static/objects/{k}/{stem}.png")
            assert np.mean(warped != stored) < 0.002
            # the cut-out's centre lands on the pose's centre
            h, w = obj.cutout.alpha.shape
            c = m @ np.array([(w - 1) / 2, (h - 1) / 2, 1.0])
            assert np.allclose(c, pose["center"], atol=1e-3)


@pytest.mark.parametrize("spec", ["gamma:2.2", "srgb", "table"])
def test_crf_inverse_recovers_linear_within_quantisation(spec):
    if spec == "table":  # a REDS-style tabulated inverse CRF (an S-curve)
        x = np.linspace(0, 1, 256)
        crf = table_crf(np.stack([x ** 2.0, x ** 2.4, 0.5 - 0.5 * np.cos(np.pi * x)], axis=1))
    else:
        crf = parse_crf(spec)
    clip = _clip(key=spec, n=3, crf=crf)
    for fr in clip.frames():
        q = fr.display.astype(np.float32)
        lo = crf.to_linear(np.clip(q - 0.5, 0, 255) / 255)
        hi = crf.to_linear(np.clip(q + 0.5, 0, 255) / 255)
        assert np.all(fr.linear >= lo - 1e-5) and np.all(fr.linear <= hi + 1e-5)
        err = np.abs(crf.to_linear(q / 255) - fr.linear)
        assert err.max() < 0.02 and err.mean() < 0.003


def test_camera_shake_moves_the_background():
    shaky = _clip(key="s", n=8, shake=True)
    still = _clip(key="s", n=8, shake=False)
    assert shaky.camera == "shake" and still.camera == "static"
    frames = list(shaky.frames())
    assert all(f.camera is not None for f in frames)
    dxy = np.array([[f.camera["dx"], f.camera["dy"]] for f in frames])
    assert np.ptp(dxy, axis=0).max() > 0.05  # the camera moves over 8 frames at 250 fps
    # background pixels (outside objects in both frames) change with a shaking camera only
    for clip, moved in ((shaky, True), (still, False)):
        a, b = clip.frame(0), clip.frame(7)
        bgpix = (a.alphas.max(0) == 0) & (b.alphas.max(0) == 0)
        diff = np.abs(a.linear[bgpix] - b.linear[bgpix]).mean()
        assert (diff > 1e-3) if moved else (diff == 0)


def test_subframes_average_in_linear_light():
    clip = _clip(key="sub", n=2, subframes=3)
    fr = clip.frame(1)
    t0 = 1 / clip.fps
    renders = [clip._render_at(t0 + j / (3 * clip.fps))[0] for j in range(3)]
    assert np.allclose(fr.linear, np.mean(renders, axis=0), atol=1e-6)


def test_trajectory_velocity_and_bounds():
    rng = item_rng(3, "traj")
    path = random_trajectory(rng, (180, 320), speed=(1.0, 1.0))
    t = np.linspace(0, 20, 4001)
    p = path(t)
    # analytic velocity equals the numerical derivative
    h = 1e-5
    num = (path(t + h) - path(t - h)) / (2 * h)
    assert np.allclose(num, path.velocity(t), rtol=1e-5, atol=1e-5)
    speed = np.hypot(*path.velocity(t)[:, :2].T)
    assert speed.max() <= 320 * 1.0 + 1e-6 and speed.max() > 0.3 * 320
    # the centre stays on the canvas for 20 s
    assert p[:, 0].min() >= 0 and p[:, 0].max() <= 320 and p[:, 1].min() >= 0 and p[:, 1].max() <= 180
    shake = camera_shake(item_rng(3, "shake"), amplitude=(2, 2), rotation=(0.5, 0.5))
    s = shake(t)
    assert np.abs(s[:, :2]).max() <= 2 + 1e-9 and np.abs(s[:, 2]).max() <= 0.5 + 1e-9
    # composition of affines is function composition
    a, b = np.array([[1.0, 0.2, 3], [0.1, 0.9, -2]]), np.array([[0.5, 0, 1], [0, 2, 4]])
    x = np.array([2.0, 5.0, 1.0])
    assert np.allclose(compose_affine(a, b) @ x, a @ np.append(b @ x, 1.0))


def test_bad_configuration(tmp_path):
    with pytest.raises(BadConfig):
        make_clip(item_rng(0, "x"), (8, 8), 4)
    with pytest.raises(BadConfig):
        make_clip(item_rng(0, "x"), SIZE, 0)
    with pytest.raises(BadConfig):
        make_clip(item_rng(0, "x"), SIZE, 4, crf="gamma:-1")
    with pytest.raises(BadConfig):
        write_clip(_clip(n=2), "x", tmp_path / "c", tmp_path / "t", fmt="gif")
