"""Image files in and out (PNG 8/16-bit, TIFF, JPEG) with explicit conversions.

In memory an image is a float32 ``(H, W, 3)`` RGB array in ``[0, 1]`` (or
``(H, W)`` for masks and single-channel data). On disk it is 8- or 16-bit
integers; the conversions here are the only place where rounding happens:
``round(clip(x, 0, 1) * (2**bits - 1))``, round half up.

Every read first checks the size the file declares in its header against
:func:`max_pixels`, so a small file declaring a huge image (a decompression
bomb) is refused before anything is decoded.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import cv2
import numpy as np

from lodetools.errors import BadInput, MissingInput
from lodetools.io.atomic import atomic_write_bytes

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

# OpenCV logs warnings such as "PNG input buffer is incomplete" on stderr for a broken file,
# beside the one-line error lodetools reports for it; its errors still log, and cv2.error is
# still raised (and reported). $OPENCV_LOG_LEVEL, when set, is left to decide.
if not os.environ.get("OPENCV_LOG_LEVEL"):
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

#: Default largest image, in pixels (100 Mpx: a 12000x8000 photo fits; a
#: float32 RGB copy of it takes 1.2 GB).
MAX_PIXELS = 100_000_000
#: Environment variable that changes the limit (``lodetools --max-pixels N`` sets it).
MAX_PIXELS_ENV = "LODETOOLS_MAX_PIXELS"


def max_pixels() -> int:
    """The largest image lodetools decodes: ``$LODETOOLS_MAX_PIXELS`` or :data:`MAX_PIXELS`.

    Raises
    ------
    BadConfig
        If the variable is not a positive integer.
    """
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return MAX_PIXELS
    if not text.isdigit() or int(text) < 1:
        from lodetools.errors import BadConfig

        raise BadConfig(f"bad {MAX_PIXELS_ENV}={text!r}: expected a positive number of pixels")
    return int(text)


def declared_size(path) -> tuple[int, int] | None:
    """``(width, height)`` an image file declares in its header, without decoding it.

    Pillow's ``Image.open`` reads only the header. None when Pillow does not
    know the format (the decoder will judge the file).
    """
    from PIL import Image

    try:
        with no_pillow_limit(), Image.open(path) as im:
            return tuple(int(v) for v in im.size)
    except Exception:  # noqa: BLE001 - unknown or corrupt header: the decoder reports it
        return None


_PILLOW_LOCK = threading.Lock()
_pillow = {"depth": 0, "saved": None}


class no_pillow_limit:
    """Lift Pillow's decompression-bomb check while reading a header (ours is :func:`check_declared_size`).

    ``Image.MAX_IMAGE_PIXELS`` belongs to the process and headers are read on
    several threads: the first thread in saves and lifts it, the last one out
    restores it (a save taken while another thread had lifted it would
    restore "no limit" for good).
    """

    def __enter__(self):
        from PIL import Image

        with _PILLOW_LOCK:
            if _pillow["depth"] == 0:
                _pillow["saved"], Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            _pillow["depth"] += 1

    def __exit__(self, *exc):
        from PIL import Image

        with _PILLOW_LOCK:
            _pillow["depth"] -= 1
            if _pillow["depth"] == 0:
                Image.MAX_IMAGE_PIXELS = _pillow["saved"]


def check_declared_size(path, limit: int | None = None) -> None:
    """Refuse an image whose header declares more than ``limit`` pixels (:func:`max_pixels`).

    Raises
    ------
    BadInput
        Naming the declared size and how to raise the limit.
    """
    size = declared_size(path)
    limit = max_pixels() if limit is None else int(limit)
    if size is not None and size[0] * size[1] > limit:
        raise BadInput(f"image declares {size[0]}x{size[1]} pixels, more than the limit of {limit} "
                       f"(raise it with lodetools --max-pixels N or {MAX_PIXELS_ENV})", path)


def natural_key(path) -> list:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


def list_images(folder, extensions=IMAGE_EXTENSIONS) -> list[Path]:
    """Image files directly in ``folder``, in natural order (hidden files skipped).

    Raises
    ------
    MissingInput
        If ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInput("folder not found", folder)
    return sorted(
        (p for p in folder.iterdir()
         if p.suffix.lower() in extensions and not p.name.startswith(".") and p.is_file()),
        key=natural_key,
    )


