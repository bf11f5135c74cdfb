"""High-frame-rate clips with ground truth: the input of ``synthesize`` and ``stats blur-ratio``.

A clip is a static background photograph with 1 to 3 foreground objects cut
from other photographs (soft-edged masks), each moving along a smooth random
trajectory (translation, rotation, scale; :mod:`lodetools.sim.trajectory`),
optionally seen through a shaking camera (a "global blur" clip). Frames are
rendered in linear light and encoded with a known camera response
(``gamma:2.2`` by default, ``srgb`` or a table; :mod:`lodetools.color.crf`),
so a blur synthesised as ``g(mean(g^-1(frames)))`` (LODE Eqs. (6)-(7)) can be
checked against the true linear average.

:func:`make_clip` draws every random choice up front and returns a
:class:`Clip`; :meth:`Clip.frames` then renders frames one at a time (memory
stays bounded however long the clip) together with their ground truth: each
object's alpha and footprint (alpha > 0.5), pose and speed, the camera
shake, and the fraction of the frame covered by moving objects.
:func:`write_clip` stores a clip as an H.264 video and/or a PNG frame folder
plus ``truth.json`` and per-frame mask PNGs.

With a static camera the background is exactly the photograph: every pixel
outside all objects' supports (alpha = 0) equals the background bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from lodetools.color.crf import CRF, parse_crf
from lodetools.errors import BadConfig
from lodetools.io.atomic import atomic_write_text
from lodetools.io.images import float_to_uint, write_image
from lodetools.sim import photos
from lodetools.sim.trajectory import (
    FourierPath, camera_shake, compose_affine, pose_at, random_trajectory, shake_matrix,
)
from lodetools.synth.cutout import Cutout, pose_matrix

#: how the 8-bit frames relate to the linear render (written into truth.json)
LINEAR_LIGHT_NOTE = ("frame = round(255 * crf.to_display(linear)); linear = crf.to_linear(frame / 255) "
                     "up to 8-bit quantisation; linear is the alpha composite of the objects over the "
                     "background photograph (photographs taken as gamma-2.2 display values)")


@dataclass
class SceneObject:
    """A moving foreground object: its cut-out and its trajectory."""

    cutout: Cutout
    path: FourierPath


@dataclass
class ClipFrame:
    """One rendered frame and its ground truth.

    Attributes
    ----------
    index : int
    time : float
        Seconds (``index / fps``): the time of the poses.
    linear : ndarray float32 (H, W, 3)
        The linear-light render (mean over the frame's sub-frames).
    display : ndarray uint8 (H, W, 3)
        The frame as written: ``round(255 * crf.to_display(linear))``.
    alphas : ndarray float32 (K, H, W)
        Each object's coverage (mean over sub-frames), before occlusion.
    masks : ndarray bool (K, H, W)
        Each object's footprint: alpha > 0.5 in any sub-frame.
    poses : list of dict
        Per object: ``center`` [x, y], ``angle`` (deg), ``scale``, ``matrix``
        (2x3, cut-out pixels -> frame pixels, camera shake included) and
        ``speed`` (px per frame of the centre, static-camera coordinates).
    camera : dict or None
        ``dx``, ``dy`` (px), ``angle`` (deg) and ``matrix`` of the camera shake.
    """

    index: int
    time: float
    linear: np.ndarray
    display: np.ndarray
    alphas: np.ndarray
    masks: np.ndarray
    poses: list
    camera: dict | None

    @property
    def mask(self) -> np.ndarray:
        """Union of the objects' footprints, bool (H, W)."""
        return self.masks.any(axis=0) if len(self.masks) else np.zeros(self.display.shape[:2], bool)

    @property
    def coverage(self) -> float:
        """Fraction of pixels covered by moving objects (union footprint)."""
        return float(self.mask.mean())

    def truth(self) -> dict:
        """The frame's JSON ground-truth record."""
        return {"index": self.index, "time": self.time, "coverage": round(self.coverage, 6),
                "object_coverage": [round(float(m.mean()), 6) for m in self.masks],
                "poses": self.poses, "camera": self.camera}


@dataclass
class Clip:
    """A clip's scene: everything random is drawn; frames are rendered on demand.

    Attributes
    ----------
    size : (H, W)
    n_frames : int
    fps : float
    crf : CRF
    background : str
        Name of the background photograph.
    objects : list of SceneObject
        Back to front.
    shake : FourierPath or None
        Camera shake ``(dx, dy, angle)``; None for a static camera.
    subframes : int
        Linear-light renders averaged per frame (a 360-degree shutter); 1 = none.
    """

    size: tuple
    n_frames: int
    fps: float
    crf: CRF
    background: str
    objects: list
    shake: FourierPath | None = None
    subframes: int = 1
    _bg: np.ndarray = field(default=None, repr=False)
    _margin: int = 0

    def __post_init__(self):
        h, w = self.size
        if self.shake is None:
            self._bg = photos.linear_photo(self.background, (h, w))
        else:
            # a larger photograph so the shaken view never shows an empty border
            reach = np.sum(np.abs(self.shake.amp), axis=0)
            rot = np.deg2rad(reach[2]) * 0.5 * np.hypot(h, w)
            self._margin = int(np.ceil(max(reach[0], reach[1]) + rot)) + 2
            m = self._margin
            self._bg = photos.linear_photo(self.background, (h + 2 * m, w + 2 * m))

    @property
    def camera(self) -> str:
        """``'static'`` or ``'shake'``."""
        return "static" if self.shake is None else "shake"

    def _camera_at(self, t: float):
        if self.shake is None:
            return None
        dx, dy, a = (float(v) for v in self.shake(t))
        return shake_matrix(dx, dy, a, self.size), (dx, dy, a)

    def _render_at(self, t: float):
        """Linear render and per-object alphas at time ``t`` (seconds)."""
        h, w = self.size
        cam = self._camera_at(t)
        if cam is None:
            bg = self._bg
        else:
            m = self._margin
            shift = np.array([[1.0, 0, -m], [0, 1.0, -m]])
            bg = cv2.warpAffine(self._bg, compose_affine(cam[0], shift), (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
        layers, mats = [], []
        for obj in self.objects:
            center, angle, scale = pose_at(obj.path, t)
            mat = pose_matrix(center, angle, scale, obj.cutout.alpha.shape)
            if cam is not None:
                mat = compose_affine(cam[0], mat)
            layers.append(photos.render_layer(obj.cutout, mat, (h, w)))
            mats.append(mat)
        lin = photos.composite(bg, layers)
        return lin, [a for _, a in layers], mats, cam

    def frame(self, i: int) -> ClipFrame:
        """Render frame ``i`` (0-based) with its ground truth."""
        h, w = self.size
        k = len(self.objects)
        t0 = i / self.fps
        lin_sum = np.zeros((h, w, 3), np.float32)
        alpha_sum = np.zeros((k, h, w), np.float32)
        masks = np.zeros((k, h, w), bool)
        first = None
        for j in range(self.subframes):
            lin, alphas, mats, cam = self._render_at(t0 + j / (self.subframes * self.fps))
            if first is None:
                first = (mats, cam)
            if self.subframes == 1:
                lin_sum = lin
            else:
                lin_sum += lin
            for o, a in enumerate(alphas):
                alpha_sum[o] += a
                masks[o] |= a > 0.5
        linear = lin_sum if self.subframes == 1 else lin_sum / np.float32(self.subframes)
        alphas = alpha_sum / np.float32(self.subframes)
        display = float_to_uint(self.crf.to_display(linear), 8)
        mats, cam = first
        poses = []
        for obj, mat in zip(self.objects, mats):
            center, angle, scale = pose_at(obj.path, t0)
            v = obj.path.velocity(t0)[:2] / self.fps
            poses.append({"center": [round(center[0], 4), round(center[1], 4)], "angle": round(angle, 4),
                          "scale": round(scale, 6), "matrix": np.round(mat, 6).tolist(),
                          "speed": round(float(np.hypot(*v)), 5)})
        camera = None if cam is None else {
            "dx": round(cam[1][0], 5), "dy": round(cam[1][1], 5), "angle": round(cam[1][2], 5),
            "matrix": np.round(cam[0], 6).tolist()}
        return ClipFrame(i, t0, linear, display, alphas, masks, poses, camera)

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[ClipFrame]:
        """Render frames ``start .. stop-1`` one at a time (a fresh generator per call)."""
        stop = self.n_frames if stop is None else min(stop, self.n_frames)
        for i in range(start, stop):
            yield self.frame(i)

    def background_linear(self) -> np.ndarray:
        """The static-camera background (linear light); for a shaking camera, the
        enlarged photograph the frames are cut from."""
        return self._bg

    def describe(self) -> dict:
        """The clip's JSON ground-truth header (no per-frame data)."""
        return {
            "size": [int(self.size[1]), int(self.size[0])], "fps": float(self.fps),
            "n_frames": int(self.n_frames), "crf": self.crf.name, "camera": self.camera,
            "subframes": int(self.subframes), "background": self.background,
            "background_margin": int(self._margin), "linear_light": LINEAR_LIGHT_NOTE,
            "objects": [{"source": o.cutout.source, "cutout_size": list(o.cutout.alpha.shape),
                         "trajectory": o.path.to_dict()} for o in self.objects],
            "shake": None if self.shake is None else self.shake.to_dict(),
            "time_units": "seconds; pose of frame i at t = i / fps",
            "trajectory_components": ["x", "y", "angle_deg", "log_scale"],
        }


def _count(n_objects, rng) -> int:
    if isinstance(n_objects, (tuple, list)):
        lo, hi = n_objects
        return int(rng.integers(lo, hi + 1))
    return int(n_objects)


def make_clip(rng: np.random.Generator, size=(64, 96), n_frames: int = 48, fps: float = 250.0, *,
              n_objects=(1, 3), shake: bool = False, crf="gamma:2.2", speed=(0.5, 2.0),
              spin=(0.0, 90.0), object_size=(0.3, 0.6), shake_amplitude=(1.0, 4.0),
              shake_rotation=(0.2, 1.0), subframes: int = 1) -> Clip:
    """Draw a random clip: background, objects, trajectories, camera shake.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    size : (H, W)
    n_frames : int
    fps : float
    n_objects : int or (low, high)
        Number of moving objects (inclusive range drawn uniformly).
    shake : bool
        Camera shake (global blur) or a static camera.
    crf : str or CRF
        Camera response (``gamma:2.2``, ``srgb``, ``linear`` or a table file).
    speed : (low, high)
        Peak object speed in canvas widths per second.
    spin : (low, high)
        Peak rotation speed in degrees per second.
    object_size : (low, high)
        Object size (longest side) as a fraction of the canvas's shorter side.
    shake_amplitude, shake_rotation : (low, high)
        Camera shake extent in pixels and degrees (see :func:`camera_shake`).
    subframes : int
        Renders averaged per frame (exposure blur inside one high-fps frame).

    Returns
    -------
    Clip

    Raises
    ------
    BadConfig
        For impossible sizes or counts.
    """
    h, w = (int(v) for v in size)
    if h < 16 or w < 16:
        raise BadConfig(f"clip size {w}x{h} is too small (at least 16x16)")
    if n_frames < 1 or fps <= 0 or subframes < 1:
        raise BadConfig(f"need n_frames >= 1, fps > 0 and subframes >= 1 (got {n_frames}, {fps}, {subframes})")
    crf = crf if isinstance(crf, CRF) else parse_crf(crf)
    k = _count(n_objects, rng)
    if not 0 <= k <= 8:
        raise BadConfig(f"number of objects must be 0 to 8, got {k}")
    background = photos.BACKGROUNDS[int(rng.integers(len(photos.BACKGROUNDS)))]
    textures = [t for t in photos.TEXTURES if t != background]
    objects = []
    for _ in range(k):
        side = int(round(rng.uniform(*object_size) * min(h, w)))
        texture = textures[int(rng.integers(len(textures)))]
        cut = photos.make_cutout(rng, side, texture=texture)
        path = random_trajectory(rng, (h, w), speed=speed, spin=spin)
        objects.append(SceneObject(cut, path))
    cam = camera_shake(rng, amplitude=shake_amplitude, rotation=shake_rotation) if shake else None
    return Clip((h, w), int(n_frames), float(fps), crf, background, objects, cam, int(subframes))


def render_clip(rng: np.random.Generator, size=(64, 96), n_frames: int = 48, fps: float = 250.0,
                n_objects=(1, 3), shake: bool = False, crf="gamma:2.2", **kwargs) -> Iterator[ClipFrame]:
    """Render a random clip frame by frame: ``make_clip(...).frames()``.

    See :func:`make_clip` for the parameters.

    Yields
    ------
    ClipFrame
        Display-referred 8-bit frame, linear render and ground truth.
    """
    return make_clip(rng, size, n_frames, fps, n_objects=n_objects, shake=shake, crf=crf,
                     **kwargs).frames()


def write_clip(clip: Clip, name: str, clips_dir, truth_dir, *, fmt: str = "video",
               quality: str = "lossless", object_masks: bool = False, extra: dict | None = None) -> dict:
    """Write a clip and its ground truth, rendering each frame once.

    Layout (``fmt``):

    - ``video``:  ``<clips_dir>/<name>.mp4``, H.264 at ``quality`` (see
      :func:`lodetools.io.video.write_video`: ``lossless`` decodes to the
      frames bit for bit, ``near-lossless`` is yuv444p within ~0.35 levels)
    - ``frames``: ``<clips_dir>/<name>/<frame:06d>.png``
    - ``both``:   the video in ``<clips_dir>`` and the exact 8-bit frames as
      PNGs in ``<truth_dir>/<name>/frames/`` (outside ``clips_dir``, so a
      folder of clips never lists a clip twice)

    Ground truth in ``<truth_dir>/<name>/``: ``truth.json`` (the clip's
    header from :meth:`Clip.describe` plus one record per frame from
    :meth:`ClipFrame.truth`), ``masks/<frame:06d>.png`` (0/255 union of the
    moving objects' footprints) and, with ``object_masks``,
    ``objects/<k>/<frame:06d>.png``.

    Returns
    -------
    dict
        The truth header with the relative paths written and the mean coverage.
    """
    from lodetools.io.video import write_video

    if fmt not in ("video", "frames", "both"):
        raise BadConfig(f"bad clip format {fmt!r}: expected video, frames or both")
    clips_dir, truth_dir = Path(clips_dir), Path(truth_dir) / name
    frames_dir = clips_dir / name if fmt == "frames" else truth_dir / "frames" if fmt == "both" else None
    records = []

    def stream():
        for fr in clip.frames():
            stem = f"{fr.index:06d}"
            if frames_dir is not None:
                write_image(frames_dir / f"{stem}.png", fr.display)
            write_image(truth_dir / "masks" / f"{stem}.png", fr.mask)
            if object_masks:
                for o, m in enumerate(fr.masks):
                    write_image(truth_dir / "objects" / str(o) / f"{stem}.png", m)
            records.append(fr.truth())
            yield fr.display

    head = clip.describe()
    head["name"] = name
    if fmt in ("video", "both"):
        video = clips_dir / f"{name}.mp4"
        write_video(video, stream(), clip.fps, quality=quality)
        head["video"] = {"path": f"{clips_dir.name}/{name}.mp4", "codec": "h264", "quality": quality,
                         "pix_fmt": "rgb24" if quality == "lossless" else "yuv444p"}
    else:
        for _ in stream():
            pass
        head["video"] = None
    head["frames_dir"] = None if frames_dir is None else str(frames_dir.relative_to(clips_dir.parent))
    head["masks_dir"] = str((truth_dir / "masks").relative_to(clips_dir.parent))
    head["mean_coverage"] = round(float(np.mean([r["coverage"] for r in records])), 6)
    head.update(extra or {})
    truth = dict(head, frames=records)
    atomic_write_text(truth_dir / "truth.json", json.dumps(truth, indent=1) + "\n")
    return head
