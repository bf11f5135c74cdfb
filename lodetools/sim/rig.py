"""The synthetic beam-splitter RAW rig (ReLoBlur "Paired Image Acquisition").

Two cameras look at one scene through a 50 % beam splitter. Camera S takes a
short exposure (the sharp image, one instant ``t = 0``); camera B starts at
the same time and exposes ``n`` times longer through an ND filter of
transmittance ``tau = t_S / t_L``, so it records the *mean* of ``n``
sub-frames in linear light: moving objects blur, the static background does
not (ReLoBlur Eq. (1)). On top of the ideal images the rig models every
degradation ReLoBlur's post-processing removes, with known values:

- a location-dependent colour cast per camera: a cubic polynomial of the
  normalised pixel coordinates per channel, of the form of ReLoBlur
  Eqs. (4)-(5) (``lodetools.color.correction.TERMS``), 1 at the image centre,
  falling off by 13-16 % toward a corner with a channel-dependent tilt
  (a chroma shift);
- a per-channel brightness gain of camera B (``beta = 1 / gain``, Eq. (6));
- a geometric misalignment of camera B (shift + rotation + scale about the
  centre, a few pixels), given as a dense flow field;
- the lens: a Gaussian PSF (``LENS_SIGMA_PX``), as optics and the optical
  low-pass filter blur every real Bayer sensor's image;
- the sensor: camera channel sensitivities (what white balance undoes), a
  colour cross-talk matrix (what the colour matrix undoes), Poisson-Gaussian
  noise, per-channel black levels, white-level clipping, Bayer mosaic.

Layout written by :func:`write_rig` (the raw-pairs layout of the design)::

    <out>/rig.toml                          pattern, levels, camera metadata
    <out>/lightbox_blur.dng  lightbox_sharp.dng   uniform 6500 K lightbox, per camera
    <out>/<scene>/reference_blur.dng  reference_sharp.dng   static scene
    <out>/<scene>/whiteboard_blur.dng whiteboard_sharp.dng  white board
    <out>/<scene>/<id>_blur.dng       <id>_sharp.dng        captures
    <out>/truth.json                        every true parameter
    <out>/truth/<scene>/flow_sharp_to_blur.npy   (H, W, 2) float32
    <out>/truth/<scene>/<id>_blurmask.png   moving objects over the long exposure
    <out>/truth/<scene>/<id>_sharpmask.png  moving objects at t = 0

Conventions of the truth:

- The flow ``F`` is in camera S's pixel grid: the scene point seen by S at
  ``(x, y)`` is seen by B at ``(x + F[..., 0], y + F[..., 1])``; so
  ``cv2.remap(blur, X + F[..., 0], Y + F[..., 1], ...)`` aligns B onto S
  (the convention of ``cv2.calcOpticalFlowFarneback(sharp, blur)``).
- Masks are in camera S's pixel grid (the one ``align`` warps to).
- The raw value of a pixel of camera ``c`` in channel ``k`` is, before noise,
  ``exposure * gain_c[k] * sens[k] * cast_c[k](x, y) * (mix @ (illum * scene))[k]``
  with ``scene`` linear sRGB and ``gain_S = 1``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lodetools.color.correction import CHANNELS, TERMS, cast_bayer, normalisation, poly_image
from lodetools.errors import BadConfig
from lodetools.io.atomic import atomic_write_bytes, atomic_write_text
from lodetools.io.bayer import channel_map
from lodetools.io.calibration import dump_toml
from lodetools.io.images import encode_image
from lodetools.runner import item_rng
from lodetools.sim.photos import BACKGROUNDS, composite, make_cutout, render_layer
from lodetools.synth.cutout import pose_matrix

#: presets: image size (H, W), scenes, captures per scene, sub-frames of the long exposure
PRESETS = {
    "test": {"size": (64, 96), "scenes": 1, "captures": 2, "subframes": 8},
    "demo": {"size": (240, 320), "scenes": 3, "captures": 3, "subframes": 16},
}
#: backgrounds of rig scenes (the nearly black deep-field photograph is left out:
#: a real capture is exposed for its scene)
RIG_BACKGROUNDS = tuple(b for b in BACKGROUNDS if b != "hubble_deep_field")
#: camera roles in the order the files name them
CAMERAS = ("blur", "sharp")
#: linear sRGB (D65) -> CIE XYZ
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
#: frames averaged into one lightbox frame (labs average flat fields)
LIGHTBOX_FRAMES = 16
SHORT_EXPOSURE_S = 0.002
#: Gaussian sigma (pixels) of the lens + optical low-pass filter PSF
LENS_SIGMA_PX = 0.8


@dataclass
class SensorModel:
    """The sensor and file format shared by both cameras (same module)."""

    pattern: str = "RGGB"
    bits: int = 16
    full_well: float = 20000.0  # electrons at the white level
    read_noise: float = 6.0     # electrons RMS

    @property
    def white_level(self) -> int:
        return int(round(0.95 * (2 ** self.bits - 1)))


def black_levels(bits: int, camera: str) -> list[int]:
    """Per-CFA-position black levels (2x2 row-major) of a camera."""
    base = {"sharp": (2048, 2051, 2049, 2046), "blur": (2052, 2047, 2050, 2049)}[camera]
    return [int(round(b * 2 ** (bits - 16))) for b in base]


# --------------------------------------------------------------------------- parameters

def _random_cast(rng: np.random.Generator) -> np.ndarray:
    """Cast polynomials (3, 10) of one camera: 1 at the centre, 13-16 % corner falloff."""
    coeffs = np.zeros((3, 10))
    common_tilt = rng.uniform(-0.04, 0.04)  # the splitter's angle dependence along x
    for c in range(3):
        a = np.zeros(10)
        a[4] = -rng.uniform(0.04, 0.07)            # x^2
        a[6] = -rng.uniform(0.03, 0.06)            # y^2
        a[5] = rng.uniform(-0.01, 0.01)            # x y
        a[7] = common_tilt + rng.uniform(-0.03, 0.03)  # x: chroma shift along the splitter
        a[8] = rng.uniform(-0.015, 0.015)          # y
        a[0:4] = rng.uniform(-0.01, 0.01, 4)       # cubic terms
        d = poly_image(a, (41, 41), {"cx": 20, "cy": 20, "sx": 20, "sy": 20})
        target = rng.uniform(0.13, 0.16)
        a *= target / max(-d.min(), 1e-6)
        a[9] = 1.0
        coeffs[c] = a
    return coeffs


def rig_parameters(seed: int, pattern: str = "RGGB", bits: int = 16) -> dict:
    """The rig's fixed parameters (cameras, sensor), drawn from ``seed``."""
    rng = item_rng(seed, "rig")
    sens = np.array([rng.uniform(0.45, 0.6), 1.0, rng.uniform(0.6, 0.8)])
    mix = np.array([[0.82, 0.15, 0.03], [0.07, 0.86, 0.07], [0.02, 0.16, 0.82]])
    mix = mix + rng.uniform(-0.02, 0.02, (3, 3))
    mix /= mix.sum(1, keepdims=True)  # rows sum to 1: white stays white
    gain_b = rng.uniform(0.88, 0.97, 3)
    return {
        "pattern": pattern, "bits": bits,
        "sensitivity": sens.tolist(),
        "mix": mix.tolist(),
        "camera_to_srgb": np.linalg.inv(mix).tolist(),
        "cast": {"sharp": _random_cast(rng).tolist(), "blur": _random_cast(rng).tolist()},
        "gain": {"sharp": [1.0, 1.0, 1.0], "blur": gain_b.tolist()},
        "beta": (1.0 / gain_b).tolist(),
    }


