"""RAW frames in: libraw formats through rawpy, and Bayer TIFF/NPY described by ``rig.toml``.

A :class:`RawFrame` holds the Bayer mosaic with the black level of each CFA
position subtracted and divided by ``white - black``, so 1.0 is the white
level (float32, not clipped: noise below black stays negative so means stay
unbiased), plus the metadata the ISP needs.

Capture folders follow the raw-pairs layout of the design::

    <raw-pairs>/rig.toml                     optional (required for TIFF/NPY frames)
    <raw-pairs>/<scene>/reference_blur.<ext> reference_sharp.<ext>
    <raw-pairs>/<scene>/whiteboard_blur.<ext> whiteboard_sharp.<ext>   optional
    <raw-pairs>/<scene>/<id>_blur.<ext>       <id>_sharp.<ext>

``rig.toml`` keys (top level, overridable per camera under ``[cameras.blur]``
and ``[cameras.sharp]``): ``pattern`` (RGGB, BGGR, GRBG, GBRG),
``black_level`` (one value or four, per 2x2 CFA position row-major),
``white_level``, ``camera_to_srgb`` (3x3), ``as_shot_neutral`` (3),
``calibration`` (a calibration TOML of ``lodetools calibrate color``).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lodetools.errors import BadConfig, BadInput, MissingInput
from lodetools.io.bayer import PATTERNS, channel_map
from lodetools.io.images import natural_key

#: extensions read through the rig description instead of libraw
BAYER_ARRAY_EXTENSIONS = (".npy", ".tif", ".tiff")
#: extensions libraw commonly reads (any other file is tried with rawpy too)
LIBRAW_EXTENSIONS = (".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".pef",
                     ".srw", ".raw", ".3fr", ".iiq", ".erf", ".kdc", ".mrw", ".nrw", ".x3f")
RAW_EXTENSIONS = LIBRAW_EXTENSIONS + BAYER_ARRAY_EXTENSIONS
RIG_TOML = "rig.toml"
ROLES = ("blur", "sharp")
_NAME = re.compile(r"^(?P<id>.+)_(?P<role>blur|sharp)$")


@dataclass
class RawFrame:
    """One Bayer RAW frame, black-subtracted and white-normalised.

    Attributes
    ----------
    bayer : ndarray float32 (H, W)
        ``(raw - black) / (white - black)`` per CFA position.
    pattern : str
        ``RGGB``, ``BGGR``, ``GRBG`` or ``GBRG``.
    black : list of float
        Black level per 2x2 CFA position (row-major).
    white : float
    saturated : ndarray bool (H, W)
        Pixels at or above the white level.
    neutral : ndarray (3,) or None
        Camera response to white (``AsShotNeutral``, G = 1), from metadata.
    camera_to_srgb : ndarray (3, 3) or None
        White-balanced camera RGB -> linear sRGB, from metadata or rig.toml.
    path : pathlib.Path
    """

    bayer: np.ndarray
    pattern: str
    black: list
    white: float
    saturated: np.ndarray
    neutral: np.ndarray | None = None
    camera_to_srgb: np.ndarray | None = None
    path: Path | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.bayer.shape)


@dataclass
class RigConfig:
    """The contents of a capture folder's ``rig.toml`` (all optional)."""

    path: Path | None = None
    common: dict = field(default_factory=dict)
    cameras: dict = field(default_factory=dict)

    def get(self, key: str, role: str | None = None, default=None):
        """A value for a camera role (``[cameras.<role>]``) or the top level."""
        cam = self.cameras.get(role, {}) if role else {}
        if key in cam:
            return cam[key]
        return self.common.get(key, default)


def read_rig_config(folder) -> RigConfig:
    """Read ``<folder>/rig.toml`` (an empty config when there is none).

    Raises
    ------
    BadConfig
        If the file is not valid TOML.
    """
    p = Path(folder) / RIG_TOML
    if not p.is_file():
        return RigConfig()
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadConfig(f"rig.toml is not valid TOML: {exc}", p) from None
    cams = doc.get("cameras", {})
    if not isinstance(cams, dict):
        raise BadConfig("[cameras] must be a table", p)
    return RigConfig(path=p, common={k: v for k, v in doc.items() if k != "cameras"}, cameras=cams)


def _pattern_from_rawpy(raw, path) -> str:
    pat = getattr(raw, "raw_pattern", None)
    desc = raw.color_desc.decode(errors="replace") if raw.color_desc else ""
    if pat is None or np.asarray(pat).shape != (2, 2) or raw.num_colors != 3 or not desc:
        raise BadInput("not a Bayer sensor (no 2x2 RGB colour filter array); "
                       "lodetools develops Bayer RAW only", path)
    letters = "".join(desc[i] if i < len(desc) else "?" for i in np.asarray(pat).ravel())
    if letters not in PATTERNS:
        raise BadInput(f"not a Bayer sensor (colour filter array {letters})", path)
    return letters


def _role(path: Path) -> str | None:
    m = _NAME.match(path.stem)
    return m.group("role") if m else ("blur" if path.stem.endswith("blur") else
                                      "sharp" if path.stem.endswith("sharp") else None)


