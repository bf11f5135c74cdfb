"""Video and frame-folder I/O: round trip, determinism, bad inputs."""

import numpy as np
import pytest
import skimage.data

from lodetools.errors import BadConfig, BadInput, MissingInput
from lodetools.io.images import write_image
from lodetools.io.video import count_frames, iter_frames, list_videos, probe_video, write_video

H, W, N = 64, 96, 12


def _frames(n=N):
    """A photograph panning right by 2 pixels per frame (real texture, smooth motion)."""
    import cv2

    img = cv2.resize(skimage.data.astronaut(), (W + 2 * n, H), interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(img[:, 2 * i:2 * i + W]) for i in range(n)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("vid")
    path = d / "clip.mp4"
    n = write_video(path, iter(_frames()), fps=240)
    return path, n


def test_round_trip_near_lossless(clip):
    path, n = clip
    assert n == N
    info = probe_video(path)
    assert (info.kind, info.width, info.height, info.fps, info.n_frames) == ("video", W, H, 240.0, N)
    assert count_frames(path) == N and probe_video(path, exact=True).n_frames == N
    got = list(iter_frames(path))
    assert len(got) == N
    for a, b in zip(got, _frames()):
        assert a.dtype == np.uint8 and a.shape == (H, W, 3)
        d = np.abs(a.astype(int) - b)
        assert d.mean() < 0.6 and d.max() <= 3  # only RGB<->YCbCr rounding at qp 0


def test_lossless_is_bit_exact(tmp_path):
    p = tmp_path / "l.mp4"
    write_video(p, _frames(), fps=240, quality="lossless")
    got = list(iter_frames(p))
    assert len(got) == N and all(np.array_equal(a, b) for a, b in zip(got, _frames()))
    q = tmp_path / "l2.mp4"
    write_video(q, _frames(), fps=240, quality="lossless")
    assert q.read_bytes() == p.read_bytes()


def test_lossy_quality_and_420(tmp_path):
    p = tmp_path / "c.mkv"
    write_video(p, _frames(6), fps=25, quality=18, pix_fmt="yuv420p")
    got = list(iter_frames(p))
    err = np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(got, _frames(6))])
    assert len(got) == 6 and 0.6 < err < 6  # visibly lossier than near-lossless, still close


def test_encoding_is_deterministic(tmp_path, clip):
    p = tmp_path / "again.mp4"
    write_video(p, _frames(), fps=240)
    assert p.read_bytes() == clip[0].read_bytes()
    # no temporary file left behind
    assert [q.name for q in tmp_path.iterdir()] == ["again.mp4"]


def test_float_frames_and_streaming_generator(tmp_path):
    p = tmp_path / "f.mp4"
    gen = (f.astype(np.float32) / 255 for f in _frames(5))
    assert write_video(p, gen, fps=50) == 5
    assert len(list(iter_frames(p))) == 5


def test_frame_folder(tmp_path):
    d = tmp_path / "frames"
    fr = _frames(11)
    for i, f in enumerate(fr):
        write_image(d / f"{i}.png", f)  # 0..10: natural order puts 10 last
    write_image(d / "7.png", fr[7].astype(np.uint16) * 257, bit_depth=16)  # a 16-bit frame
    info = probe_video(d)
    assert (info.kind, info.fps, info.n_frames, info.width) == ("frames", None, 11, W)
    got = list(iter_frames(d))
    assert all(np.array_equal(a, b) for a, b in zip(got, fr))
    assert list_videos(tmp_path) == [d]


def test_bad_inputs(tmp_path, clip):
    with pytest.raises(MissingInput):
        list(iter_frames(tmp_path / "nope.mp4"))
    with pytest.raises(MissingInput):
        probe_video(tmp_path / "nope.mp4")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(BadInput, match="cannot decode"):
        probe_video(garbage)
    with pytest.raises(BadInput):
        list(iter_frames(garbage))
    data = clip[0].read_bytes()
    trunc = tmp_path / "trunc.mp4"
    for frac in (0.5, 0.9):  # moov at the front (faststart): the tail's frames are missing
        trunc.write_bytes(data[: int(len(data) * frac)])
        with pytest.raises(BadInput, match="truncated|decod"):
            list(iter_frames(trunc))
        with pytest.raises(BadInput, match="truncated|decod"):  # found before decoding
            probe_video(trunc, exact=True)
    head = tmp_path / "head.mp4"
    head.write_bytes(data[:300])
    with pytest.raises(BadInput):
        list(iter_frames(head))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadInput, match="no image frames"):
        list(iter_frames(empty))
    mixed = tmp_path / "mixed"
    write_image(mixed / "0.png", _frames(1)[0])
    write_image(mixed / "1.png", np.zeros((10, 10, 3), np.float32))
    with pytest.raises(BadInput, match="differs"):
        list(iter_frames(mixed))
    (mixed / "2.png").write_bytes(b"not a png")
    with pytest.raises(BadInput):
        list(iter_frames(mixed))


def test_writer_refuses_bad_requests(tmp_path):
    with pytest.raises(BadConfig):
        write_video(tmp_path / "a.xyz", _frames(2), fps=25)
    with pytest.raises(BadConfig):
        write_video(tmp_path / "a.mp4", _frames(2), fps=0)
    with pytest.raises(BadConfig):
        write_video(tmp_path / "a.mp4", _frames(2), fps=25, quality="ultra")
    with pytest.raises(BadInput, match="no frames"):
        write_video(tmp_path / "a.mp4", [], fps=25)
    with pytest.raises(BadInput, match="expected"):
        write_video(tmp_path / "a.mp4", [_frames(1)[0], np.zeros((8, 8, 3), np.uint8)], fps=25)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_prefetching_ring_reader_gives_the_same_frames_and_stops_cleanly(clip, tmp_path):
    import threading

    path, _ = clip
    plain = list(iter_frames(path))
    # a consumer that keeps the last 3 frames (as a window of M = 4 does): ring 3 + prefetch 2 is safe
    kept, held = [], []
    for f in iter_frames(path, ring=5, prefetch=2):
        held.append(f)
        if len(held) == 4:
            kept += [np.array(x) for x in held]
            held = []
    assert all(np.array_equal(a, b) for a, b in zip(kept, plain[:len(kept)])) and len(kept) == 12
    before = threading.active_count()
    it = iter_frames(path, ring=6, prefetch=3)
    next(it)
    it.close()  # stops the reader thread and ffmpeg
    assert threading.active_count() == before
    with pytest.raises(ValueError, match="prefetch"):
        next(iter_frames(path, ring=2, prefetch=3))
    data = path.read_bytes()
    trunc = tmp_path / "trunc.mp4"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput, match="truncated|decod"):  # the reader thread's error reaches the consumer
        list(iter_frames(trunc, ring=4, prefetch=2))


def test_count_frames_reads_packets_without_decoding(clip, monkeypatch):
    import imageio_ffmpeg

    path, n = clip
    monkeypatch.setattr(imageio_ffmpeg, "count_frames_and_secs", None)  # the decoding counter is not used
    assert count_frames(path) == n
