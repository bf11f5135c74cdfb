"""LBFMG: local-blur foreground masks by MOG2 background subtraction.

ReLoBlur (Li et al., AAAI 2023) builds its ground-truth local-blur masks with
a *Local Blur Foreground Mask Generator* (main paper, "Ground-Truth Local Blur
Mask Generation"; appendix C, Algorithm 1). For one target pair
``(S_1, B_1)`` of a scene:

1. two Gaussian-mixture background subtractors (Zivkovic 2004, OpenCV's
   ``BackgroundSubtractorMOG2``), ``G_1`` for sharp and ``G_2`` for blurred
   images, are initialised with the static pair ``(S_0, B_0)`` (the scene
   without moving objects);
2. the scene's *other* pairs ``(S_k, B_k)`` update them, in order;
3. ``S_1`` and ``B_1`` are applied to ``G_1`` and ``G_2`` with learning rate
   0, so the target never trains its own background;
4. ``M = (fgmaskS > 1) OR (fgmaskB > 1)`` (Algorithm 1, line 11);
5. erosion then dilation (line 12).

MOG2's shadow label: with shadow detection on, MOG2 writes 255 for
foreground, 127 (its ``shadowValue``) for "shadow" and 0 for background.
The paper's test ``fg > 1`` counts shadow pixels as foreground; that is the
default here (``shadows='foreground'``). A moving object's own shading and
the smear of a dark object over a bright background are both classed
"shadow" by MOG2 (a darker pixel of similar chromaticity), so they belong in
a blur mask. ``shadows='background'`` (``fg > 127``) drops them instead.

Additions to the paper, each optional and recorded in the parameters:
``match_exposure`` scales every image fed to a model to the brightness of its
static image (median per-channel ratio), because the captures of a scene may
differ in exposure (the synthetic rig's do, by up to 25 %; without it MOG2
flags whole images); ``init_frames`` feeds the static image more than once;
``shift_tolerance`` (off by default) keeps only foreground that survives
shifting the target by up to that many pixels, against per-pair alignment
error (after the paper's shift-invariant loss, appendix D).
Algorithm 1 needs a static pair per scene; captures without one (the
datasets of other rigs) can still be masked with ``background='median'`` of
:func:`scene_masks` (the per-pixel median of the scene's images stands in for
the static image; the masks pipeline uses it only on request).

All functions are pure: images in, masks out; nothing here reads files.

References
----------
.. [1] H. Li, Z. Zhang, T. Jiang, P. Luo, H. Feng, Z. Xu, "Real-World Deep
   Local Motion Deblurring", AAAI 2023, appendix C, Algorithm 1.
.. [2] Z. Zivkovic, "Improved adaptive Gaussian mixture model for background
   subtraction", ICPR 2004.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

from lodetools.errors import BadConfig, BadInput

#: what MOG2 writes for a pixel it calls shadow (OpenCV's default shadowValue)
SHADOW_VALUE = 127


@dataclass(frozen=True)
class LBFMGParams:
    """Parameters of LBFMG (MOG2 models and the morphological clean-up).

    Attributes
    ----------
    history : int
        MOG2 ``history``: the auto learning rate of frame ``n`` is
        ``1 / min(2 n, history)``.
    var_threshold : float
        MOG2 ``varThreshold``: squared Mahalanobis distance above which a pixel
        is foreground (OpenCV default 16).
    background_ratio : float
        MOG2 ``backgroundRatio``: the heaviest mixture components whose
        weights sum to this are background (OpenCV default 0.9).
    n_mixtures : int
        Gaussians per pixel (OpenCV default 5).
    detect_shadows : bool
        MOG2 shadow detection (pixels labelled 127).
    shadow_threshold : float
        MOG2 ``shadowThreshold`` (OpenCV default 0.5).
    var_init : float
        MOG2 ``varInit``: variance of a new Gaussian (OpenCV default 15).
    var_min : float
        MOG2 ``varMin``: the floor of every Gaussian's variance (OpenCV
        default 4). Feeding the same static image several times shrinks the
        variance towards this floor, so it sets the noise tolerance when a
        scene has few pairs.
    shadows : {'foreground', 'background'}
        How the shadow label 127 is treated: ``'foreground'`` is the paper's
        ``fg > 1``; ``'background'`` uses ``fg > 127``.
    init_frames : int
        How many times the static pair initialises the models (Algorithm 1,
        line 3, feeds it once).
    learning_rate : float
        Learning rate of the updates with the scene's other pairs (Algorithm
        1, lines 5-7); ``-1`` is MOG2's automatic rate.
    shift_tolerance : int
        Pixels: a target pixel is foreground only if it is foreground for
        every shift of the target image by up to this many pixels in x and y
        (0: off, the paper). Tolerates the ~1 px per-pair alignment error
        ReLoBlur reports (appendix Table 1), like the paper's shift-invariant
        loss (appendix D); costs ``(2 t + 1)^2 - 1`` extra MOG2 applications
        per image.
    match_exposure : bool
        Scale every image fed to a model (history and target) per channel to
        the brightness of the model's first image (the static one) before
        MOG2: see :func:`exposure_gain`. Not in ReLoBlur; needed when the
        captures of a scene differ in exposure (``develop`` equalises the two
        cameras of a pair, not the captures of a scene).
    erode : int
        Diameter in pixels of the elliptical erosion kernel (0: no erosion).
    dilate : int
        Diameter in pixels of the elliptical dilation kernel (0: no dilation).
    """

    history: int = 500
    var_threshold: float = 16.0
    background_ratio: float = 0.9
    n_mixtures: int = 5
    detect_shadows: bool = True
    shadow_threshold: float = 0.5
    var_init: float = 15.0
    var_min: float = 4.0
    shadows: str = "foreground"
    init_frames: int = 1
    learning_rate: float = -1.0
    match_exposure: bool = True
    shift_tolerance: int = 0
    erode: int = 3
    dilate: int = 3

    def __post_init__(self):
        if self.shadows not in ("foreground", "background"):
            raise BadConfig(f"bad shadows {self.shadows!r}: expected foreground or background")
        if self.history < 1 or self.n_mixtures < 1 or self.init_frames < 1:
            raise BadConfig("history, n_mixtures and init_frames must be at least 1")
        if self.var_threshold <= 0 or not 0 < self.background_ratio <= 1:
            raise BadConfig("var_threshold must be > 0 and background_ratio in (0, 1]")
        if not (self.learning_rate == -1 or 0 <= self.learning_rate <= 1):
            raise BadConfig(f"bad learning_rate {self.learning_rate}: expected -1 or a value in [0, 1]")
        if not 0 < self.var_min <= self.var_init:
            raise BadConfig("need 0 < var_min <= var_init")
        if self.shift_tolerance < 0 or self.shift_tolerance > 3:
            raise BadConfig(f"bad shift_tolerance {self.shift_tolerance}: expected 0 to 3 pixels")
        if self.erode < 0 or self.dilate < 0:
            raise BadConfig("erode and dilate must be >= 0")

    @classmethod
    def from_dict(cls, values: dict) -> "LBFMGParams":
        """Build from a mapping (command options or a recipe's ``[masks]`` table).

        ``mixtures`` (the option's name) stands for ``n_mixtures``; keys that
        are not parameters are ignored.
        """
        names = {f.name for f in fields(cls)}
        values = {("n_mixtures" if k == "mixtures" else k): v for k, v in values.items()}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """An image as contiguous ``uint8`` for MOG2 (float in [0, 1], uint8 or uint16 in).

    Parameters
    ----------
    img : ndarray (H, W, 3) or (H, W)

    Returns
    -------
    ndarray of uint8, same shape
    """
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return np.ascontiguousarray(img)
    if img.dtype == np.uint16:
        return np.ascontiguousarray((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if img.dtype.kind == "f":
        return np.ascontiguousarray(np.round(np.clip(img, 0.0, 1.0) * 255.0)).astype(np.uint8)
    raise BadInput(f"unsupported image dtype {img.dtype}")


def exposure_gain(reference: np.ndarray, img: np.ndarray, *, step: int = 4) -> np.ndarray:
    """Per-channel gain that brings ``img`` to the brightness of ``reference``.

    The median over pixels of ``reference / img``, using pixels well exposed
    in both (8-bit values 16-239) on a grid of every ``step``-th row and column.
    Moving objects cover a minority of a local-blur image, so the median is
    the static background's ratio. A gain on linear values is a gain on
    gamma-encoded values too (``(g x)^(1/2.2) = g^(1/2.2) x^(1/2.2)``).
    This is not part of ReLoBlur's LBFMG.

    Parameters
    ----------
    reference, img : ndarray of uint8 (H, W, 3)

    Returns
    -------
    ndarray of float32 (3,)
        1 for a channel without enough usable pixels.
    """
    r = reference[::step, ::step].reshape(-1, reference.shape[-1]).astype(np.float32)
    x = img[::step, ::step].reshape(-1, img.shape[-1]).astype(np.float32)
    out = np.ones(r.shape[1], np.float32)
    for c in range(r.shape[1]):
        ok = (r[:, c] >= 16) & (r[:, c] <= 239) & (x[:, c] >= 16) & (x[:, c] <= 239)
        if np.count_nonzero(ok) >= 64:
            out[c] = np.median(r[ok, c] / x[ok, c])
    return out


def apply_gain(img: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """``img * gain`` per channel, rounded and clipped to uint8."""
    gain = np.asarray(gain, np.float32)
    lut = np.clip(np.round(np.arange(256, dtype=np.float32)[:, None] * gain[None, :]), 0, 255).astype(np.uint8)
    if img.ndim == 3 and img.shape[-1] == 3:
        return cv2.LUT(np.ascontiguousarray(img), np.ascontiguousarray(lut[None]))
    out = np.empty_like(img)
    for c in range(img.shape[-1]):
        out[..., c] = lut[img[..., c], c]
    return out


def new_subtractor(params: LBFMGParams) -> cv2.BackgroundSubtractorMOG2:
    """A fresh OpenCV MOG2 model with ``params``."""
    m = cv2.createBackgroundSubtractorMOG2(history=int(params.history),
                                           varThreshold=float(params.var_threshold),
                                           detectShadows=bool(params.detect_shadows))
    m.setBackgroundRatio(float(params.background_ratio))
    m.setNMixtures(int(params.n_mixtures))
    m.setShadowThreshold(float(params.shadow_threshold))
    m.setShadowValue(SHADOW_VALUE)
    m.setVarInit(float(params.var_init))
    m.setVarMin(float(params.var_min))
    m.setVarMax(max(75.0, float(params.var_init)))
    return m


def foreground(static, history, target, params: LBFMGParams) -> np.ndarray:
    """MOG2 foreground of ``target`` against a background learnt from ``static`` then ``history``.

    ReLoBlur Algorithm 1, lines 3 and 5-10 for one of the two models.

    Parameters
    ----------
    static : ndarray (H, W, 3) or None
        The static image (``S_0`` or ``B_0``); fed ``params.init_frames`` times.
    history : sequence of ndarray (H, W, 3)
        The scene's other images in order (never the target).
    target : ndarray (H, W, 3)
        Applied last with learning rate 0: it does not train its own background.

    Returns
    -------
    ndarray of uint8 (H, W)
        0 background, 127 shadow, 255 foreground.
    """
    model = new_subtractor(params)
    fed = 0
    ref = None

    def prepared(img):
        nonlocal ref
        img = to_uint8(img)
        if not params.match_exposure or img.ndim != 3:
            return img
        if ref is None:
            ref = img
            return img
        return apply_gain(img, exposure_gain(ref, img))

    if static is not None:
        s = prepared(static)
        for _ in range(params.init_frames):
            model.apply(s, learningRate=-1)
            fed += 1
    for img in history:
        # the first frame a model sees initialises it (MOG2 ignores the rate then)
        model.apply(prepared(img), learningRate=-1 if fed == 0 else float(params.learning_rate))
        fed += 1
    if fed == 0:
        raise BadInput("no background for the target: no static pair and no other pairs")
    target = prepared(target)
    tol = int(params.shift_tolerance)
    if tol <= 0:
        return model.apply(target, learningRate=0.0)
    # shift-tolerant foreground: foreground only where every shift of the target by up to
    # `tol` px is foreground (the paper's shift-invariant idea, appendix D, for its ~1 px
    # alignment error). MOG2 at rate 0 does not learn; it may only swap its weakest
    # Gaussian for a weight-0 one, which never counts as background.
    h, w = target.shape[:2]
    out = None
    for dy in range(-tol, tol + 1):
        for dx in range(-tol, tol + 1):
            if dx == 0 and dy == 0:
                fg = model.apply(target, learningRate=0.0)
            else:
                moved = cv2.warpAffine(target, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h),
                                       flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
                fg = cv2.warpAffine(model.apply(moved, learningRate=0.0), np.float32([[1, 0, -dx], [0, 1, -dy]]),
                                    (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
            out = fg if out is None else np.minimum(out, fg)
    return out


def combine(fg_sharp: np.ndarray, fg_blur: np.ndarray, shadows: str = "foreground") -> np.ndarray:
    """``M = (fgmaskS > 1) OR (fgmaskB > 1)``: ReLoBlur Algorithm 1, line 11.

    Parameters
    ----------
    fg_sharp, fg_blur : ndarray of uint8 (H, W)
        MOG2 outputs (0, 127 shadow, 255).
    shadows : {'foreground', 'background'}
        ``'foreground'`` is the paper's threshold 1 (127 counts); ``'background'``
        thresholds at 127 (only 255 counts).

    Returns
    -------
    ndarray of bool (H, W)
    """
    t = 1 if shadows == "foreground" else SHADOW_VALUE
    return (np.asarray(fg_sharp) > t) | (np.asarray(fg_blur) > t)


def _disk(d: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(d), int(d)))


def clean_mask(mask: np.ndarray, erode: int, dilate: int) -> np.ndarray:
    """Erosion then dilation (ReLoBlur Algorithm 1, line 12) with elliptical kernels.

    Parameters
    ----------
    mask : ndarray of bool (H, W)
    erode, dilate : int
        Kernel diameters in pixels; 0 or 1 skips the step.

    Returns
    -------
    ndarray of bool (H, W)
    """
    m = np.asarray(mask, dtype=np.uint8)
    if erode > 1:
        m = cv2.erode(m, _disk(erode), borderType=cv2.BORDER_REPLICATE)
    if dilate > 1:
        m = cv2.dilate(m, _disk(dilate), borderType=cv2.BORDER_REPLICATE)
    return m > 0


def _check_sizes(first, images) -> None:
    shape = np.shape(first)[:2]
    for img in images:
        if np.shape(img)[:2] != shape:
            raise BadInput(f"size mismatch {np.shape(img)[1]}x{np.shape(img)[0]} vs {shape[1]}x{shape[0]}")


def lbfmg_mask(target, static, history, params: LBFMGParams | None = None) -> np.ndarray:
    """The local-blur mask of one pair: ReLoBlur Algorithm 1.

    Parameters
    ----------
    target : (sharp, blur)
        The target pair ``(S_1, B_1)``: arrays (H, W, 3), float in [0, 1] or uint8.
    static : (sharp, blur) or None
        The static pair ``(S_0, B_0)``, or None (then the first history pair
        initialises the models: see :func:`median_background` for a better
        stand-in).
    history : sequence of (sharp, blur)
        The scene's other pairs in order, without the target.
    params : LBFMGParams, optional

    Returns
    -------
    ndarray of bool (H, W)

    Raises
    ------
    BadInput
        If the images differ in size, or there is no background at all.
    """
    params = params or LBFMGParams()
    s1, b1 = target
    _check_sizes(s1, [b1, *(static or ()), *(x for p in history for x in p)])
    s0, b0 = static if static is not None else (None, None)
    fg_s = foreground(s0, [p[0] for p in history], s1, params)
    fg_b = foreground(b0, [p[1] for p in history], b1, params)
    return clean_mask(combine(fg_s, fg_b, params.shadows), params.erode, params.dilate)


def median_background(images) -> np.ndarray:
    """Per-pixel median of images: a static-image stand-in for scenes without one.

    With enough images of a scene whose objects move, the median at each
    pixel is the background. This is not in ReLoBlur (which always captures
    a static pair); the masks pipeline uses it only on request and says so.

    Parameters
    ----------
    images : sequence of ndarray (H, W, 3)

    Returns
    -------
    ndarray of uint8 (H, W, 3)
    """
    stack = np.stack([to_uint8(i) for i in images])
    if stack.shape[0] == 0:
        raise BadInput("no images for a median background")
    return np.median(stack, axis=0).round().astype(np.uint8)


def scene_masks(pairs, static=None, params: LBFMGParams | None = None, *,
                background: str = "static", targets=None) -> list:
    """LBFMG masks of the pairs of one scene; each target's history is the others, in order.

    Parameters
    ----------
    pairs : sequence of (sharp, blur)
        The scene's pairs in capture order (the static pair excluded).
    static : (sharp, blur) or None
        The scene's static pair.
    params : LBFMGParams, optional
    background : {'static', 'median'}
        ``'static'``: initialise with ``static`` (ReLoBlur). ``'median'``: a
        scene without a static pair; the models are initialised with the
        per-pixel median of the scene's other sharp (resp. blurred) images,
        the target excluded, which must number at least two.
    targets : sequence of int, optional
        Indices of the pairs to make masks for (default: all).

    Returns
    -------
    list of ndarray of bool (H, W)
        One mask per target, in the order of ``targets``.

    Raises
    ------
    BadInput
        ``'static'`` without a static pair, or ``'median'`` with fewer than
        two other pairs; images of different sizes.
    """
    params = params or LBFMGParams()
    targets = range(len(pairs)) if targets is None else targets
    if background not in ("static", "median"):
        raise BadConfig(f"bad background {background!r}: expected static or median")
    if background == "static" and static is None:
        raise BadInput("scene has no static pair (use the median background option)")
    if params.match_exposure and len(pairs):
        # match every image once to one reference per camera (the static image, else the
        # first pair's), instead of once per target: same brightness, K times less work
        ref = static if static is not None else pairs[0]
        _check_sizes(pairs[0][0], [*ref, *(x for p in pairs for x in p)])
        ref = (to_uint8(ref[0]), to_uint8(ref[1]))
        pairs = [tuple(apply_gain(to_uint8(x), exposure_gain(r, to_uint8(x))) for x, r in zip(p, ref))
                 for p in pairs]
        static = ref if static is not None else None
        params = dataclasses.replace(params, match_exposure=False)
    out = []
    for t in targets:
        others = [p for i, p in enumerate(pairs) if i != t]
        init = static
        if background == "median":
            if len(others) < 2:
                raise BadInput("median background needs at least two other pairs in the scene")
            init = (median_background([p[0] for p in others]), median_background([p[1] for p in others]))
        out.append(lbfmg_mask(pairs[t], init, others, params))
    return out
