"""High-frame-rate input: video files and folders of numbered frames, streamed.

A *video* here is either a file that ffmpeg decodes (``.mp4``, ``.mov``,
``.avi``, ``.mkv``, ...) or a folder of numbered image frames (read in natural
order: ``2.png`` before ``10.png``). Frames are yielded one at a time as
``uint8`` RGB arrays of shape ``(H, W, 3)``; a clip is never held in memory
as a whole. Decoding goes through the ffmpeg binary bundled with
imageio-ffmpeg (no PyAV).

Writing (:func:`write_video`) encodes H.264 (High 4:4:4 Predictive
profile, no chroma subsampling, so colour edges of small moving objects
survive):

- ``'lossless'``: libx264rgb at ``-qp 0`` on the RGB planes; decoding gives
  back the frames bit for bit (what the synthetic world uses).
- ``'near-lossless'`` (default): libx264 in ``yuv444p`` at ``-qp 0``
  (lossless in YCbCr); the only loss is the 8-bit RGB -> YCbCr -> RGB
  conversion, a mean absolute error of about 0.35 code values (max 2); more
  players read YCbCr than RGB H.264.
- ``'high'``, ``'medium'`` or a number: libx264 CRF 4, 18 or the number.

Encoding runs single-threaded with bit-exact flags, so the same frames
always give the same bytes.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from lodetools.errors import BadConfig, BadInput, MissingInput
from lodetools.io.atomic import file_mode
from lodetools.io.images import float_to_uint, list_images, natural_key, read_image_native, uint_to_float

#: file extensions taken for video files
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg",
                    ".wmv", ".flv", ".mts", ".m2ts", ".ts", ".3gp", ".gif")

#: container format per writable extension (ffmpeg ``-f`` names)
_WRITE_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}

#: named qualities of :func:`write_video` -> libx264 rate-control options
QUALITIES = {
    "lossless": ["-qp", "0"],        # libx264rgb: bit-exact RGB
    "near-lossless": ["-qp", "0"],   # lossless in YCbCr; loss only from RGB<->YCbCr
    "high": ["-crf", "4"],
    "medium": ["-crf", "18"],
}


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a video before decoding it.

    Attributes
    ----------
    path : pathlib.Path
    kind : {'video', 'frames'}
        A video file or a folder of numbered frames.
    width, height : int
        Frame size in pixels.
    fps : float or None
        Frame rate from the container; ``None`` for a frame folder.
    n_frames : int or None
        Number of frames: the folder's image count, or for a file the
        container's duration times its frame rate (``None`` if unknown).
    """

    path: Path
    kind: str
    width: int
    height: int
    fps: float | None
    n_frames: int | None


def is_video_file(path) -> bool:
    """True if ``path`` has a video file extension (see :data:`VIDEO_EXTENSIONS`)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def list_videos(folder) -> list[Path]:
    """The videos in ``folder``: video files and sub-folders holding image frames.

    Hidden entries are skipped; the order is natural (``clip2`` before
    ``clip10``). Raises :class:`MissingInput` if ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInput("video folder not found", folder)
    found = []
    for p in folder.iterdir():
        if p.name.startswith("."):
            continue
        if p.is_file() and is_video_file(p):
            found.append(p)
        elif p.is_dir() and list_images(p):
            found.append(p)
    return sorted(found, key=natural_key)


