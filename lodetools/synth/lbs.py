"""Local Blur Synthesis (LBS): locally blurred pairs from pasted moving objects.

BladeNet's LBS module (LODE section 4.1): objects cut from a segmentation
dataset are pasted on a sharp background; two of them move along a short
random trajectory (translation, scaling, rotation in a random choice and
order at every step), others stay at fixed positions. The frames are
composited in linear light, the blurred image is their mean re-encoded with
the camera response, the sharp image is the middle frame, and the blur mask
is the union of the moving objects' footprints over all frames.

Parameters follow the paper where it gives them and the authors' code where
it does not (``reference-notes.md``, "BladeNet local blur synthesis"):

- cut-outs rescaled by 1.2, two moving objects, plus static objects (paper);
- trajectory length ``L`` odd in ``[7, 13]`` (paper; the code used ``[5, 21]``);
- per step, each moving object shifts by 0 or +1 px per axis and may scale
  by +-1 % and rotate by +-0.3 degrees (code);
- blur = ``CRF(mean(CRF^-1(frames)))`` with gamma 2.2 (LODE Eqs. (6)-(7), the
  code's ``(mean(frame**2.2))**(1/2.2)``); frames here are rendered in linear
  light directly, so ``CRF^-1`` is applied once to the background and the
  cut-outs.

Not given by the paper and chosen here: static objects lie behind the moving
ones (so the mask, which holds the moving footprints, is never covered by a
sharp object), every object starts fully inside the background, and a
footprint is any pixel with nonzero warped alpha.

The paper selects the transformations and their order at random at every step
(LODE section 4.1); here the translation is always drawn, as a random 0 or
+step per axis as in the authors' code (so a step may not move), while scaling
and rotation are each applied with probability ``p_scale`` / ``p_rotate``; the
applied transforms are composed in a random order.

References
----------
.. [1] Li et al., "Real-World Deep Local Motion Deblurring" (LODE, BladeNet),
   AAAI 2023, section 4.1 "Local Blur Synthesis Module".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from lodetools.color.crf import CRF
from lodetools.errors import BadConfig, BadInput
from lodetools.synth.cutout import Cutout, pose_matrix


@dataclass(frozen=True)
class LBSParams:
    """Magnitudes of the local blur synthesis (defaults: paper, then authors' code).

    Attributes
    ----------
    moving : int
        Moving objects per sample (paper: 2).
    static_min, static_max : int
        Number of static objects per sample, uniform in ``[static_min,
        static_max]`` (paper: "some"; not given).
    frames_min, frames_max : int
        Trajectory length ``L``: a uniformly chosen odd number in this range
        (paper: 7..13; the authors' code: 5..21).
    translate_px : float
        Translation step per axis: 0 or ``translate_px`` pixels (code: 1).
    signed_translation : bool
        If true each object's direction per axis is a random sign, fixed along
        its trajectory; the code only moves towards +x, +y (false).
    scale_step : float
        Relative scale change per step, uniform in ``+-scale_step`` (code: 0.01).
    rotate_deg : float
        Rotation per step in degrees, uniform in ``+-rotate_deg`` (code: 0.3).
    p_scale, p_rotate : float
        Probability that a step scales / rotates.
    object_scale : float
        Rescaling of every cut-out before pasting (paper: 1.2).
    footprint_threshold : float
        A pixel is in an object's footprint where its warped alpha exceeds
        this (0: any coverage, so the mask holds every pixel the motion touched).
    """

    moving: int = 2
    static_min: int = 1
    static_max: int = 2
    frames_min: int = 7
    frames_max: int = 13
    translate_px: float = 1.0
    signed_translation: bool = False
    scale_step: float = 0.01
    rotate_deg: float = 0.3
    p_scale: float = 0.5
    p_rotate: float = 0.5
    object_scale: float = 1.2
    footprint_threshold: float = 0.0

    def check(self) -> "LBSParams":
        """Return self, or raise :class:`BadConfig` naming the bad value."""
        if self.moving < 1:
            raise BadConfig(f"need at least one moving object, got {self.moving}")
        if not 0 <= self.static_min <= self.static_max:
            raise BadConfig(f"need 0 <= static_min <= static_max, got {self.static_min}..{self.static_max}")
        lo, hi = self.frames_min, self.frames_max
        if lo < 1 or lo > hi or not any(n % 2 for n in range(lo, hi + 1)):
            raise BadConfig(f"frame range {lo}..{hi} holds no odd frame count")
        for name in ("translate_px", "scale_step", "rotate_deg", "footprint_threshold"):
            if getattr(self, name) < 0:
                raise BadConfig(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("p_scale", "p_rotate"):
            if not 0 <= getattr(self, name) <= 1:
                raise BadConfig(f"{name} must be a probability, got {getattr(self, name)}")
        if not self.object_scale > 0:
            raise BadConfig(f"object_scale must be positive, got {self.object_scale}")
        if self.footprint_threshold >= 1:
            raise BadConfig("footprint_threshold must be below 1")
        return self

    def as_dict(self) -> dict:
        return asdict(self)


def linear_cutout(rgb_display: np.ndarray, alpha: np.ndarray, crf: CRF, *, scale: float = 1.2,
                  source: str = "") -> Cutout:
    """A display-referred cut-out (e.g. from a VOC JPEG) in linear light, rescaled.

    Colours are linearised with ``crf`` and resized together with the alpha
    in premultiplied form (so the colours of the pixels around the object do
    not bleed into its edge), with bilinear interpolation (LODE section 4.1:
    "we rescale the cropped object patches by 1.2").

    Parameters
    ----------
    rgb_display : ndarray float32 (h, w, 3)
    alpha : ndarray float32 (h, w)
    crf : CRF
    scale : float
    source : str

    Returns
    -------
    Cutout
        Linear ``rgb`` (zero where alpha is zero) and ``alpha``.
    """
    lin = crf.to_linear(rgb_display)
    a = np.asarray(alpha, np.float32)
    pm = lin * a[:, :, None]
    if scale != 1.0:
        h, w = a.shape
        size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
        pm = cv2.resize(pm, size, interpolation=cv2.INTER_LINEAR)
        a = np.clip(cv2.resize(a, size, interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    rgb = np.divide(pm, a[:, :, None], out=np.zeros_like(pm), where=a[:, :, None] > 1e-6)
    return Cutout(rgb=np.clip(rgb, 0.0, None).astype(np.float32), alpha=a.astype(np.float32), source=source)


def scaled_shape(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    """The ``(h, w)`` of a cut-out of ``shape`` after :func:`linear_cutout` with ``scale``."""
    return max(1, int(round(shape[0] * scale))), max(1, int(round(shape[1] * scale)))


def fits(shape: tuple[int, int], canvas: tuple[int, int]) -> bool:
    """True if a cut-out of ``shape`` fits inside ``canvas`` (both ``(h, w)``)."""
    return shape[0] <= canvas[0] and shape[1] <= canvas[1]


def odd_frame_count(rng: np.random.Generator, lo: int, hi: int) -> int:
    """A uniformly chosen odd integer in ``[lo, hi]`` (LODE section 4.1: L odd in [7, 13])."""
    choices = [n for n in range(lo, hi + 1) if n % 2 == 1]
    if not choices:
        raise BadConfig(f"frame range {lo}..{hi} holds no odd frame count")
    return int(choices[int(rng.integers(len(choices)))])


def random_position(rng: np.random.Generator, shape: tuple[int, int], canvas: tuple[int, int]) -> np.ndarray:
    """A 2x3 pose putting a cut-out of ``shape`` upright at a random place fully inside ``canvas``.

    Raises
    ------
    BadInput
        If the cut-out is larger than the canvas.
    """
    h, w = shape
    H, W = canvas
    if not fits(shape, canvas):
        raise BadInput(f"object {w}x{h} is larger than the background {W}x{H}")
    cx = rng.uniform((w - 1) / 2.0, W - 1 - (w - 1) / 2.0)
    cy = rng.uniform((h - 1) / 2.0, H - 1 - (h - 1) / 2.0)
    return pose_matrix((cx, cy), 0.0, 1.0, shape)


def _h(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def random_trajectory(rng: np.random.Generator, start: np.ndarray, shape: tuple[int, int], n_frames: int,
                      params: LBSParams) -> np.ndarray:
    """Poses of one moving object over ``n_frames`` frames (LODE section 4.1).

    Frame 0 is ``start``; each following frame applies one step: a translation
    of 0 or ``translate_px`` per axis, and with probabilities ``p_scale`` /
    ``p_rotate`` a scaling by ``1 +- scale_step`` and a rotation by
    ``+-rotate_deg`` about the object's current centre, composed in a random
    order.

    Parameters
    ----------
    rng : numpy.random.Generator
    start : ndarray (2, 3)
        Pose of frame 0 (cut-out pixel coordinates -> canvas).
    shape : (h, w)
        The cut-out's shape.
    n_frames : int
    params : LBSParams

    Returns
    -------
    ndarray float64 (n_frames, 2, 3)
    """
    h, w = shape
    c0 = np.array([(w - 1) / 2.0, (h - 1) / 2.0, 1.0])
    sign = rng.choice([-1.0, 1.0], size=2) if params.signed_translation else np.ones(2)
    M = _h(np.asarray(start, np.float64))
    poses = [M[:2].copy()]
    for _ in range(n_frames - 1):
        ops = ["translate"]
        if rng.random() < params.p_scale:
            ops.append("scale")
        if rng.random() < params.p_rotate:
            ops.append("rotate")
        for i in rng.permutation(len(ops)):
            op = ops[i]
            if op == "translate":
                d = rng.integers(0, 2, size=2) * params.translate_px * sign
                A = np.array([[1.0, 0.0, d[0]], [0.0, 1.0, d[1]], [0.0, 0.0, 1.0]])
            else:
                c = M[:2] @ c0
                if op == "scale":
                    A = _h(cv2.getRotationMatrix2D((float(c[0]), float(c[1])), 0.0,
                                                   1.0 + rng.uniform(-params.scale_step, params.scale_step)))
                else:
                    A = _h(cv2.getRotationMatrix2D((float(c[0]), float(c[1])),
                                                   rng.uniform(-params.rotate_deg, params.rotate_deg), 1.0))
            M = A @ M
        poses.append(M[:2].copy())
    return np.stack(poses)


def warp_box(matrix: np.ndarray, shape: tuple[int, int], canvas: tuple[int, int]):
    """Canvas box ``(y0, y1, x0, x1)`` outside which a warped cut-out has zero alpha, or None.

    The cut-out's pixel rectangle widened by one pixel (bilinear reach) is
    mapped by ``matrix``; its bounding box, widened by one more pixel and
    clipped to the canvas, is returned (None when it misses the canvas).
    """
    h, w = shape
    H, W = canvas
    pts = np.array([[-1.0, -1.0, 1.0], [w, -1.0, 1.0], [-1.0, h, 1.0], [w, h, 1.0]]) @ np.asarray(matrix).T
    x0 = max(0, int(np.floor(pts[:, 0].min())) - 1)
    y0 = max(0, int(np.floor(pts[:, 1].min())) - 1)
    x1 = min(W, int(np.ceil(pts[:, 0].max())) + 2)
    y1 = min(H, int(np.ceil(pts[:, 1].max())) + 2)
    if x0 >= x1 or y0 >= y1:
        return None
    return y0, y1, x0, x1


@dataclass
class LBSResult:
    """The linear-light outputs of :func:`synthesize_linear`.

    Attributes
    ----------
    blur : ndarray float32 (H, W, 3)
        Mean of the frames (linear).
    sharp : ndarray float32 (H, W, 3)
        The middle frame (linear).
    mask : ndarray bool (H, W)
        Union over all frames of the moving objects' footprints.
    base : ndarray float32 (H, W, 3)
        Background with the static objects (what every frame shows outside the
        moving objects).
    roi : (y0, y1, x0, x1) or None
        Box holding every moving footprint; outside it ``blur``, ``sharp`` and
        ``base`` are the same array values.
    """

    blur: np.ndarray
    sharp: np.ndarray
    mask: np.ndarray
    base: np.ndarray
    roi: tuple | None
    timings: dict = field(default_factory=dict)


def _rgba(cutout: Cutout) -> np.ndarray:
    """Premultiplied colour and alpha of a cut-out stacked as one ``(h, w, 4)`` image (warped in one call)."""
    return np.dstack([cutout.rgb * cutout.alpha[:, :, None], cutout.alpha]).astype(np.float32)


def _paste(frame: np.ndarray, rgba: np.ndarray, matrix: np.ndarray, box, origin=(0, 0)) -> np.ndarray:
    """Warp a premultiplied RGBA cut-out into ``box`` of ``frame`` (whose corner is at canvas
    ``origin``) and composite it there in place; returns the warped alpha of the box."""
    y0, y1, x0, x1 = box
    M = np.array(matrix, np.float64)
    M[0, 2] -= x0
    M[1, 2] -= y0
    w = cv2.warpAffine(rgba, M, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = np.clip(w[:, :, 3], 0.0, 1.0)
    oy, ox = origin
    sub = frame[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    sub *= (1.0 - a)[:, :, None]
    sub += w[:, :, :3]
    return a


def _union(boxes):
    return (min(b[0] for b in boxes), max(b[1] for b in boxes),
            min(b[2] for b in boxes), max(b[3] for b in boxes))


def _overlap(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def _clusters(boxes: dict) -> list:
    """Group objects whose boxes overlap (transitively): ``[(box, [object index, ...]), ...]``."""
    groups = [(b, [k]) for k, b in boxes.items()]
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                if _overlap(groups[i][0], groups[j][0]):
                    bi, ki = groups[i]
                    bj, kj = groups.pop(j)
                    groups[i] = (_union([bi, bj]), sorted(ki + kj))
                    merged = True
                    break
            if merged:
                break
    return groups


def synthesize_linear(background: np.ndarray, moving, trajectories, static=(), static_poses=(), *,
                      footprint_threshold: float = 0.0) -> LBSResult:
    """Composite the frames of a trajectory in linear light and average them.

    Every frame is the background with the static objects (fixed poses) and,
    on top, the moving objects at that frame's poses, alpha-composited in
    order (``lodetools.sim.photos.composite``: ``out = out (1 - a) + a rgb``).
    Work is limited to where objects are: each object is warped only into its
    bounding box, and moving objects whose boxes (over all frames) never
    overlap are composited and averaged in separate regions. The result is
    that of compositing whole frames (the test compares the two).

    Parameters
    ----------
    background : ndarray float32 (H, W, 3)
        Linear background.
    moving : sequence of Cutout
        Linear moving objects, back to front.
    trajectories : sequence of ndarray (L, 2, 3)
        One pose per frame for each moving object (same ``L`` for all).
    static : sequence of Cutout
    static_poses : sequence of ndarray (2, 3)
    footprint_threshold : float
        Footprint = warped alpha above this.

    Returns
    -------
    LBSResult
    """
    import time

    t0 = time.perf_counter()
    bg = np.asarray(background, np.float32)
    H, W = bg.shape[:2]
    base = bg.copy()
    for c, M in zip(static, static_poses):
        box = warp_box(M, c.alpha.shape, (H, W))
        if box is not None:
            _paste(base, _rgba(c), M, box)
    t1 = time.perf_counter()
    n_frames = {len(t) for t in trajectories}
    if len(n_frames) > 1:
        raise ValueError("every moving object needs the same number of poses")
    L = n_frames.pop() if n_frames else 1
    boxes = [[warp_box(M, c.alpha.shape, (H, W)) for M in traj] for c, traj in zip(moving, trajectories)]
    reach = {k: _union([b for b in bb if b is not None]) for k, bb in enumerate(boxes)
             if any(b is not None for b in bb)}
    mask = np.zeros((H, W), bool)
    blur, sharp = base.copy(), base.copy()
    rgbas = [_rgba(c) for c in moving]
    for (ry0, ry1, rx0, rx1), members in _clusters(reach):
        base_roi = base[ry0:ry1, rx0:rx1]
        acc = np.zeros(base_roi.shape, np.float32)
        mask_roi = mask[ry0:ry1, rx0:rx1]
        for t in range(L):
            frame = base_roi.copy()
            for k in members:
                if boxes[k][t] is None:
                    continue
                a = _paste(frame, rgbas[k], trajectories[k][t], boxes[k][t], (ry0, rx0))
                y0, y1, x0, x1 = boxes[k][t]
                mask_roi[y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0] |= a > footprint_threshold
            acc += frame
            if t == L // 2:
                sharp[ry0:ry1, rx0:rx1] = frame
        acc /= np.float32(L)
        blur[ry0:ry1, rx0:rx1] = acc
    roi = _union(list(reach.values())) if reach else None
    return LBSResult(blur, sharp, mask, base, roi,
                     {"static": t1 - t0, "moving": time.perf_counter() - t1})


@dataclass
class LBSSample:
    """One synthesised pair (display-referred) and how it was made.

    Attributes
    ----------
    blur, sharp : ndarray float32 (H, W, 3)
        Display-referred, in ``[0, 1]``.
    mask : ndarray bool (H, W)
    n_frames : int
        Trajectory length ``L``.
    trajectories : list of ndarray (L, 2, 3)
        Poses of the moving objects.
    static_poses : list of ndarray (2, 3)
    timings : dict
        Seconds per stage.
    """

    blur: np.ndarray
    sharp: np.ndarray
    mask: np.ndarray
    n_frames: int
    trajectories: list
    static_poses: list
    timings: dict = field(default_factory=dict)


def local_blur_sample(rng: np.random.Generator, background_linear: np.ndarray, moving, static=(), *,
                      params: LBSParams = LBSParams(), crf: CRF = CRF("gamma", gamma=2.2)) -> LBSSample:
    """Synthesise one locally blurred pair (LODE section 4.1).

    Draws ``L`` (odd, in ``[frames_min, frames_max]``), a fixed place for each
    static object, a start place for each moving object (all fully inside the
    background) and each moving object's trajectory, then renders with
    :func:`synthesize_linear`: blur = ``CRF(mean(frames))`` (LODE Eqs. (6)-(7)),
    sharp = ``CRF(frame[L // 2])``, mask = union of moving footprints.

    Parameters
    ----------
    rng : numpy.random.Generator
    background_linear : ndarray float32 (H, W, 3)
        Linear background (``crf.to_linear`` of a sharp image).
    moving, static : sequence of Cutout
        Linear cut-outs, already rescaled (:func:`linear_cutout`).
    params : LBSParams
    crf : CRF
        Encodes the linear result (gamma 2.2 by default, as the authors' code).

    Returns
    -------
    LBSSample

    Raises
    ------
    BadInput
        If an object is larger than the background.
    """
    import time

    H, W = background_linear.shape[:2]
    L = odd_frame_count(rng, params.frames_min, params.frames_max)
    static_poses = [random_position(rng, c.alpha.shape, (H, W)) for c in static]
    starts = [random_position(rng, c.alpha.shape, (H, W)) for c in moving]
    trajs = [random_trajectory(rng, s, c.alpha.shape, L, params) for s, c in zip(starts, moving)]
    res = synthesize_linear(background_linear, moving, trajs, static, static_poses,
                            footprint_threshold=params.footprint_threshold)
    t0 = time.perf_counter()
    # encode the shared static composite once; only the box the objects reach differs
    base = crf.to_display(res.base)
    blur, sharp = base, base.copy()
    if res.roi is not None:
        y0, y1, x0, x1 = res.roi
        blur[y0:y1, x0:x1] = crf.to_display(res.blur[y0:y1, x0:x1])
        sharp[y0:y1, x0:x1] = crf.to_display(res.sharp[y0:y1, x0:x1])
    timings = dict(res.timings, encode=time.perf_counter() - t0)
    return LBSSample(blur, sharp, res.mask, L, list(trajs), static_poses, timings)
