"""Tests of lodetools.flow: c2f accuracy on known flows, backends, warping, densification."""

import numpy as np
import pytest
import torch
from skimage import data

from lodetools.errors import BadConfig, BadInput
from lodetools.flow import endpoint_error, estimate_flow
from lodetools.flow import _c2f_numba as nbk
from lodetools.flow import _c2f_numpy as npk
from lodetools.flow._c2f_torch import _RedBlackSOR, smooth_flow_sor
from lodetools.flow.c2f import (NUMPY_MAX_PIXELS, _gaussian_taps, build_pyramid, choose_engine, coarse2fine_flow,
                                image_features, liu_resize, pyramid_plan, pyramid_sizes, upsample_flow)
from lodetools.flow.pyflow_backend import load_pyflow
from lodetools.flow.warp import densify_flow, valid_mask, warp_image


def smooth_flow(h, w, amp=2.5):
    """A smooth, non-rigid flow field (rotation-like + a low-frequency wave)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    fx = 1.2 + 0.015 * (y - h / 2) + amp * 0.4 * np.sin(2 * np.pi * x / (1.5 * w))
    fy = -0.7 - 0.012 * (x - w / 2) + amp * 0.3 * np.cos(2 * np.pi * y / (1.5 * h))
    return np.stack([fx, fy], -1).astype(np.float32)


def synthetic_pair(name="astronaut", h=72, w=104, y0=120, x0=160):
    """(ref, moving, flow) with moving(x + flow) == ref(x) by construction."""
    src = getattr(data, name)().astype(np.float32) / 255
    big_flow = np.zeros(src.shape[:2] + (2,), np.float32)
    big_flow[y0:y0 + h, x0:x0 + w] = smooth_flow(h, w)
    ref_big, _ = warp_image(src, big_flow)
    return ref_big[y0:y0 + h, x0:x0 + w], src[y0:y0 + h, x0:x0 + w], big_flow[y0:y0 + h, x0:x0 + w]


def test_c2f_recovers_smooth_flow():
    ref, moving, truth = synthetic_pair()
    flow = estimate_flow(ref, moving, "c2f", threads=1)
    assert flow.shape == truth.shape and flow.dtype == np.float32
    inner = np.zeros(truth.shape[:2], bool)
    inner[4:-4, 4:-4] = True
    inner &= valid_mask(truth)
    # stated bound: mean EPE <= 0.2 px away from the 4-px border on a textured photograph
    assert endpoint_error(flow, truth, inner) < 0.2
    assert endpoint_error(np.zeros_like(truth), truth, inner) > 1.5   # the flow was not trivial


def test_c2f_identical_images_give_zero_flow():
    img = data.coffee()[100:164, 200:296].astype(np.float32) / 255
    flow = coarse2fine_flow(img, img, threads=1)
    assert np.abs(flow).max() < 1e-3


@pytest.mark.parametrize("shape", [(37, 53, 3), (5, 7, 3), (2, 2, 3), (29, 41), (2, 90, 3), (90, 3, 3)])
def test_c2f_odd_and_tiny_sizes(shape):
    rng = np.random.default_rng(0)
    a = rng.random(shape, dtype=np.float32)
    b = np.roll(a, 1, axis=1)
    flow = estimate_flow(a, b, "c2f", outer_iterations=2, sor_iterations=5, threads=1)
    assert flow.shape == shape[:2] + (2,)
    assert np.isfinite(flow).all()
    # the numpy engine's borders (rows/columns of 1-3 pixels at coarse levels) are the compiled engine's
    for engine in ("numpy", "numba"):
        np.testing.assert_array_equal(
            estimate_flow(a, b, "c2f", outer_iterations=2, sor_iterations=5, threads=1, engine=engine), flow)
    # and match the torch code where no level is a single row or column (there the vertical or
    # horizontal problem is degenerate: the flow follows float32 rounding of features that are ~0)
    if min(min(size) for size in pyramid_sizes(*shape[:2])) > 1:
        ref = estimate_flow(a, b, "c2f", outer_iterations=2, sor_iterations=5, threads=1, engine="torch")
        np.testing.assert_allclose(flow, ref, atol=1e-3)


def test_pyramid_sizes_follow_liu():
    # 741 px wide, ratio 0.75, minWidth 20 -> int(log(20/741)/log(0.75)) = int(12.55) = 12 levels
    sizes = pyramid_sizes(500, 741)
    assert len(sizes) == 12 and sizes[0] == (500, 741) and sizes[-1][1] >= 20
    # Liu truncates: int(741 * 0.75) = 555, int(500 * 0.5625) = 281, int(741 * 0.421875) = 312
    assert sizes[1:4] == [(375, 555), (281, 416), (210, 312)]
    plan = pyramid_plan(500, 741)
    # level 1: sigma 1/3, half-width int(3 sigma) = int(0.99999..) = 0 (no blur); level 2: int(1.99..) = 1
    assert plan[1][3] == 0 and plan[2][3] == 1 and plan[4][3] == 3
    # levels past n = int(log(0.25)/log(0.75)) = 4 come from level i - 4 with rate 0.75^i * 741 / width(i - 4)
    size, source, sigma, radius, rate = plan[5]
    assert source == 1 and abs(rate - 0.75 ** 5 * 741 / 555) < 1e-12 and size == (int(375 * rate), int(555 * rate))


def test_liu_resize_samples_at_j_plus_one_over_rate_minus_one():
    """Hand-evaluated: rate 0.5 samples x = 2j + 1; rate 2 samples x = (j + 1) / 2 - 1, clamped at 0."""
    img = np.arange(12, dtype=np.float32).reshape(1, 2, 6) ** 2         # row r, col c: (6r + c)^2
    down = liu_resize(img, (1, 3), 0.5, 0.5)[0]
    np.testing.assert_allclose(down, [[(6 + 1) ** 2, (6 + 3) ** 2, (6 + 5) ** 2]])
    up = liu_resize(img[:, :1, :3], (1, 6), 1.0, 2.0)[0, 0]             # values 0, 1, 4
    # x = -0.5 (clamped to 0), 0, 0.5, 1, 1.5, 2
    np.testing.assert_allclose(up, [0, 0, 0.5, 1, 2.5, 4])
    # the flow between levels: resized with the per-axis rates and multiplied by 1 / ratio
    up = upsample_flow(np.ones((2, 3, 4), np.float32), (4, 5), 0.75)
    assert up.shape == (2, 4, 5) and up.dtype == np.float32
    np.testing.assert_allclose(up, np.full((2, 4, 5), 1 / 0.75), rtol=1e-6)


def test_red_black_sor_converges_to_direct_solution():
    torch.manual_seed(0)
    H, W, alpha = 7, 9, 0.5
    a11, a22 = torch.rand(H, W), torch.rand(H, W)
    a12 = (torch.rand(H, W) - 0.5) * 0.5 * torch.sqrt(a11 * a22)
    b, wx, wy = torch.randn(2, H, W), torch.rand(H, W - 1), torch.rand(H - 1, W)
    x = _RedBlackSOR(a11, a12, a22, b, wx, wy, alpha, 1.8).solve(400).numpy()
    # the same normal equations assembled densely and solved by numpy
    N = H * W
    A = np.zeros((2 * N, 2 * N))
    idx = np.arange(N).reshape(H, W)
    for o, aa in ((0, a11), (N, a22)):
        A[o + idx.ravel(), o + idx.ravel()] += aa.numpy().ravel() + 0.05 * alpha
    A[idx.ravel(), N + idx.ravel()] = A[N + idx.ravel(), idx.ravel()] = a12.numpy().ravel()
    for p, q, wgt in ((idx[:, :-1], idx[:, 1:], wx), (idx[:-1], idx[1:], wy)):
        for pp, qq, ww in zip(p.ravel(), q.ravel(), alpha * wgt.numpy().ravel()):
            for o in (0, N):
                A[o + pp, o + pp] += ww
                A[o + qq, o + qq] += ww
                A[o + pp, o + qq] -= ww
                A[o + qq, o + pp] -= ww
    ref = np.linalg.solve(A, b.numpy().reshape(-1))
    np.testing.assert_allclose(x.reshape(-1), ref, atol=1e-4)


def test_motorcycle_quarter_scale_all_backends():
    """Real stereo pair with true disparity: flow left->right is (-d, 0)."""
    import cv2

    left, right, disp = data.stereo_motorcycle()
    s = 0.25
    size = (int(left.shape[1] * s), int(left.shape[0] * s))
    l = cv2.resize(left, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    r = cv2.resize(right, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    valid = np.isfinite(disp)
    d = cv2.resize(np.where(valid, disp, 0), size, interpolation=cv2.INTER_NEAREST) * s
    v = cv2.resize(valid.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    truth = np.stack([-d, np.zeros_like(d)], -1)
    epe = {m: endpoint_error(estimate_flow(l, r, m, **({"threads": 1} if m == "c2f" else {})), truth, v)
           for m in ("c2f", "dis", "deepflow")}
    assert epe["c2f"] < 1.2, epe           # disparities up to 15 px at this scale
    assert all(e < 2.0 for e in epe.values()), epe


def test_opencv_backends_recover_translation():
    ref, moving, truth = synthetic_pair()
    inner = np.zeros(truth.shape[:2], bool)
    inner[8:-8, 8:-8] = True
    for m in ("dis", "deepflow", "tvl1"):
        flow = estimate_flow(ref, moving, m)
        assert flow.shape == truth.shape
        assert endpoint_error(flow, truth, inner) < 1.0, m


def test_estimate_flow_bad_inputs():
    a = np.zeros((16, 16, 3), np.float32)
    with pytest.raises(BadInput, match="differ"):
        estimate_flow(a, np.zeros((16, 17, 3), np.float32))
    with pytest.raises(BadInput, match="NaN"):
        b = a.copy()
        b[3, 3, 0] = np.nan
        estimate_flow(a, b)
    with pytest.raises(BadInput, match="shape"):
        estimate_flow(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)))
    with pytest.raises(BadConfig, match="unknown flow method"):
        estimate_flow(a, a, "farneback-ish")
    if load_pyflow() is None:
        with pytest.raises(BadConfig, match="pyflow"):
            estimate_flow(a, a, "pyflow")


def test_warp_integer_shift_matches_slicing_and_masks_outside():
    img = data.camera()[:40, :50].astype(np.float32) / 255
    flow = np.zeros((40, 50, 2), np.float32)
    flow[..., 0] = 3.0      # out(x) = img(x + 3)
    out, valid = warp_image(img, flow)
    np.testing.assert_allclose(out[:, :47], img[:, 3:], atol=1e-5)
    assert valid[:, :47].all() and not valid[:, 47:].any()


def test_warp_never_nan():
    img = np.random.default_rng(1).random((20, 30, 3)).astype(np.float32)
    flow = np.random.default_rng(2).normal(0, 50, (20, 30, 2)).astype(np.float32)
    flow[0, 0] = np.nan
    flow[1, 1] = np.inf
    out, valid = warp_image(img, flow)
    assert np.isfinite(out).all() and out.min() >= img.min() and out.max() <= img.max()
    assert not valid[0, 0] and not valid[1, 1]
    mask = img[..., 0] > 0.5
    mout, _ = warp_image(mask, flow)
    assert mout.dtype == bool and mout.shape == mask.shape


def test_densify_keeps_reliable_and_fills_the_rest():
    img = data.astronaut()[:64, :96].astype(np.float32) / 255
    y, x = np.mgrid[0:64, 0:96].astype(np.float32)
    truth = np.stack([0.02 * x - 1.0, 0.01 * y + 0.5], -1).astype(np.float32)
    noisy = truth.copy()
    reliable = np.ones((64, 96), bool)
    reliable[20:40, 30:60] = False
    noisy[~reliable] = 25.0          # garbage where unreliable
    out = densify_flow(noisy, reliable, img)
    np.testing.assert_array_equal(out[reliable], truth[reliable])
    assert np.isfinite(out).all()
    assert np.abs(out - truth)[~reliable].max() < 0.5


def test_c2f_device_fallback_gives_the_cpu_result():
    """A CUDA request on a machine without CUDA runs on the CPU, with the same numbers."""
    ref, moving, _ = synthetic_pair(h=40, w=56)
    cpu = coarse2fine_flow(ref, moving, device="cpu", outer_iterations=3)
    other = coarse2fine_flow(ref, moving, device="cuda" if not torch.cuda.is_available() else "cpu",
                             outer_iterations=3)
    np.testing.assert_allclose(other, cpu, atol=1e-5)


def test_c2f_threads_setting_is_restored():
    before = torch.get_num_threads()
    img = np.random.default_rng(3).random((24, 32, 3), dtype=np.float32)
    for engine in ("torch", "numba", "numpy"):
        coarse2fine_flow(img, img, threads=1, outer_iterations=1, sor_iterations=2, engine=engine, device="cpu")
        assert torch.get_num_threads() == before


def test_densify_tiny_image_fills_from_the_nearest_vectors():
    flow = np.zeros((6, 8, 2), np.float32)
    flow[..., 0] = np.arange(8)[None, :]
    reliable = np.ones((6, 8), bool)
    reliable[:, 6:] = False
    flow[~reliable] = np.nan
    out = densify_flow(flow, reliable, np.zeros((6, 8, 3), np.float32))
    assert np.isfinite(out).all()
    # a weighted mean of the reliable vectors (a flat guide: the smoother's reach spans the image)
    assert (out[:, 6:, 0] >= 0).all() and (out[:, 6:, 0] <= 5.0 + 1e-5).all()
    np.testing.assert_allclose(out[:, 6:, 1], 0, atol=1e-6)
    np.testing.assert_array_equal(out[:, :6], flow[:, :6])


def test_densify_is_deterministic():
    """The same inputs give the same bytes, call after call (RIC, used before, did not)."""
    ref, moving, truth = synthetic_pair(h=64, w=96)
    rng = np.random.default_rng(4)
    reliable = rng.random(truth.shape[:2]) > 0.3
    reliable[20:40, 30:70] = False
    noisy = np.where(reliable[..., None], truth, 40.0).astype(np.float32)
    outs = [densify_flow(noisy, reliable, ref).tobytes() for _ in range(4)]
    assert len(set(outs)) == 1


def _need_threads():
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here: the thread counts cannot differ")


def test_c2f_repeated_runs_give_identical_bytes():
    """A flow repeated several times on several threads is the same bit for bit."""
    _need_threads()
    ref, moving, _ = synthetic_pair(h=160, w=200)     # levels above PARALLEL_PIXELS run in parallel
    opts = dict(outer_iterations=2, sor_iterations=8)
    runs = [coarse2fine_flow(ref, moving, threads=t, **opts).tobytes() for t in (2, 2, 3, 2, 1, 2)]
    assert len(set(runs)) == 1


def _features_pair(h=40, w=58):
    ref, moving, _ = synthetic_pair(h=h, w=w)

    def feats(img):
        return image_features(np.ascontiguousarray(img.transpose(2, 0, 1)))

    return feats(ref), feats(moving)


@pytest.mark.parametrize("inner", [1, 2])
def test_numba_level_matches_torch_level(inner):
    """One pyramid level: the compiled kernels reproduce the torch steps to float32 rounding."""
    f1, f2 = _features_pair()
    flow0 = np.random.default_rng(1).normal(0, 0.5, (2,) + tuple(f1.shape[1:])).astype(np.float32)
    ref = smooth_flow_sor(torch.from_numpy(f1)[None], torch.from_numpy(f2)[None], torch.from_numpy(flow0.copy()),
                          alpha=0.012, outer=3, inner=inner, sor=12).numpy()
    ours = flow0.copy()
    nbk.level_flow(f1, f2, ours, 0.012, 3, inner, 12, 1.8, nbk._NBR, 1)
    assert np.abs(ref - flow0).max() > 0.05          # the level did move the flow
    np.testing.assert_allclose(ours, ref, atol=2e-4)


@pytest.mark.parametrize("groups", [1, 2, 3])
def test_sor_wavefront_equals_plain_red_black_order(groups):
    """The pipelined wavefront gives the plain red-black order's numbers bit for bit, for any group count."""
    H, W = 23, 30
    h, w = (H + 1) // 2, (W + 1) // 2
    K = np.random.default_rng(2).random((4, 9, h, w), dtype=np.float32) * 0.2
    plain = np.zeros((4, 2, h + 2, w + 2), np.float32)
    om = np.float32(1.8)
    for _ in range(7):
        for colour in ((0, 3), (1, 2)):            # red rows, then black rows
            for y in range(H):
                nbk._update_row(plain, K, colour[y % 2], y // 2, nbk._NBR, om)
    U = np.zeros_like(plain)
    nbk._sor(U, K, nbk._NBR, 7, 1.8, H, groups)
    assert np.abs(plain).max() > 0.01
    np.testing.assert_array_equal(U, plain)


def test_c2f_numba_engine_matches_torch_engine_and_thread_count():
    _need_threads()
    ref, moving, truth = synthetic_pair(h=48, w=64)
    opts = dict(outer_iterations=3, sor_iterations=10)
    t = coarse2fine_flow(ref, moving, engine="torch", **opts)
    n1 = coarse2fine_flow(ref, moving, engine="numba", threads=1, **opts)
    n2 = coarse2fine_flow(ref, moving, engine="numba", threads=2, **opts)
    np.testing.assert_array_equal(n1, n2)           # the result does not depend on the threads
    np.testing.assert_allclose(n1, t, atol=2e-3)
    assert endpoint_error(n1, truth, valid_mask(truth)) < 1.0


def test_c2f_rejects_unknown_engine():
    img = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(ValueError, match="engine"):
        coarse2fine_flow(img, img, engine="fortran")


@pytest.mark.parametrize("channels", [3, 1])
def test_pyramid_levels_are_liu_blur_then_resize(channels):
    """Each level against a float64 reference: Liu's Gaussian (edge-replicated) of its source, then Liu's resize."""
    img = data.astronaut()[:150, :230].astype(np.float32) / 255
    img = img if channels == 3 else img.mean(2, keepdims=True)
    x = np.ascontiguousarray(img.transpose(2, 0, 1))
    levels = build_pyramid(x)
    plan = pyramid_plan(150, 230)
    assert len(levels) == len(plan) > 5
    for level, (size, source, sigma, radius, rate) in zip(levels[1:], plan[1:]):
        src = levels[source].astype(np.float64)
        if radius:
            taps = _gaussian_taps(sigma, radius)
            for axis in (2, 1):
                p = np.pad(src, [(radius, radius) if a == axis else (0, 0) for a in range(3)], mode="edge")
                n = src.shape[axis]
                src = sum(t * np.take(p, np.arange(i, i + n), axis=axis) for i, t in enumerate(taps))
        ref = liu_resize(src, size, rate, rate)
        assert level.shape == (channels,) + size and level.dtype == np.float32
        np.testing.assert_allclose(level, ref, atol=2e-6)


@pytest.mark.parametrize("shape", [(60, 80), (23, 30), (5, 7), (1, 6), (6, 1), (2, 2), (1, 1)])
@pytest.mark.parametrize("inner", [1, 2])
def test_numpy_level_equals_numba_level_bit_for_bit(shape, inner):
    f1, f2 = _features_pair(h=64, w=84)
    h, w = shape
    f1, f2 = np.ascontiguousarray(f1[:, :h, :w]), np.ascontiguousarray(f2[:, 1:h + 1, 2:w + 2])
    flow0 = np.random.default_rng(1).normal(0, 0.5, (2, h, w)).astype(np.float32)
    ours = npk.level_flow(f1, f2, flow0.copy(), 0.012, 3, inner, 12, 1.8)
    ref = flow0.copy()
    nbk.level_flow(f1, f2, ref, 0.012, 3, inner, 12, 1.8, nbk._NBR, 1)
    assert h * w == 1 or np.abs(ref - flow0).max() > 0.05          # the level did move the flow
    np.testing.assert_array_equal(ours, ref)


def test_c2f_numpy_engine_equals_numba_engine_and_auto_picks_by_size():
    ref, moving, truth = synthetic_pair(h=48, w=64)
    opts = dict(outer_iterations=3, sor_iterations=10, threads=1)
    a = coarse2fine_flow(ref, moving, engine="numpy", **opts)
    np.testing.assert_array_equal(a, coarse2fine_flow(ref, moving, engine="numba", **opts))
    np.testing.assert_array_equal(a, coarse2fine_flow(ref, moving, engine="auto", device="cpu", **opts))
    assert endpoint_error(a, truth, valid_mask(truth)) < 1.0
    assert choose_engine("auto", "cpu", NUMPY_MAX_PIXELS + 1) == ("numba", None)
    assert choose_engine("numpy", "cuda", 10 ** 8) == ("numpy", None)


def test_c2f_auto_on_a_small_image_imports_neither_torch_nor_numba():
    """Start-up: a small CPU flow runs without torch (0.9 s to import) and numba (0.65 s to load a kernel)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from lodetools.flow import estimate_flow; "
            "a = np.random.default_rng(0).random((40, 56, 3), dtype=np.float32); "
            "estimate_flow(a, np.roll(a, 1, 1), 'c2f', device='cpu'); "
            "print(sorted(m for m in ('torch', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_gpu_possible_reads_the_driver_files(monkeypatch):
    from lodetools import device

    monkeypatch.setattr(device.sys, "platform", "linux")
    monkeypatch.setattr(device.os.path, "exists", lambda p: False)
    assert not device.gpu_possible()
    monkeypatch.setattr(device.os.path, "exists", lambda p: p == "/dev/nvidiactl")
    assert device.gpu_possible()
    monkeypatch.setattr(device.sys, "platform", "darwin")
    monkeypatch.setattr(device.os.path, "exists", lambda p: False)
    assert device.gpu_possible()