def _ffmpeg_error(exc: Exception) -> str:
    """The most telling line of an ffmpeg failure message."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error" in ln or "Invalid" in ln or "not found" in ln:
            return re.sub(r"^(\[[^]]*\]\s*)+", "", ln)
    return lines[-1] if lines else type(exc).__name__


def _open_file(path: Path):
    """Start decoding a video file; returns (generator, meta). Raises BadInput."""
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        meta = next(gen)
    except (OSError, RuntimeError, StopIteration) as exc:
        gen.close()
        raise BadInput(f"cannot decode video: {_ffmpeg_error(exc)}", path) from None
    if not meta.get("size") or not meta.get("codec"):
        gen.close()
        raise BadInput("no video stream", path)
    return gen, meta


def _expected_frames(meta: dict) -> int | None:
    fps, dur = meta.get("fps"), meta.get("duration")
    if not fps or not dur or not math.isfinite(fps * dur) or fps <= 0 or dur <= 0:
        return None
    return int(round(fps * dur))


def _check_path(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise MissingInput("video not found", path)
    if path.is_dir():
        return path
    if not path.is_file():
        raise BadInput("not a file or folder", path)
    return path


def probe_video(path, *, exact: bool = False) -> VideoInfo:
    """Size, frame rate and frame count of a video file or frame folder.

    Parameters
    ----------
    path : str or os.PathLike
        A video file or a folder of numbered frames.
    exact : bool
        For a video file, count the stream's frames (packets, read without
        decoding: fast) instead of estimating duration x fps, and raise
        :class:`BadInput` if fewer than the header announces (a truncated
        file), so a pipeline can refuse it before writing anything.

    Returns
    -------
    VideoInfo

    Raises
    ------
    MissingInput
        If the path does not exist.
    BadInput
        If the file cannot be decoded or (``exact``) is truncated, or the
        folder holds no readable frame.
    """
    path = _check_path(path)
    if path.is_dir():
        frames = list_images(path)
        if not frames:
            raise BadInput("no image frames in folder", path)
        first = read_image_native(frames[0])
        return VideoInfo(path, "frames", int(first.shape[1]), int(first.shape[0]), None, len(frames))
    if exact:  # one ffmpeg run reads the header and counts the packets
        meta, n = _count_packets(path)
    else:
        gen, meta = _open_file(path)
        gen.close()
        n = None
    w, h = meta["size"]
    fps = float(meta["fps"]) if meta.get("fps") else None
    expected = _expected_frames(meta)
    if exact and _short(n, expected):
        raise BadInput(f"video is truncated: {n} of {expected} frames present", path)
    return VideoInfo(path, "video", int(w), int(h), fps, expected if n is None else n)


def _short(n: int, expected: int | None) -> bool:
    """More than 2 % (and more than one frame) fewer frames than the header announces."""
    return bool(expected) and n < expected - max(1, 0.02 * expected)


def _as_rgb8(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.dtype != np.uint8:
        img = float_to_uint(uint_to_float(img), 8)
    return np.ascontiguousarray(img)


def _ring_reader(path: Path, width: int, height: int, ring: int):
    """Decode ``path`` with ffmpeg (the binary imageio-ffmpeg ships) into ``ring`` reused buffers.

    The same ffmpeg arguments as :func:`imageio_ffmpeg.read_frames` (so the
    same frames), but each frame is read with ``readinto`` into one of
    ``ring`` preallocated buffers and yielded as a read-only memoryview: no
    new 6 MB object, hence no fresh memory pages, per 1080p frame. A failing
    ffmpeg raises ``RuntimeError`` with its error output.
    """
    import subprocess
    import tempfile

    import imageio_ffmpeg

    size = width * height * 3
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path),
           "-pix_fmt", "rgb24", "-vcodec", "rawvideo", "-f", "image2pipe", "-"]
    with tempfile.TemporaryFile() as err:   # a file, not a pipe: ffmpeg can never block on it
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        try:
            bufs = [np.empty(size, np.uint8) for _ in range(ring)]
            i = 0
            while True:
                mv = memoryview(bufs[i % ring])
                got = 0
                while got < size:
                    r = proc.stdout.readinto(mv[got:])
                    if not r:
                        break
                    got += r
                if got == 0:
                    break
                yield mv[:got].toreadonly()
                i += 1
            if proc.wait() != 0:
                err.seek(0)
                raise RuntimeError(err.read().decode("utf-8", "replace"))
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()


def _prefetched(gen, ahead: int):
    """Run the generator ``gen`` on a thread, at most ``ahead`` items before the consumer's requests.

    The thread waits for a credit before each item: the consumer's ``n``-th
    request gives one, so when frame ``n`` is requested the thread may have
    produced frames up to ``n + ahead - 1``. With a ring reader of ``R``
    buffers a consumer that holds at most ``K`` frames when it asks for the
    next one is safe for ``ahead <= R - K``. The reading (``readinto`` on the
    ffmpeg pipe) releases the GIL, so decoding and the consumer's work overlap.
    An exception of ``gen`` is raised in the consumer; closing the consumer
    stops the thread.
    """
    import queue
    import threading

    items: queue.Queue = queue.Queue()
    credits = threading.Semaphore(ahead - 1)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in gen:
                items.put((True, item))
                credits.acquire()
                if stop.is_set():
                    break
            items.put((True, done))
        except BaseException as exc:  # handed to the consumer
            items.put((False, exc))
        finally:
            gen.close()

    thread = threading.Thread(target=produce, name="lodetools-frame-reader", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = items.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
            credits.release()
    finally:
        # a thread waiting for a credit wakes and stops; one inside a read finishes that frame
        # (ffmpeg keeps writing until it is killed by the generator's own cleanup)
        stop.set()
        credits.release()
        thread.join()


def iter_frames(path, *, check_length: bool = True, ring: int = 0,
                info: VideoInfo | None = None, prefetch: int = 0) -> Iterator[np.ndarray]:
    """Yield the frames of a video file or frame folder, one at a time.

    Parameters
    ----------
    path : str or os.PathLike
        A video file (anything ffmpeg decodes) or a folder of numbered image
        frames (natural order; 16-bit frames are rounded to 8 bits, gray
        frames repeated to RGB).
    check_length : bool
        For video files: after the last frame, compare the number of decoded
        frames with the container's duration x frame rate and raise
        :class:`BadInput` if more than 2 % (and more than one frame) are
        missing, which is how a truncated file shows.
    ring : int
        For video files: 0 (default) yields each frame in its own buffer;
        ``ring >= 2`` reads frames into ``ring`` reused buffers (no memory
        allocation per frame), so the frame yielded ``ring`` frames later
        overwrites this one: a consumer must copy a frame it keeps longer.
    info : VideoInfo, optional
        :func:`probe_video`'s answer for ``path`` if the caller has it (ring
        mode then starts one ffmpeg process instead of two).
    prefetch : int
        Ring mode only: read frames on a thread, up to ``prefetch`` frames
        before they are asked for, while the consumer works on the earlier
        ones (decoding overlaps the consumer's work). The ring must leave room:
        a consumer holding at most ``K`` frames when it asks for the next one
        needs ``ring >= K + prefetch``.

    Yields
    ------
    ndarray of uint8, shape (H, W, 3)
        RGB frames.

    Raises
    ------
    MissingInput
        If the path does not exist.
    BadInput
        If the file is corrupt, truncated or not a video; if the folder is
        empty, a frame cannot be decoded, or frames differ in size.
    """
    path = _check_path(path)
    if path.is_dir():
        yield from _iter_folder(path)
        return
    if ring >= 2:
        info = info if info is not None else probe_video(path)
        w, h, expected = info.width, info.height, info.n_frames
        gen = _ring_reader(path, w, h, ring)
        if prefetch > 0:
            if prefetch > ring:
                raise ValueError(f"prefetch {prefetch} exceeds the ring of {ring} buffers")
            gen = _prefetched(gen, prefetch)
    else:
        gen, meta = _open_file(path)
        (w, h), expected = meta["size"], _expected_frames(meta)
    n = 0
    try:
        for buf in gen:
            if len(buf) != w * h * 3:
                raise BadInput(f"frame {n} is truncated ({len(buf)} of {w * h * 3} bytes)", path)
            n += 1
            yield np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)
    except (OSError, RuntimeError) as exc:
        raise BadInput(f"video decoding failed after {n} frames: {_ffmpeg_error(exc)}", path) from None
    finally:
        gen.close()
    if n == 0:
        raise BadInput("video holds no decodable frame", path)
    if check_length and _short(n, expected):
        raise BadInput(f"video is truncated: decoded {n} of {expected} frames", path)


def _iter_folder(folder: Path) -> Iterator[np.ndarray]:
    files = list_images(folder)
    if not files:
        raise BadInput("no image frames in folder", folder)
    shape = None
    for f in files:
        img = _as_rgb8(read_image_native(f))
        if shape is None:
            shape = img.shape
        elif img.shape != shape:
            raise BadInput(f"frame size {img.shape[1]}x{img.shape[0]} differs from the first "
                           f"frame's {shape[1]}x{shape[0]}", f)
        yield img


def count_frames(path) -> int:
    """The exact number of frames (packets of the video stream, read without decoding).

    Raises
    ------
    MissingInput, BadInput
    """
    path = _check_path(path)
    if path.is_dir():
        n = len(list_images(path))
        if not n:
            raise BadInput("no image frames in folder", path)
        return n
    return _count_packets(path)[1]


def _count_packets(path: Path) -> tuple[dict, int]:
    """The header (imageio-ffmpeg's metadata dict) and the packet count of the first video stream.

    ``ffmpeg -i path -map 0:v:0 -c copy -f null -``: the packets are read and
    counted, not decoded (imageio-ffmpeg's ``count_frames_and_secs`` decodes
    the whole stream, as costly as reading the video). Raises BadInput.
    """
    import subprocess

    import imageio_ffmpeg
    from imageio_ffmpeg._parsing import parse_ffmpeg_header

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-i", str(path), "-map", "0:v:0", "-c", "copy",
           "-f", "null", "-"]
    res = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    text = res.stderr.decode("utf-8", "replace")
    frames = re.findall(r"frame=\s*(\d+)", text)
    if res.returncode != 0 or not frames or "Video:" not in text:
        why = "no video stream" if res.returncode == 0 or "matches no streams" in text else \
            f"cannot decode video: {_ffmpeg_error(RuntimeError(text))}"
        raise BadInput(why, path)
    try:
        meta = parse_ffmpeg_header(text)
    except Exception:  # a header imageio-ffmpeg cannot parse
        raise BadInput("cannot decode video: unreadable stream header", path) from None
    return meta, int(frames[-1])


def _rate_options(quality) -> list[str]:
    if isinstance(quality, str):
        if quality not in QUALITIES:
            raise BadConfig(f"bad video quality {quality!r}: expected one of {', '.join(QUALITIES)} "
                            "or a libx264 CRF number")
        return list(QUALITIES[quality])
    q = float(quality)
    if not 0 <= q <= 51:
        raise BadConfig(f"bad video quality {quality!r}: CRF must be in [0, 51]")
    return ["-crf", f"{q:g}"]


def write_video(path, frames: Iterable[np.ndarray], fps: float, *, quality="near-lossless",
                pix_fmt: str = "yuv444p", preset: str = "medium") -> int:
    """Encode frames to an H.264 video file, atomically and deterministically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; ``.mp4``, ``.m4v``, ``.mov``, ``.mkv`` or ``.avi``. It
        appears complete under its name, or not at all.
    frames : iterable of ndarray
        ``(H, W, 3)`` RGB, uint8 or float in ``[0, 1]`` (rounded to 8 bits),
        all the same size; consumed one at a time.
    fps : float
        Frame rate stored in the container.
    quality : {'lossless', 'near-lossless', 'high', 'medium'} or float
        See the module docstring; a number is a libx264 CRF.
    pix_fmt : {'yuv444p', 'yuv420p'}
        ``yuv420p`` halves the chroma resolution (and needs even sizes) but
        plays everywhere. Ignored for ``'lossless'`` (RGB).
    preset : str
        libx264 preset (speed/size trade-off; does not change quality at qp 0).

    Returns
    -------
    int
        Number of frames written.

    Raises
    ------
    BadConfig
        For an unknown extension, quality, pixel format or a non-positive fps.
    BadInput
        If there is no frame, or frames differ in size or are not RGB.
    """
    import imageio_ffmpeg

    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BadConfig(f"cannot write video with extension {path.suffix!r}: use "
                        + ", ".join(_WRITE_FORMATS), path)
    if pix_fmt not in ("yuv444p", "yuv420p"):
        raise BadConfig(f"bad pixel format {pix_fmt!r}: expected yuv444p or yuv420p", path)
    if not fps or fps <= 0:
        raise BadConfig(f"bad fps {fps!r}: must be positive", path)
    rate = _rate_options(quality)
    it = iter(frames)
    try:
        first = next(it)
    except StopIteration:
        raise BadInput("no frames to write", path) from None
    first = _frame8(first, path, 0)
    h, w = first.shape[:2]
    if pix_fmt == "yuv420p" and quality != "lossless" and (h % 2 or w % 2):
        raise BadConfig(f"yuv420p needs even frame sizes, got {w}x{h}", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, file_mode())  # mkstemp makes 0600; outputs get the usual mode
    os.close(fd)
    params = rate + ["-preset", preset, "-threads", "1", "-fflags", "+bitexact",
                     "-flags:v", "+bitexact", "-map_metadata", "-1", "-f", fmt]
    if fmt in ("mp4", "mov"):
        params += ["-movflags", "+faststart"]
    codec, pix_out = ("libx264rgb", "rgb24") if quality == "lossless" else ("libx264", pix_fmt)
    writer = imageio_ffmpeg.write_frames(tmp, (w, h), fps=float(fps), codec=codec, pix_fmt_out=pix_out,
                                         macro_block_size=1, quality=None, output_params=params,
                                         ffmpeg_log_level="error")
    n = 0
    try:
        writer.send(None)
        writer.send(first)
        n = 1
        for frame in it:
            f8 = _frame8(frame, path, n)
            if f8.shape != first.shape:
                raise BadInput(f"frame {n} is {f8.shape[1]}x{f8.shape[0]}, expected {w}x{h}", path)
            writer.send(f8)
            n += 1
        writer.close()
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(Exception):
            writer.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return n


def _frame8(frame, path, i) -> np.ndarray:
    a = np.asarray(frame)
    if a.ndim != 3 or a.shape[2] != 3:
        raise BadInput(f"frame {i} has shape {a.shape}, expected (H, W, 3)", path)
    if a.dtype != np.uint8:
        if a.dtype.kind != "f" and a.dtype != np.uint16:
            raise BadInput(f"frame {i} has dtype {a.dtype}, expected uint8, uint16 or float", path)
        a = float_to_uint(uint_to_float(a), 8)
    return np.ascontiguousarray(a)