def float_to_uint(img: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """Quantise a float image in ``[0, 1]`` to ``bit_depth`` integers (round half up, clip).

    Parameters
    ----------
    img : ndarray
        Float image; values outside ``[0, 1]`` are clipped.
    bit_depth : {8, 16}

    Returns
    -------
    ndarray of uint8 or uint16
    """
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    top = 255.0 if bit_depth == 8 else 65535.0
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    x = np.clip(np.asarray(img, dtype=np.float64 if bit_depth == 16 else np.float32), 0.0, 1.0)
    return np.floor(x * top + 0.5).astype(dtype)


def uint_to_float(img: np.ndarray) -> np.ndarray:
    """Integer image to float32 in ``[0, 1]`` (divides by the dtype's maximum)."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img.astype(np.float32) / np.float32(255.0)
    if img.dtype == np.uint16:
        return img.astype(np.float32) / np.float32(65535.0)
    if img.dtype.kind == "f":
        return img.astype(np.float32, copy=False)
    raise ValueError(f"unsupported image dtype {img.dtype}")


def read_image_native(path) -> np.ndarray:
    """Read an image as stored: uint8/uint16 (or float for float TIFF), RGB order.

    Returns
    -------
    ndarray
        ``(H, W, 3)`` for colour files (alpha dropped), ``(H, W)`` for gray.

    Raises
    ------
    MissingInput
        If the file does not exist.
    BadInput
        If it cannot be decoded, or declares more pixels than :func:`max_pixels`.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInput("image not found", path)
    check_declared_size(path)
    data = np.fromfile(path, dtype=np.uint8)
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as exc:  # e.g. a size over OpenCV's own limit (CV_IO_MAX_IMAGE_PIXELS)
        raise BadInput(f"cannot decode image ({str(exc).strip().splitlines()[-1][:120]})", path) from None
    if img is None:
        raise BadInput("cannot decode image (corrupt or not an image)", path)
    if img.ndim == 3:
        if img.shape[2] == 4:
            img = img[:, :, :3]
        img = np.ascontiguousarray(img[:, :, ::-1])
    return img


def read_image(path, *, channels: str = "rgb") -> np.ndarray:
    """Read an image as float32 in ``[0, 1]``.

    Parameters
    ----------
    path : str or os.PathLike
    channels : {'rgb', 'gray', 'any'}
        ``'rgb'`` gives ``(H, W, 3)`` (gray files are repeated), ``'gray'``
        gives ``(H, W)`` (colour files are refused), ``'any'`` keeps the file's.

    Returns
    -------
    ndarray of float32
    """
    img = uint_to_float(read_image_native(path))
    if channels == "rgb" and img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif channels == "gray" and img.ndim == 3:
        raise BadInput("expected a single-channel image", path)
    return img


def read_mask(path) -> np.ndarray:
    """Read a 0/255 mask PNG (or a BladeNet ``.npy`` mask) as a boolean ``(H, W)`` array.

    Any nonzero value is True (blurred).
    """
    if Path(path).suffix.lower() == ".npy":
        try:
            img = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BadInput(f"cannot read mask array ({exc.__class__.__name__})", path) from None
        if img.ndim not in (2, 3):
            raise BadInput(f"mask array has shape {img.shape}, expected (H, W) or (H, W, C)", path)
        if img.dtype.kind not in "biuf":
            raise BadInput(f"mask array has dtype {img.dtype}, expected bool, integer or float", path)
        return (img.max(axis=2) if img.ndim == 3 else img) != 0
    img = read_image_native(path)
    if img.ndim == 3:
        img = img.max(axis=2)
    return img > 0


#: the ``png_compression`` values: OpenCV's fast default, or a zlib level
PNG_COMPRESSIONS = ("fast",) + tuple(str(i) for i in range(10))


def png_compression_level(value) -> int | None:
    """``value`` (``None``, ``'fast'``, an int or a digit string) as a zlib level, ``None`` for ``'fast'``.

    Raises
    ------
    BadConfig
        Anything else.
    """
    if value is None or value == "fast":
        return None
    if str(value).strip().isdigit() and 0 <= int(value) <= 9:
        return int(value)
    from lodetools.errors import BadConfig

    raise BadConfig(f"bad PNG compression {value!r}: expected fast or a zlib level 0-9")


def encode_image(img: np.ndarray, ext: str = ".png", *, bit_depth: int = 8,
                 jpeg_quality: int = 95, png_compression=None) -> bytes:
    """Encode an image to the bytes of a file with extension ``ext``.

    Parameters
    ----------
    img : ndarray
        Float in ``[0, 1]`` (quantised to ``bit_depth``), or uint8/uint16 (kept),
        or bool (written as 0/255). ``(H, W, 3)`` RGB or ``(H, W)``.
    ext : str
        ``.png``, ``.tif``/``.tiff``, ``.jpg``/``.jpeg``.
    bit_depth : {8, 16}
        Used for float input. JPEG is always 8-bit.
    jpeg_quality : int
    png_compression : {None, 'fast', 0, ..., 9}
        ``None``/``'fast'`` (default): the fastest to encode: 8-bit gray and
        RGB by :func:`lodetools.io.png.encode_png` (``Sub`` filter, libdeflate
        level 1) where libdeflate loads, else OpenCV's default PNG settings
        (zlib level 1, run-length strategy, ``Sub`` filter);
        a number: that zlib level with the default strategy and adaptive
        filters (smaller files, slower; see ``docs/performance.md``). The
        pixels are the same whatever the setting: PNG is lossless.
    """
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * np.uint8(255)
    elif img.dtype.kind == "f":
        img = float_to_uint(img, 8 if ext.lower() in (".jpg", ".jpeg") else bit_depth)
    if (ext.lower() == ".png" and img.dtype == np.uint8 and (img.ndim == 2 or img.shape[2] == 3)
            and png_compression_level(png_compression) is None):
        from lodetools.io import png

        if png.available():
            return png.encode_png(img)
    if img.ndim == 3:
        img = np.ascontiguousarray(img[:, :, ::-1])
    params = []
    if ext.lower() in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif ext.lower() == ".png":
        level = png_compression_level(png_compression)
        params = [] if level is None else [cv2.IMWRITE_PNG_COMPRESSION, level]
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:  # pragma: no cover - only for unsupported extensions
        raise BadInput(f"cannot encode image as {ext}")
    return buf.tobytes()


def write_image(path, img: np.ndarray, *, bit_depth: int = 8, png_compression=None) -> None:
    """Write an image atomically; the format follows the file extension.

    See :func:`encode_image` for the accepted arrays and ``png_compression``.
    """
    path = Path(path)
    atomic_write_bytes(path, encode_image(img, path.suffix, bit_depth=bit_depth,
                                          png_compression=png_compression))