def _four(values, what, path) -> list[float]:
    v = np.atleast_1d(np.asarray(values, dtype=np.float64)).ravel()
    if v.size == 1:
        v = np.repeat(v, 4)
    if v.size != 4:
        raise BadConfig(f"{what} must be one value or four (per 2x2 CFA position)", path)
    return v.tolist()


def _normalise(raw: np.ndarray, black, white: float, path) -> tuple[np.ndarray, np.ndarray]:
    h, w = raw.shape
    b = np.tile(np.asarray(black, np.float32).reshape(2, 2), ((h + 1) // 2, (w + 1) // 2))[:h, :w]
    span = np.float32(white) - b
    if np.any(span <= 0):
        raise BadInput(f"white level {white} is not above the black level", path)
    raw = raw.astype(np.float32)
    return ((raw - b) / span).astype(np.float32), raw >= np.float32(white)


_SILENCE_LOCK = threading.Lock()
_silence = {"depth": 0, "saved": None}


@contextlib.contextmanager
def _libraw_silenced():
    """Send file descriptor 2 to /dev/null: LibRaw prints its own line (``<file>: Unexpected end of file``)
    before raising, and the exception becomes our one-line error.

    File descriptors belong to the process, and pipelines read RAW files on several
    threads at once: the first thread in saves and redirects fd 2, the last one out
    restores it (a save taken while another thread had redirected it would restore
    /dev/null for good). What another thread writes to stderr during a RAW read (a
    few milliseconds per file: a progress-bar refresh) is lost; lodetools' own
    error lines are printed by the command after its work threads have ended.
    """
    with _SILENCE_LOCK:
        if _silence["depth"] == 0:
            try:
                sys.stderr.flush()
                saved = os.dup(2)
            except (OSError, ValueError):  # no usable fd 2: nothing to silence
                saved = None
            if saved is not None:
                try:
                    with open(os.devnull, "wb") as null:
                        os.dup2(null.fileno(), 2)
                except OSError:
                    os.close(saved)
                    saved = None
            _silence["saved"] = saved
        _silence["depth"] += 1
    try:
        yield
    finally:
        with _SILENCE_LOCK:
            _silence["depth"] -= 1
            if _silence["depth"] == 0 and _silence["saved"] is not None:
                os.dup2(_silence["saved"], 2)
                os.close(_silence["saved"])
                _silence["saved"] = None


def _read_libraw(path: Path, rig: RigConfig, role) -> RawFrame:
    import rawpy

    try:
        with _libraw_silenced():
            raw = rawpy.imread(str(path))
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        raise BadInput(f"unreadable RAW file ({type(exc).__name__})", path) from None
    with raw, _libraw_silenced():
        try:
            pattern = _pattern_from_rawpy(raw, path)
            data = np.array(raw.raw_image_visible, copy=True)
            cols = raw.raw_colors_visible[:2, :2].ravel()
            black = [float(raw.black_level_per_channel[c]) for c in cols]
            white = float(raw.white_level)
            wb = np.asarray(raw.camera_whitebalance[:3], np.float64)
            cm = np.asarray(raw.color_matrix, np.float64)[:, :3]
        except (rawpy.LibRawError, ValueError) as exc:
            raise BadInput(f"unreadable RAW file ({type(exc).__name__})", path) from None
    if data.ndim != 2:
        raise BadInput("not a Bayer sensor (RAW data has several samples per pixel)", path)
    neutral = (wb[1] / wb) if np.all(wb > 0) else None
    matrix = cm if np.any(cm) else None
    if rig.get("camera_to_srgb", role) is not None:
        matrix = _matrix(rig.get("camera_to_srgb", role), rig.path)
    bayer, sat = _normalise(data, black, white, path)
    return RawFrame(bayer, pattern, black, white, sat, neutral, matrix, path)


def _matrix(value, path) -> np.ndarray:
    m = np.asarray(value, np.float64)
    if m.size != 9:
        raise BadConfig("camera_to_srgb must be a 3x3 matrix", path)
    return m.reshape(3, 3)


def _read_array(path: Path, rig: RigConfig, role) -> RawFrame:
    if rig.path is None:
        raise MissingInput(f"{path.suffix} Bayer frames need a {RIG_TOML} (pattern, black_level, "
                           "white_level) in the capture folder", path)
    for key in ("pattern", "black_level", "white_level"):
        if rig.get(key, role) is None:
            raise BadConfig(f"rig.toml lacks '{key}' (needed for {path.suffix} frames)", rig.path)
    pattern = str(rig.get("pattern", role)).upper()
    if pattern not in PATTERNS:
        raise BadConfig(f"unknown Bayer pattern {pattern!r} in rig.toml", rig.path)
    try:
        if path.suffix.lower() == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            import tifffile

            data = tifffile.imread(path)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is an unreadable file
        raise BadInput(f"unreadable Bayer frame ({type(exc).__name__})", path) from None
    data = np.asarray(data)
    if data.ndim != 2 or data.dtype.kind not in "ui":
        raise BadInput(f"not a single-channel integer Bayer frame (shape {data.shape}, {data.dtype})", path)
    black = _four(rig.get("black_level", role), "black_level", rig.path)
    white = float(rig.get("white_level", role))
    neutral = rig.get("as_shot_neutral", role)
    matrix = rig.get("camera_to_srgb", role)
    bayer, sat = _normalise(data, black, white, path)
    return RawFrame(bayer, pattern, black, white, sat,
                    None if neutral is None else np.asarray(neutral, np.float64),
                    None if matrix is None else _matrix(matrix, rig.path), path)


def read_raw(path, rig: RigConfig | None = None) -> RawFrame:
    """Read a Bayer RAW frame.

    Parameters
    ----------
    path : str or os.PathLike
        Anything libraw reads (DNG, CR2, NEF, ARW, ...), or a single-channel
        integer ``.npy`` / ``.tif(f)`` described by ``rig``.
    rig : RigConfig, optional
        The capture folder's ``rig.toml`` (default: the one in the file's
        folder, else in the folder above it, the raw-pairs root of a scene).

    Returns
    -------
    RawFrame

    Raises
    ------
    MissingInput
        The file does not exist, or a TIFF/NPY frame has no rig.toml.
    BadInput
        Unreadable or corrupt file, or not a Bayer sensor.
    BadConfig
        rig.toml lacks the pattern or levels.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInput("RAW file not found", path)
    if rig is None:  # the file's folder (lightbox frames), else the raw-pairs root above a scene
        rig = read_rig_config(path.parent)
        if rig.path is None:
            rig = read_rig_config(path.parent.parent)
    role = _role(path)
    if path.suffix.lower() in BAYER_ARRAY_EXTENSIONS:
        return _read_array(path, rig, role)
    return _read_libraw(path, rig, role)


def check_pair(blur: RawFrame, sharp: RawFrame) -> None:
    """Raise :class:`BadInput` if a blur/sharp pair differs in size or CFA pattern."""
    if blur.shape != sharp.shape:
        raise BadInput(f"blur/sharp size mismatch {blur.shape[1]}x{blur.shape[0]} vs "
                       f"{sharp.shape[1]}x{sharp.shape[0]}", blur.path)
    if blur.pattern != sharp.pattern:
        raise BadInput(f"blur/sharp CFA pattern mismatch {blur.pattern} vs {sharp.pattern}", blur.path)


@dataclass
class RawScene:
    """The files of one scene of a raw-pairs folder.

    Attributes
    ----------
    name : str
    folder : pathlib.Path
    reference : (blur, sharp) paths or None
    whiteboard : (blur, sharp) paths or None
    captures : dict
        id -> (blur path, sharp path), in natural order.
    problems : list of (path, message)
        Files without a partner, duplicate ids.
    """

    name: str
    folder: Path
    reference: tuple | None = None
    whiteboard: tuple | None = None
    captures: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)


def scan_scene(folder) -> RawScene:
    """Group a scene folder's RAW files into blur/sharp pairs by name."""
    folder = Path(folder)
    found: dict[str, dict] = {}
    scene = RawScene(folder.name, folder)
    for p in sorted(folder.iterdir(), key=natural_key):
        if not p.is_file() or p.name.startswith(".") or p.suffix.lower() not in RAW_EXTENSIONS:
            continue
        m = _NAME.match(p.stem)
        if not m:
            continue
        slot = found.setdefault(m.group("id"), {})
        if m.group("role") in slot:
            scene.problems.append((p, f"two {m.group('role')} files for id {m.group('id')!r}"))
            continue
        slot[m.group("role")] = p
    for iid, slot in found.items():
        missing = [r for r in ROLES if r not in slot]
        if missing:
            have = next(iter(slot.values()))
            scene.problems.append((have, f"missing partner: no {missing[0]} file for id {iid!r}"))
            continue
        pair = (slot["blur"], slot["sharp"])
        if iid == "reference":
            scene.reference = pair
        elif iid == "whiteboard":
            scene.whiteboard = pair
        else:
            scene.captures[iid] = pair
    return scene


def scan_raw_pairs(root) -> list[RawScene]:
    """The scenes of a raw-pairs folder: sub-folders holding ``*_blur``/``*_sharp`` RAW files.

    Raises
    ------
    MissingInput
        If ``root`` is not a folder or holds no scene.
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingInput("raw-pairs folder not found", root)
    scenes = []
    for d in sorted(root.iterdir(), key=natural_key):
        if not d.is_dir() or d.name.startswith("."):
            continue
        if any(p.suffix.lower() in RAW_EXTENSIONS and _NAME.match(p.stem) for p in d.iterdir()):
            scenes.append(scan_scene(d))
    if not scenes:
        raise MissingInput("no scenes (sub-folders with <id>_blur / <id>_sharp RAW files)", root)
    return scenes


def bayer_channel_map(frame: RawFrame) -> np.ndarray:
    """Per-pixel colour index (0 R, 1 G, 2 B) of a frame."""
    return channel_map(frame.shape, frame.pattern)
