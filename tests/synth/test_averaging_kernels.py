"""The fused numba averaging kernel (LODE Eqs. (6)-(7)) against float64 and against the numpy path."""

import sys

import numpy as np
import pytest

from tests.support.clips import make_clip
from tests.support.averaging_reference import _srgb_encode, _table, reference_blur

from lodetools.color.crf import parse_crf, table_crf
from lodetools.synth import _averaging_kernels as K
from lodetools.synth.averaging import Window, WindowAverager, inverse_lut, synthesize_windows



def _crf(spec):
    return table_crf(_table(), "table") if spec == "table" else parse_crf(spec)


def _frames(m, seed, size=(37, 53)):
    """Odd-sized frames (37 * 53 * 3 = 5883 values: not a multiple of the block or of 64):
    a moving-object clip plus uniform noise in one corner (every code, 0 and 255 included)."""
    frames, _ = make_clip(seed, m, size=size, speed=(4.0, 6.0))
    rng = np.random.default_rng(seed)
    for f in frames:
        f[:12, :20] = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
        f[-1, -1] = 255
        f.flags.writeable = False  # as decoded video frames
    return frames


def _codes(frames, crf, *, kernel=True):
    avg = WindowAverager(crf, frames[0].shape, kernel=kernel)
    avg.reset()
    for f in frames:
        avg.add(f)
    return avg.uses_kernel, avg.blurred_codes(8)


