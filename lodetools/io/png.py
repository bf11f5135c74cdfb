"""A fast 8-bit PNG writer: the ``Sub`` filter in numpy, deflate by libdeflate.

OpenCV's PNG encoder at its fastest settings (zlib level 1, run-length
strategy, ``Sub`` filter) spends about 80 ms per 1920x1080 RGB frame, nearly
all of it in zlib's deflate. libdeflate [1]_ at its level 1 deflates the same
filtered rows in about half that time into 5-10 % smaller files (figures in
``docs/performance.md``). The file is a standard PNG (one ``IDAT`` chunk of a
zlib stream, RFC 1950/1951; filter type 1 on every row, PNG specification
section 9 [2]_): any decoder reads back the same pixels, as from any PNG
encoder (lossless).

libdeflate is used when its shared library (``libdeflate.so.0``, Debian/Ubuntu
package ``libdeflate0``) can be loaded with :mod:`ctypes`; otherwise
:func:`available` is False and callers use OpenCV. No Python package is
needed.

References
----------
.. [1] E. Biggers, libdeflate, https://github.com/ebiggers/libdeflate
.. [2] W3C, "Portable Network Graphics (PNG) Specification (Third Edition)",
   https://www.w3.org/TR/png-3/
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import struct
import threading
import zlib

import numpy as np

#: libdeflate's compression level for the fast setting (1: fastest)
LEVEL = 1

#: the longest IDAT chunk written; the zlib stream is split into consecutive chunks beyond it
#: (a chunk's length field is at most 2**31 - 1, PNG specification 5.3)
IDAT_MAX = 1 << 30

_local = threading.local()


@functools.lru_cache(maxsize=1)
def _library():
    """The libdeflate shared library with its prototypes, or None if it cannot be loaded."""
    for name in ("libdeflate.so.0", ctypes.util.find_library("deflate")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            lib.libdeflate_alloc_compressor.restype = ctypes.c_void_p
            lib.libdeflate_alloc_compressor.argtypes = [ctypes.c_int]
            lib.libdeflate_free_compressor.restype = None
            lib.libdeflate_free_compressor.argtypes = [ctypes.c_void_p]
            lib.libdeflate_zlib_compress_bound.restype = ctypes.c_size_t
            lib.libdeflate_zlib_compress_bound.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
            lib.libdeflate_zlib_compress.restype = ctypes.c_size_t
            lib.libdeflate_zlib_compress.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                                     ctypes.c_void_p, ctypes.c_size_t]
        except AttributeError:  # not libdeflate after all
            continue
        return lib
    return None


def available() -> bool:
    """Whether :func:`encode_png` can run here (libdeflate's shared library loads)."""
    return _library() is not None


class _Compressor:
    """One libdeflate compressor (not thread-safe: one per thread, see :func:`_compressor`)."""

    def __init__(self, lib, level: int):
        self.lib = lib
        self.ptr = lib.libdeflate_alloc_compressor(level)
        if not self.ptr:
            raise MemoryError("libdeflate_alloc_compressor failed")

    def __del__(self):
        if getattr(self, "ptr", None):
            self.lib.libdeflate_free_compressor(self.ptr)
            self.ptr = None

    def zlib(self, data: np.ndarray) -> memoryview:
        """The zlib stream (RFC 1950) of the contiguous bytes of ``data``."""
        bound = self.lib.libdeflate_zlib_compress_bound(self.ptr, data.nbytes)
        out = np.empty(bound, np.uint8)
        n = self.lib.libdeflate_zlib_compress(self.ptr, data.ctypes.data, data.nbytes, out.ctypes.data, bound)
        if n == 0:  # pragma: no cover - the bound guarantees room
            raise RuntimeError("libdeflate_zlib_compress found no room")
        return memoryview(out)[:n]


def _compressor(level: int) -> _Compressor:
    comps = getattr(_local, "comps", None)
    if comps is None:
        comps = _local.comps = {}
    if level not in comps:
        comps[level] = _Compressor(_library(), level)
    return comps[level]


def sub_filtered(img: np.ndarray) -> np.ndarray:
    """The PNG scanlines of ``img`` with filter type 1 (``Sub``) on every row.

    Parameters
    ----------
    img : ndarray of uint8, shape (H, W) or (H, W, C)
        Samples in PNG order (RGB for colour).

    Returns
    -------
    ndarray of uint8, shape (H, 1 + W * C)
        Each row: the filter byte 1, then ``Sub(x) = Raw(x) - Raw(x - bpp)``
        modulo 256 with ``bpp = C`` bytes per pixel (PNG specification 9.2;
        ``Raw(x) = 0`` left of the row).
    """
    h = img.shape[0]
    bpp = 1 if img.ndim == 2 else img.shape[2]
    rows = np.ascontiguousarray(img).reshape(h, -1)
    out = np.empty((h, rows.shape[1] + 1), np.uint8)
    out[:, 0] = 1
    out[:, 1:1 + bpp] = rows[:, :bpp]
    np.subtract(rows[:, bpp:], rows[:, :-bpp], out=out[:, 1 + bpp:])
    return out


def _chunk(kind: bytes, data) -> bytes:
    return b"".join((struct.pack(">I", len(data)), kind, data,
                     struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF)))


#: PNG colour types by channel count: gray, gray + alpha, RGB, RGBA
_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}


def encode_png(img: np.ndarray, level: int = LEVEL) -> bytes:
    """Encode an 8-bit image as the bytes of a PNG file (``Sub`` filter, libdeflate).

    Parameters
    ----------
    img : ndarray of uint8, shape (H, W) or (H, W, C), C in 1..4
        Gray, gray + alpha, RGB or RGBA, in that channel order (not OpenCV's BGR).
    level : int
        libdeflate level, 1 (fastest) to 12.

    Returns
    -------
    bytes
        A complete PNG file.

    Raises
    ------
    ValueError
        For another dtype or shape; RuntimeError if libdeflate is not available.
    """
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in _COLOR_TYPES):
        raise ValueError(f"encode_png takes uint8 (H, W) or (H, W, 1..4) images, not {img.dtype} {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"encode_png cannot encode an empty {img.shape} image")
    if _library() is None:
        raise RuntimeError("libdeflate is not available (see lodetools.io.png.available)")
    channels = 1 if img.ndim == 2 else img.shape[2]
    ihdr = struct.pack(">IIBBBBB", img.shape[1], img.shape[0], 8, _COLOR_TYPES[channels], 0, 0, 0)
    idat = _compressor(level).zlib(sub_filtered(img))
    return b"".join((b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", ihdr),
                     *(_chunk(b"IDAT", idat[i:i + IDAT_MAX]) for i in range(0, len(idat), IDAT_MAX)),
                     _chunk(b"IEND", b"")))
