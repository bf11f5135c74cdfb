"""lodetools.io.png: the libdeflate PNG writer against independent decoders (OpenCV, Pillow, zlib)."""

import io
import struct
import zlib

import cv2
import numpy as np
import pytest

from lodetools.io import png
from lodetools.io.images import encode_image

needs_libdeflate = pytest.mark.skipif(not png.available(), reason="libdeflate's shared library is not installed")


def _images():
    rng = np.random.default_rng(0)
    yield rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)          # noise, odd sizes
    yield rng.integers(0, 256, (5, 1, 3), dtype=np.uint8)            # one column: no Sub neighbour
    yield np.tile(np.arange(96, dtype=np.uint8), (64, 1))            # gray ramp
    smooth = np.cumsum(rng.integers(0, 3, (40, 64, 3)), axis=1).astype(np.uint8)  # wraps modulo 256
    yield smooth
    yield rng.integers(0, 256, (9, 11, 4), dtype=np.uint8)           # RGBA
    yield rng.integers(0, 256, (9, 11, 2), dtype=np.uint8)           # gray + alpha


@needs_libdeflate
@pytest.mark.parametrize("img", list(_images()), ids=lambda a: "x".join(map(str, a.shape)))
def test_encode_png_decodes_to_the_same_pixels(img):
    from PIL import Image

    data = png.encode_png(img)
    back = np.asarray(Image.open(io.BytesIO(data)))
    np.testing.assert_array_equal(back, img if img.ndim == 2 or img.shape[2] > 1 else img[..., 0])
    if img.ndim == 2 or img.shape[2] == 3:   # OpenCV too (BGR order)
        cv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(cv if img.ndim == 2 else cv[..., ::-1], img)


def test_sub_filter_matches_the_specification_by_hand():
    img = np.array([[[10, 20, 30], [5, 250, 31], [6, 4, 0]]], np.uint8)   # one row, three RGB pixels
    # Sub(x) = Raw(x) - Raw(x - 3) mod 256, filter byte 1 first
    expect = [1, 10, 20, 30, (5 - 10) % 256, 230, 1, 1, (4 - 250) % 256, (0 - 31) % 256]
    np.testing.assert_array_equal(png.sub_filtered(img)[0], expect)


@needs_libdeflate
def test_chunks_are_well_formed():
    img = np.zeros((3, 4, 3), np.uint8)
    data = png.encode_png(img)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds = 8, []
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        kinds.append(kind)
        if kind == b"IHDR":
            assert struct.unpack(">IIBBBBB", body) == (4, 3, 8, 2, 0, 0, 0)
        if kind == b"IDAT":
            assert zlib.decompress(body) == png.sub_filtered(img).tobytes()
        pos += 12 + n
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]


@needs_libdeflate
def test_a_long_stream_is_split_into_consecutive_idat_chunks(monkeypatch):
    img = np.random.default_rng(3).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    whole = png.encode_png(img)
    monkeypatch.setattr(png, "IDAT_MAX", 100)
    data = png.encode_png(img)
    assert data.count(b"IDAT") == -(-(len(whole) - 57) // 100)   # 57 bytes: signature, IHDR, IEND, IDAT framing
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1], img)


@needs_libdeflate
def test_encode_image_fast_uses_it_and_numbers_use_opencv():
    img = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    assert encode_image(img) == png.encode_png(img)
    level3 = encode_image(img, png_compression=3)
    assert level3 != png.encode_png(img)
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(level3, np.uint8), cv2.IMREAD_COLOR)[..., ::-1], img)


def test_without_libdeflate_encode_image_falls_back_to_opencv(monkeypatch):
    monkeypatch.setattr(png, "_library", lambda: None)
    img = np.random.default_rng(2).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert not png.available()
    data = encode_image(img)
    assert data == cv2.imencode(".png", img[..., ::-1].copy())[1].tobytes()
    with pytest.raises(RuntimeError, match="libdeflate"):
        png.encode_png(img)


def test_bad_arrays_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        png.encode_png(np.zeros((4, 4), np.uint16))
    with pytest.raises(ValueError, match="uint8"):
        png.encode_png(np.zeros((4, 4, 5), np.uint8))