@pytest.mark.parametrize("spec", ["gamma:2.2", "srgb", "linear", "table"])
@pytest.mark.parametrize("m", [7, 13])
def test_kernel_matches_float64_formula_and_numpy_path(spec, m):
    crf = _crf(spec)
    frames = _frames(m, seed=m)
    used, got = _codes(frames, crf)
    assert used  # these CRFs pass the bucket check
    ref = reference_blur(frames, spec)  # float64, from the CRF's definition
    assert np.abs(got - ref).max() <= 1
    assert np.mean(got != ref) < 0.001
    _, numpy_path = _codes(frames, crf, kernel=False)
    diff = np.abs(got.astype(int) - numpy_path)
    assert diff.max() <= 1 and np.mean(diff > 0) <= 0.001
    # the blur is real: objects moved
    assert np.abs(got.astype(int) - frames[m // 2]).max() > 20


@pytest.mark.parametrize("spec", ["gamma:2.2", "srgb", "linear", "table"])
def test_quantiser_is_exact_rounding_of_g(spec):
    """code(m) = #{j : m >= g^-1((j - 0.5) / 255)} for random m and m at / just below each threshold."""
    crf = _crf(spec)
    q = K.build_quantiser(crf, 3)
    t = K.code_thresholds(crf, 3)[:q.table.shape[0]]  # float64
    t32 = q.thresholds[:, 1:256]
    rng = np.random.default_rng(1)
    m = np.concatenate([rng.random(5000, dtype=np.float32), rng.random(3000, dtype=np.float32) ** 6,
                        t32.ravel(), np.nextafter(t32.ravel(), np.float32(0)),
                        np.float32([0.0, 1.0, 1e-30])]).astype(np.float32)
    m = m[: m.size - m.size % 3]  # whole pixels: value i has channel i % 3
    ch = np.arange(m.size) % q.table.shape[0]
    want = np.array([np.searchsorted(t[c], v, side="right") for c, v in zip(ch, m.astype(np.float64))])
    # the float32 thresholds are the float64 ones rounded up: m >= t32 exactly when m >= t
    assert np.all(t32.astype(np.float64) >= t) and np.all(np.nextafter(t32, np.float32(0)) < t)
    inv, two, scale = np.float32(1.0), q.corrections == 2, np.float32(q.buckets)
    out = np.empty(m.size, np.uint8)
    K._quantise(m, 0, m.size, inv, q.table, q.thresholds, scale, two, out)
    assert np.array_equal(out, want)
    # and it is floor(g(m) * 255 + 0.5) evaluated in float64, away from the half-integers
    if spec != "table":
        x = m.astype(np.float64)
        y = 255.0 * {"srgb": _srgb_encode, "linear": lambda v: v, "gamma:2.2": lambda v: v ** (1 / 2.2)}[spec](x)
        far = np.abs(y - np.floor(y) - 0.5) > 1e-3
        assert np.array_equal(out[far], np.floor(y[far] + 0.5))


def test_parallel_halves_and_serial_kernel_agree_bit_for_bit_and_sums_are_numpys(monkeypatch):
    import lodetools.synth._averaging_kernels as kern

    monkeypatch.setattr(kern, "cpu_threads", lambda *a, **k: 2)  # split even on a busy machine
    crf = parse_crf("gamma:2.2")
    frames = _frames(7, seed=3, size=(80, 120))  # 28,800 values: two blocks
    lut = inverse_lut(crf)[:, :1].T.copy()
    q = K.build_quantiser(crf, 3)
    flat = tuple(f.reshape(-1) for f in frames)
    a = K.average_codes(flat, lut, q, np.empty(flat[0].size, np.uint8), parallel=True)
    b = K.average_codes(flat, lut, q, np.empty(flat[0].size, np.uint8), parallel=False)
    assert np.array_equal(a, b)
    # the sums themselves: the float32 table values added in frame order, as numpy adds them
    acc = np.empty(K.BLOCK, np.float32)
    n = min(flat[0].size, K.BLOCK)
    K._accumulate_plain(flat, 0, n, lut, acc)
    ref = np.zeros(n, np.float32)
    for f in flat:
        ref += lut[0][f[:n]]
    assert np.array_equal(acc[:n], ref)


def test_bucket_check_rejects_a_pathological_crf_and_the_numpy_path_takes_over():
    # 200 codes crammed into the darkest 1e-7 of linear light: thousands of thresholds per bucket
    col = np.concatenate([np.linspace(0, 1e-7, 200), np.linspace(2e-7, 1, 56)])
    crf = table_crf(np.stack([col] * 3, axis=1), "crammed")
    assert K.build_quantiser(crf, 3) is None
    # a normal table passes, and needs at most the corrections the kernel applies
    q = K.build_quantiser(table_crf(_table(), "table"), 3)
    assert q is not None and q.corrections in (1, 2) and q.table.shape == (3, q.buckets + 1)
    frames = _frames(7, seed=5)
    used, got = _codes(frames, crf)
    assert not used
    lin = np.mean([col[f] for f in frames], axis=0)  # float64 formula with this table
    ref = np.floor(np.clip(np.interp(lin, col, np.linspace(0, 1, 256)), 0, 1) * 255 + 0.5)
    assert np.abs(got - ref).max() <= 1


def test_default_pipeline_uses_kernel_and_block_edges_are_seamless():
    """1 row over several blocks: 2 * BLOCK + 5 values, so the last block and the 64-value tail are partial."""
    crf = parse_crf("gamma:2.2")
    w = (2 * K.BLOCK + 5) // 3 + 1
    rng = np.random.default_rng(9)
    frames = [rng.integers(0, 256, (1, w, 3), dtype=np.uint8) for _ in range(7)]
    (res,) = synthesize_windows(enumerate(frames), [Window(0, 7)], crf, bit_depth=8)
    ref = reference_blur(frames, "gamma:2.2")
    assert np.abs(res.blur - ref).max() <= 1 and np.mean(res.blur != ref) < 0.001
    assert np.array_equal(res.sharp, frames[3])
    avg = WindowAverager(crf, frames[0].shape)
    assert avg.uses_kernel
    assert not WindowAverager(crf, frames[0].shape, hold=False).uses_kernel


def test_ring_reader_and_reusing_windows_match_fresh_buffers(tmp_path):
    """iter_frames(ring=R): the same frames, in R reused read-only buffers; synthesize_windows with
    reuse=R (held frames are views of those buffers) gives the same pairs as fresh buffers."""
    from lodetools.errors import BadInput
    from lodetools.io.video import iter_frames, write_video

    frames, _ = make_clip(11, 40, size=(24, 40), speed=(4.0, 6.0))
    video = tmp_path / "v.mp4"
    write_video(video, iter(frames), fps=250, quality="lossless")
    plain = [f.copy() for f in iter_frames(video)]
    ring = list(iter_frames(video, ring=9))
    assert len(ring) == len(plain) == 40 and not ring[0].flags.writeable
    assert np.shares_memory(ring[0], ring[9]) and not np.shares_memory(ring[0], ring[8])
    assert np.array_equal(ring[39], plain[39]) and np.array_equal(ring[31], plain[31])
    assert [np.array_equal(a, b) for a, b in zip(ring, plain)].count(True) == 9  # the rest were overwritten
    windows = [Window(0, 7), Window(20, 7), Window(27, 9)]  # a gap, then back to back
    crf = parse_crf("gamma:2.2")
    want = list(synthesize_windows(enumerate(plain), windows, crf, bit_depth=8))
    got = list(synthesize_windows(enumerate(iter_frames(video, ring=10)), windows, crf, bit_depth=8, reuse=10))
    assert len(got) == 3
    for a, b in zip(got, want):
        assert a.window == b.window and np.array_equal(a.blur, b.blur) and np.array_equal(a.sharp, b.sharp)
    with pytest.raises(ValueError, match="cannot hold"):
        list(synthesize_windows(enumerate(plain), windows, crf, bit_depth=8, reuse=9))
    # a truncated file still ends in BadInput
    trunc = tmp_path / "t.mp4"
    data = video.read_bytes()
    trunc.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(BadInput):
        list(iter_frames(trunc, ring=4))
    # not a video at all: a clear error naming the file, in ring mode too
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(BadInput) as err:
        list(iter_frames(junk, ring=4))
    assert str(err.value.path) == str(junk)
    # the probe's answer can be handed in (one ffmpeg process), with the same frames
    from lodetools.io.video import probe_video

    again = list(iter_frames(video, ring=41, info=probe_video(video)))
    assert all(np.array_equal(a, b) for a, b in zip(again, plain))


def _child_codes(args):
    frames, lut, q = args
    return K.average_codes(frames, lut, q, np.empty(frames[0].size, np.uint8), parallel=True)


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_two_thread_split_survives_fork(monkeypatch):
    """The worker thread is started in the parent; a forked child must not wait on it forever."""
    import multiprocessing as mp

    monkeypatch.setattr(K, "cpu_threads", lambda *a, **k: 2)    # the split whatever the load (forked too)

    crf = parse_crf("gamma:2.2")
    frames = tuple(f.reshape(-1) for f in _frames(7, seed=4, size=(120, 100)))  # several blocks
    lut, q = inverse_lut(crf)[:, :1].T.copy(), K.build_quantiser(crf, 3)
    want = K.average_codes(frames, lut, q, np.empty(frames[0].size, np.uint8), parallel=True)
    assert np.array_equal(want, K.average_codes(frames, lut, q, np.empty_like(want), parallel=False))
    assert K._WORKER is not None                                 # the parent did start its worker thread
    with mp.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(_child_codes, ((frames, lut, q),)).get(timeout=20)
    assert np.array_equal(got, want)
