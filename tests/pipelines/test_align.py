"""``lodetools align`` on the synthetic RAW rig against its true misalignment, and its parts."""

import json
import shutil

import cv2
import numpy as np
import pytest
from skimage import data

from lodetools.cli import main
from lodetools.errors import EXIT_PARTIAL
from lodetools.flow import endpoint_error
from lodetools.flow.warp import warp_image
from lodetools.io.images import encode_image, read_mask
from lodetools.io.layout import read_pairs
from lodetools.io.manifest import read_dataset_json
from lodetools.pipelines.align import flow_stats, scene_flow, static_pair_qa
from lodetools.sim import rig



def run(argv):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    return exc.value.code


def misalignment(h, w, shift=(1.6, -0.9), angle=0.4, scale=1.004):
    """Affine camera misalignment A (2x3) about the centre, as the rig draws it."""
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, scale)
    m[:, 2] += shift
    return m


def test_scene_flow_recovers_known_misalignment_on_a_photograph():
    """Static pair built by warping a photograph with a known camera misalignment."""
    sharp = data.chelsea()[60:156, 100:244].astype(np.float32) / 255
    h, w = sharp.shape[:2]
    a = misalignment(h, w)
    truth = rig.misalignment_flow(a, (h, w))            # F(p) = A p - p
    # blur(x + F(x)) = sharp(x), i.e. blur(q) = sharp(A^-1 q): cv2.warpAffine with M = A
    blur = cv2.warpAffine(sharp, a, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    noise = np.random.default_rng(0).normal(0, 0.004, blur.shape).astype(np.float32)
    blur = np.clip(blur + noise, 0, 1)
    flow, info = scene_flow(sharp, blur, flow_options={"threads": 1})
    assert endpoint_error(flow, truth) <= 0.25
    aligned, _ = warp_image(blur, flow)
    qa = static_pair_qa(sharp, blur, aligned, flow)
    assert qa["psnr_after"] >= 35 and qa["psnr_after"] - qa["psnr_before"] >= 8, qa
    assert qa["delta_l_after"] < qa["delta_l_before"]
    st = flow_stats(truth)
    assert abs(flow_stats(flow)["mean"] - st["mean"]) < 0.1


@pytest.fixture(scope="module")
def rig_dir(rig_factory):
    """A 64x96 rig (2 scenes x 1 capture) and both cameras' calibrations."""
    return rig_factory(size=(64, 96), scenes=2, captures=1)


def test_align_end_to_end_against_rig_truth(rig_dir, capsys):
    raw = rig_dir / "raw"
    work = rig_dir / "raw_work"
    shutil.copytree(raw, work)
    # scene02 loses its static reference pair: it must fail, naming the scene; scene01 goes on
    for f in (work / "scene02").glob("reference_*"):
        f.unlink()
    # a local-blur mask drawn on the blur camera's image of scene01/0001
    src_mask = np.zeros((64, 96), bool)
    src_mask[20:40, 30:60] = True
    (work / "scene01" / "0001_mask.png").write_bytes(encode_image(src_mask, ".png"))
    out = rig_dir / "out"
    code = run(["align", "--raw-pairs", work, "--out", out, "--recipe", "reloblur",
                "--calib-blur", rig_dir / "cal" / "blur.toml", "--calib-sharp", rig_dir / "cal" / "sharp.toml",
                "--on-error", "skip", "--quiet"])
    err = capsys.readouterr().err
    assert code == EXIT_PARTIAL
    assert "scene02" in err and "reference" in err
    pairs = {p.key: p for p in read_pairs(out)}
    assert sorted(pairs) == ["test/scene01/0001", "test/scene01/reference"]
    ref = pairs["test/scene01/reference"]
    assert ref.record["static"] is True and pairs["test/scene01/0001"].record["static"] is False
    # the recovered misalignment against the rig's true flow
    truth = np.load(raw / "truth" / "scene01" / "flow_sharp_to_blur.npy")
    flow = np.load(out / ref.record["provenance"]["flow"]["file"])
    epe = endpoint_error(flow, truth)
    assert epe <= 0.25, epe
    qa = ref.record["qa"]
    assert qa["psnr_after"] - qa["psnr_before"] >= 8, qa
    assert qa["ssim_after"] > qa["ssim_before"] and qa["delta_l_after"] < qa["delta_l_before"]
    assert abs(qa["flow"]["mean"] - flow_stats(truth)["mean"]) < 0.2
    # the mask went through the same flow (nearest neighbour, checked with cv2 directly)
    h, w = truth.shape[:2]
    X, Y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    expect = cv2.remap(src_mask.astype(np.uint8), X + flow[..., 0], Y + flow[..., 1], cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_REPLICATE) > 0
    np.testing.assert_array_equal(read_mask(pairs["test/scene01/0001"].mask), expect)
    ds = read_dataset_json(out)
    assert ds["counts"]["static"] == 1 and ds["counts"]["masks"] == 1
    qa_lines = [json.loads(x) for x in (out / "qa.jsonl").read_text().splitlines()]
    assert [q["scene"] for q in qa_lines] == ["scene01"]


def test_align_bad_inputs(rig_dir, tmp_path, capsys):
    assert run(["align", "--raw-pairs", tmp_path / "nope", "--out", tmp_path / "o",
                "--calib-blur", rig_dir / "cal" / "blur.toml", "--calib-sharp", rig_dir / "cal" / "sharp.toml"]) == 2
    assert "raw-pairs folder not found" in capsys.readouterr().err
    bad_cal = tmp_path / "bad.toml"
    bad_cal.write_text("this is = = not toml")
    assert run(["align", "--raw-pairs", rig_dir / "raw", "--out", tmp_path / "o2",
                "--calib-blur", bad_cal, "--calib-sharp", rig_dir / "cal" / "sharp.toml"]) == 2
    assert "bad.toml" in capsys.readouterr().err
    assert run(["align", "--raw-pairs", rig_dir / "raw", "--out", tmp_path / "o3", "--flow", "nonsense"]) == 2


def test_align_without_color_correction(rig_dir, tmp_path):
    """A rig with no lightbox capture aligns without calibration files and records it."""
    out = tmp_path / "out"
    assert run(["align", "--raw-pairs", rig_dir / "raw", "--out", out, "--no-color-correction", "--quiet",
                "--no-refining-step"]) in (0, None)
    pairs = read_pairs(out)
    assert len(pairs) == 4 and all(p.record["provenance"]["color_correction"] is False for p in pairs)
    assert all(p.blur.is_file() and p.sharp.is_file() for p in pairs)
    assert read_dataset_json(out)["parameters"]["color_correction"] is False
    # the flow is estimated on the uncorrected pair all the same: alignment still improves the static pair
    qa = next(p.record["qa"] for p in pairs if p.record["static"])
    assert qa["psnr_after"] > qa["psnr_before"]