def _affine_about_centre(shape, shift, angle_deg, scale) -> np.ndarray:
    h, w = shape
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle_deg, scale)
    m[:, 2] += shift
    return m


def misalignment_flow(matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Dense flow (H, W, 2) of the affine map S -> B: ``F(p) = A p - p``."""
    h, w = shape
    X, Y = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    fx = matrix[0, 0] * X + matrix[0, 1] * Y + matrix[0, 2] - X
    fy = matrix[1, 0] * X + matrix[1, 1] * Y + matrix[1, 2] - Y
    return np.stack([fx, fy], axis=-1).astype(np.float32)


def _scene_spec(seed: int, index: int, shape, captures: int, subframes: int) -> dict:
    """Random description of one scene: background, illuminant, misalignment, objects."""
    h, w = shape
    name = f"scene{index + 1:02d}"
    rng = item_rng(seed, f"rig/{name}")
    bg = RIG_BACKGROUNDS[(index + int(rng.integers(len(RIG_BACKGROUNDS)))) % len(RIG_BACKGROUNDS)]
    illum = np.array([rng.uniform(0.92, 1.08), 1.0, rng.uniform(0.92, 1.08)])
    mag = rng.uniform(1.0, 2.5) * max(1.0, min(h, w) / 96.0) ** 0.5
    ang = rng.uniform(0, 2 * np.pi)
    shift = [mag * math.cos(ang), mag * math.sin(ang)]
    rot = rng.uniform(-0.5, 0.5)
    scale = 1.0 + rng.uniform(-0.005, 0.005)
    A = _affine_about_centre(shape, shift, rot, scale)
    caps = {}
    for k in range(captures):
        cid = f"{k + 1:04d}"
        objs = []
        for j in range(int(rng.integers(1, 3))):
            size = int(rng.uniform(0.25, 0.4) * min(h, w))
            length = rng.uniform(0.06, 0.14) * w  # blur length over the long exposure (px)
            d = rng.uniform(0, 2 * np.pi)
            objs.append({
                "cutout_seed": int(rng.integers(2 ** 31)),
                "size": size,
                "center": [float(rng.uniform(0.25, 0.75) * w), float(rng.uniform(0.25, 0.75) * h)],
                "velocity": [float(length * math.cos(d)), float(length * math.sin(d))],
                "acceleration": [float(rng.uniform(-0.2, 0.2) * length) for _ in range(2)],
                "angle": float(rng.uniform(-30, 30)),
                "angular_velocity": float(rng.uniform(-6, 6)),
                "scale": float(rng.uniform(0.9, 1.1)),
                "scale_rate": float(rng.uniform(-0.04, 0.04)),
            })
        caps[cid] = {"objects": objs, "exposure": float(rng.uniform(0.7, 0.9))}
    return {
        "name": name, "background": bg, "illuminant": illum.tolist(),
        "misalignment": {"shift": shift, "angle_deg": float(rot), "scale": float(scale),
                         "matrix": A.tolist(),
                         "flow": f"truth/{name}/flow_sharp_to_blur.npy"},
        "reference_exposure": float(rng.uniform(0.7, 0.9)),
        "whiteboard": {"reflectance": 0.8, "exposure": 0.85},
        "subframes": int(subframes),
        "captures": caps,
    }


# --------------------------------------------------------------------------- rendering

_MARGIN = 12


def _poses(obj: dict, t: float) -> tuple:
    c = np.array(obj["center"]) + np.array(obj["velocity"]) * t + 0.5 * np.array(obj["acceleration"]) * t * t
    return (float(c[0]), float(c[1])), obj["angle"] + obj["angular_velocity"] * t, \
        obj["scale"] * (1.0 + obj["scale_rate"] * t)


def _to3(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def render_capture(scene: dict, capture: str | None, shape: tuple[int, int], camera: str) -> dict:
    """Render a capture's sub-frames in linear light, in a camera's own pixel grid.

    Parameters
    ----------
    scene : dict
        A scene of ``truth.json`` (``truth["scenes"][name]``).
    capture : str or None
        Capture id, ``None`` for the static reference pair.
    shape : (H, W)
    camera : {'sharp', 'blur'}
        ``'sharp'`` renders the one instant ``t = 0`` in S's grid; ``'blur'``
        renders every sub-frame ``t = k / n`` in B's (misaligned) grid.

    Returns
    -------
    dict
        ``frames``: float32 (n, H, W, 3) linear scene radiance (before
        illuminant, cast, gain and sensor); ``masks``: bool (n, H, W) object
        coverage in S's grid.
    """
    h, w = shape
    n = 1 if camera == "sharp" else int(scene["subframes"])
    A = np.asarray(scene["misalignment"]["matrix"]) if camera == "blur" else np.eye(2, 3)
    from lodetools.sim.photos import linear_photo

    big = linear_photo(scene["background"], (h + 2 * _MARGIN, w + 2 * _MARGIN))
    Mbg = (_to3(A) @ _to3(np.array([[1.0, 0, -_MARGIN], [0, 1.0, -_MARGIN]])))[:2]
    bg = cv2.warpAffine(big, Mbg, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    bg = np.clip(bg, 0.0, None)
    objs = [] if capture is None else scene["captures"][capture]["objects"]
    cutouts = [make_cutout(np.random.default_rng(o["cutout_seed"]), o["size"]) for o in objs]
    frames = np.empty((n, h, w, 3), np.float32)
    masks = np.zeros((n, h, w), bool)
    for k in range(n):
        t = k / n
        layers = []
        for o, cut in zip(objs, cutouts):
            c, ang, sc = _poses(o, t)
            M = pose_matrix(c, ang, sc, cut.alpha.shape)
            layers.append(render_layer(cut, (_to3(A) @ _to3(M))[:2], (h, w)))
            _, alpha_s = render_layer(cut, M, (h, w))
            masks[k] |= alpha_s > 0.02
        frames[k] = composite(bg, layers)
    return {"frames": frames, "masks": masks}


def long_exposure(frames: np.ndarray) -> np.ndarray:
    """Camera B's image: the mean of the sub-frames in linear light (ReLoBlur Eq. (1)).

    With the ND filter ``tau = t_S / t_L`` the integral over the long
    exposure carries the photon energy of one short exposure, i.e. the mean
    of the ``n = t_L / t_S`` sub-frames.
    """
    return np.asarray(frames, np.float32).mean(axis=0)


def lens(linear_rgb: np.ndarray, sigma: float = None) -> np.ndarray:
    """The lens and optical low-pass filter: a Gaussian PSF of ``sigma`` pixels.

    Without it the scene would hold detail up to the pixel pitch, which a
    Bayer sensor behind real optics never sees (and which would alias
    differently in the two misaligned cameras).
    """
    sigma = LENS_SIGMA_PX if sigma is None else sigma
    return cv2.GaussianBlur(np.asarray(linear_rgb, np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def sensor_signal(linear_rgb: np.ndarray, params: dict, camera: str, exposure: float,
                  illuminant=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Noise-free normalised Bayer signal (H, W) of a camera (1.0 = white level).

    ``exposure * gain[k] * sens[k] * cast[k](x, y) * (mix @ (illum * scene))[k]``
    at each pixel's channel ``k``; not clipped.
    """
    h, w = linear_rgb.shape[:2]
    lit = linear_rgb.astype(np.float64) * np.asarray(illuminant)[None, None, :]
    cam = lit @ np.asarray(params["mix"]).T
    cam *= (np.asarray(params["sensitivity"]) * np.asarray(params["gain"][camera]))[None, None, :]
    cmap = channel_map((h, w), params["pattern"])
    bayer = np.take_along_axis(cam, cmap[:, :, None], axis=2)[:, :, 0]
    return exposure * bayer * cast_bayer(params["cast"][camera], (h, w), params["pattern"])


def expose(signal: np.ndarray, rng: np.random.Generator, sensor: SensorModel, camera: str,
           frames_averaged: int = 1) -> np.ndarray:
    """Poisson-Gaussian noise, black level, quantisation, white clipping -> uint16 DN."""
    h, w = signal.shape
    e = np.clip(signal, 0, None) * sensor.full_well * frames_averaged
    noisy = rng.poisson(e).astype(np.float64)
    noisy += rng.normal(0.0, sensor.read_noise * math.sqrt(frames_averaged), size=e.shape)
    s = noisy / (sensor.full_well * frames_averaged)
    black = np.tile(np.array(black_levels(sensor.bits, camera), np.float64).reshape(2, 2),
                    ((h + 1) // 2, (w + 1) // 2))[:h, :w]
    dn = black + s * (sensor.white_level - black)
    return np.clip(np.round(dn), 0, sensor.white_level).astype(np.uint16)


# --------------------------------------------------------------------------- files

def dng_bytes(dn: np.ndarray, *, pattern: str, bits: int, black: list, white: int,
              neutral, xyz_to_camera, model: str) -> bytes:
    """Encode a Bayer frame as an uncompressed one-tile DNG with pidng.

    Parameters
    ----------
    dn : ndarray uint16 (H, W)
    pattern : str
    bits : {12, 16}
    black : list of 4 int
        Black level per CFA position (2x2 row-major).
    white : int
    neutral : array_like (3,)
        AsShotNeutral (camera response to white, G = 1).
    xyz_to_camera : array_like (3, 3)
        ColorMatrix1 (D65).
    model : str
    """
    from pidng.core import RAW2DNG
    from pidng.defs import (CalibrationIlluminant, CFAPattern, DNGVersion, Orientation,
                            PhotometricInterpretation, PreviewColorSpace)
    from pidng.dng import DNGTags, Tag

    h, w = dn.shape
    t = DNGTags()
    t.set(Tag.ImageWidth, w)
    t.set(Tag.ImageLength, h)
    t.set(Tag.TileWidth, w)
    t.set(Tag.TileLength, h)
    t.set(Tag.Orientation, Orientation.Horizontal)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, bits)
    t.set(Tag.CFARepeatPatternDim, [2, 2])
    t.set(Tag.CFAPattern, getattr(CFAPattern, pattern))
    t.set(Tag.BlackLevelRepeatDim, [2, 2])
    t.set(Tag.BlackLevel, [int(b) for b in black])
    t.set(Tag.WhiteLevel, int(white))
    t.set(Tag.ColorMatrix1, [[int(round(v * 10000)), 10000] for v in np.asarray(xyz_to_camera).ravel()])
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    t.set(Tag.AsShotNeutral, [[int(round(v * 10000)), 10000] for v in neutral])
    t.set(Tag.Make, "lodetools")
    t.set(Tag.Model, model)
    t.set(Tag.DNGVersion, DNGVersion.V1_4)
    t.set(Tag.DNGBackwardVersion, DNGVersion.V1_2)
    t.set(Tag.PreviewColorSpace, PreviewColorSpace.sRGB)
    r = RAW2DNG()
    r.options(t, path="", compress=False)
    return bytes(r.convert(np.ascontiguousarray(dn, dtype=np.uint16)))


def _write_frame(path: Path, dn: np.ndarray, fmt: str, meta: dict) -> None:
    if fmt == "dng":
        atomic_write_bytes(path.with_suffix(".dng"), dng_bytes(dn, **meta))
    elif fmt == "tiff":
        import io

        import tifffile

        buf = io.BytesIO()
        tifffile.imwrite(buf, dn, photometric="minisblack")
        atomic_write_bytes(path.with_suffix(".tiff"), buf.getvalue())
    elif fmt == "npy":
        import io

        buf = io.BytesIO()
        np.save(buf, dn, allow_pickle=False)
        atomic_write_bytes(path.with_suffix(".npy"), buf.getvalue())
    else:
        raise BadConfig(f"unknown rig file format {fmt!r}: expected dng, tiff or npy")


def write_rig(out_dir, *, seed: int = 0, preset: str = "demo", size=None, scenes=None,
              captures=None, pattern=None, bits: int = 16, fmt: str = "dng",
              subframes=None) -> dict:
    """Write a synthetic beam-splitter capture folder with its ground truth.

    Parameters
    ----------
    out_dir : str or os.PathLike
    seed : int
        Every random choice comes from it: the same seed gives identical bytes.
    preset : {'demo', 'test'}
        Defaults: demo 240x320, 3 scenes x 3 captures, 16 sub-frames; test
        64x96, 1 scene x 2 captures, 8 sub-frames.
    size : (H, W), optional
        Even numbers.
    scenes, captures, subframes : int, optional
    pattern : {'RGGB', 'BGGR', 'GRBG', 'GBRG'}, optional
        Bayer pattern (default RGGB).
    bits : {16, 12}
        Bit depth of the DNG samples.
    fmt : {'dng', 'tiff', 'npy'}
        ``tiff``/``npy`` write single-channel 16-bit Bayer frames described
        by ``rig.toml`` (scientific cameras) instead of DNGs.

    Returns
    -------
    dict
        The ground truth (also written to ``<out>/truth.json``).
    """
    if preset not in PRESETS:
        raise BadConfig(f"unknown rig preset {preset!r}: expected {', '.join(PRESETS)}")
    p = dict(PRESETS[preset])
    h, w = tuple(int(v) for v in (size or p["size"]))
    if h < 16 or w < 16 or h % 2 or w % 2:
        raise BadConfig(f"rig image size must be even and at least 16x16, got {w}x{h}")
    pattern = (pattern or "RGGB").upper()
    if bits not in (12, 16):
        raise BadConfig(f"rig bit depth must be 12 or 16, got {bits}")
    n_scenes = int(scenes if scenes is not None else p["scenes"])
    n_caps = int(captures if captures is not None else p["captures"])
    n_sub = int(subframes if subframes is not None else p["subframes"])
    if n_scenes < 1 or n_caps < 0 or n_sub < 2:
        raise BadConfig("rig needs at least 1 scene, 0 captures and 2 sub-frames")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = rig_parameters(seed, pattern, bits)
    params["pattern"] = pattern  # pattern_indices validates it
    channel_map((2, 2), pattern)
    sensor = SensorModel(pattern=pattern, bits=bits)
    sens = np.asarray(params["sensitivity"])
    neutral = sens / sens[1]
    xyz_to_cam = np.diag(sens) @ np.asarray(params["mix"]) @ np.linalg.inv(SRGB_TO_XYZ)
    ext = {"dng": ".dng", "tiff": ".tiff", "npy": ".npy"}.get(fmt, ".dng")

    def meta(camera):
        return {"pattern": pattern, "bits": bits, "black": black_levels(bits, camera),
                "white": sensor.white_level, "neutral": neutral, "xyz_to_camera": xyz_to_cam,
                "model": f"sim-{camera}"}

    truth = {
        "seed": int(seed), "preset": preset, "size": [h, w], "pattern": pattern, "bits": bits,
        "format": fmt, "terms": list(TERMS), "channels": list(CHANNELS),
        "normalisation": normalisation((h, w)),
        "sensor": {"full_well_e": sensor.full_well, "read_noise_e": sensor.read_noise,
                   "white_level": sensor.white_level,
                   "black_level": {c: black_levels(bits, c) for c in CAMERAS}},
        "sensitivity": params["sensitivity"], "mix": params["mix"],
        "camera_to_srgb": params["camera_to_srgb"], "as_shot_neutral": neutral.tolist(),
        "cameras": {c: {"cast": params["cast"][c], "gain": params["gain"][c],
                        "exposure_time_s": SHORT_EXPOSURE_S * (n_sub if c == "blur" else 1),
                        "nd_transmittance": (1.0 / n_sub) if c == "blur" else 1.0,
                        "lightbox": f"lightbox_{c}{ext}"} for c in CAMERAS},
        "beta": params["beta"],
        "flow_convention": "blur(x + F[...,0], y + F[...,1]) ~ sharp(x, y); S pixel grid",
        "mask_convention": "camera S pixel grid; blurmask = union over the long exposure",
        "lightbox_frames_averaged": LIGHTBOX_FRAMES,
        "lens_psf_sigma_px": LENS_SIGMA_PX,
        "scenes": {},
    }
    # lightbox frames: a uniform 6500 K field, mean of LIGHTBOX_FRAMES exposures
    for cam in CAMERAS:
        rng = item_rng(seed, f"rig/lightbox/{cam}")
        white = np.ones((h, w, 3), np.float32)
        sig = sensor_signal(white, params, cam, 0.7)
        _write_frame(out / f"lightbox_{cam}", expose(sig, rng, sensor, cam, LIGHTBOX_FRAMES), fmt, meta(cam))
    for i in range(n_scenes):
        spec = _scene_spec(seed, i, (h, w), n_caps, n_sub)
        name = spec["name"]
        sdir = out / name
        tdir = out / "truth" / name
        sdir.mkdir(parents=True, exist_ok=True)
        tdir.mkdir(parents=True, exist_ok=True)
        flow = misalignment_flow(np.asarray(spec["misalignment"]["matrix"]), (h, w))
        import io

        buf = io.BytesIO()
        np.save(buf, flow, allow_pickle=False)
        atomic_write_bytes(tdir / "flow_sharp_to_blur.npy", buf.getvalue())
        illum = spec["illuminant"]
        # whiteboard: uniform reflectance under the scene's illuminant
        for cam in CAMERAS:
            rng = item_rng(seed, f"rig/{name}/whiteboard/{cam}")
            board = np.full((h, w, 3), spec["whiteboard"]["reflectance"], np.float32)
            sig = sensor_signal(board, params, cam, spec["whiteboard"]["exposure"], illum)
            _write_frame(sdir / f"whiteboard_{cam}", expose(sig, rng, sensor, cam), fmt, meta(cam))
        shots = [("reference", None, spec["reference_exposure"])] + \
            [(cid, cid, c["exposure"]) for cid, c in spec["captures"].items()]
        for sid, cid, exposure in shots:
            for cam in CAMERAS:
                r = render_capture(spec, cid, (h, w), cam)
                lin = lens(long_exposure(r["frames"]))
                sig = sensor_signal(lin, params, cam, exposure, illum)
                rng = item_rng(seed, f"rig/{name}/{sid}/{cam}")
                _write_frame(sdir / f"{sid}_{cam}", expose(sig, rng, sensor, cam), fmt, meta(cam))
                if cid is not None:
                    m = r["masks"].any(0)
                    atomic_write_bytes(tdir / f"{cid}_{cam}mask.png", encode_image(m, ".png"))
                    spec["captures"][cid][f"mask_{cam}"] = f"truth/{name}/{cid}_{cam}mask.png"
        truth["scenes"][name] = spec
    rig_toml = {
        "description": "synthetic beam-splitter rig written by lodetools.sim.rig",
        "pattern": pattern,
        "white_level": sensor.white_level,
        "black_level": black_levels(bits, "sharp"),
        "camera_to_srgb": params["camera_to_srgb"],
        "as_shot_neutral": neutral.tolist(),
        "cameras.blur": {"name": "sim-blur", "black_level": black_levels(bits, "blur"),
                         "lightbox": f"lightbox_blur{ext}"},
        "cameras.sharp": {"name": "sim-sharp", "black_level": black_levels(bits, "sharp"),
                          "lightbox": f"lightbox_sharp{ext}"},
    }
    atomic_write_text(out / "rig.toml", dump_toml(rig_toml, "# lodetools raw-pairs rig description"))
    atomic_write_text(out / "truth.json", json.dumps(truth, indent=1, sort_keys=True) + "\n")
    return truth


def read_truth(rig_dir) -> dict:
    """The ground truth written by :func:`write_rig`."""
    return json.loads((Path(rig_dir) / "truth.json").read_text(encoding="utf-8"))


def true_cast(truth: dict, camera: str, channel: int) -> np.ndarray:
    """The true cast of a camera's channel at every pixel (H, W), float64."""
    h, w = truth["size"]
    return poly_image(truth["cameras"][camera]["cast"][channel], (h, w), truth["normalisation"])
