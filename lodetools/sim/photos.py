"""Real photographs (bundled with scikit-image) and soft-edged object cut-outs.

The synthetic capture world renders scenes in linear light from these
photographs: backgrounds are whole photographs, foreground objects are
textures cut from other photographs with soft-edged masks. Mask shapes are
the horse silhouette of ``skimage.data.horse`` and random smooth star-shaped
blobs. Nothing is downloaded.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from lodetools.synth.cutout import Cutout

#: photographs usable as backgrounds (all bundled with scikit-image, no download)
BACKGROUNDS = ("coffee", "chelsea", "rocket", "astronaut", "hubble_deep_field",
               "immunohistochemistry", "motorcycle")
#: photographs whose textures make foreground objects
TEXTURES = ("astronaut", "chelsea", "coffee", "rocket", "colorwheel",
            "immunohistochemistry", "retina", "motorcycle")


@lru_cache(maxsize=None)
def _load(name: str) -> np.ndarray:
    import skimage.data as data

    if name == "motorcycle":
        img = data.stereo_motorcycle()[0]
    else:
        img = getattr(data, name)()
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3].astype(np.float32) / 255.0
    img.setflags(write=False)
    return img


def photo(name: str) -> np.ndarray:
    """A bundled photograph, display-referred float32 ``(H, W, 3)`` in ``[0, 1]``."""
    return _load(name)


def linear_photo(name: str, size: tuple[int, int], *, gamma: float = 2.2) -> np.ndarray:
    """A photograph centre-cropped to the aspect of ``size``, resized, in linear light.

    Parameters
    ----------
    name : str
        One of :data:`BACKGROUNDS` / :data:`TEXTURES`.
    size : (height, width)
    gamma : float
        The photograph is taken as gamma-encoded display values; linear = x**gamma.

    Returns
    -------
    ndarray of float32, shape (height, width, 3)
    """
    img = photo(name)
    h, w = size
    H, W = img.shape[:2]
    scale = max(h / H, w / W)
    ch, cw = int(round(h / scale)), int(round(w / scale))
    y0, x0 = (H - ch) // 2, (W - cw) // 2
    crop = img[y0:y0 + ch, x0:x0 + cw]
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    out = cv2.resize(crop, (w, h), interpolation=interp)
    return np.power(np.clip(out, 0, 1), gamma).astype(np.float32)


def blob_mask(rng: np.random.Generator, size: int, *, harmonics: int = 4,
              roughness: float = 0.25) -> np.ndarray:
    """A random smooth star-shaped binary mask of ``size x size`` pixels.

    The radius is ``r(t) = 1 + sum_k a_k cos(k t + p_k)`` with ``|a_k| ~ roughness / k``,
    scaled to fill about 80 % of the square.
    """
    t = np.linspace(0, 2 * np.pi, 256, endpoint=False)
    r = np.ones_like(t)
    for k in range(2, harmonics + 2):
        r += rng.uniform(-roughness, roughness) / (k - 1) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    r = r / r.max() * 0.42 * size
    c = (size - 1) / 2.0
    pts = np.stack([c + r * np.cos(t), c + r * np.sin(t)], axis=1)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_AA, shift=4)
    return mask > 0


@lru_cache(maxsize=1)
def _horse() -> np.ndarray:
    import skimage.data as data

    m = ~np.asarray(data.horse(), dtype=bool)  # True on the horse
    ys, xs = np.nonzero(m)
    return m[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def make_cutout(rng: np.random.Generator, size: int, *, texture: str | None = None,
                shape: str | None = None, edge_sigma: float = 1.0) -> Cutout:
    """Cut a soft-edged object of about ``size`` pixels from a photograph.

    Parameters
    ----------
    rng : numpy.random.Generator
    size : int
        Longest side of the object's box, in pixels (>= 8).
    texture : str, optional
        Photograph to cut from (random from :data:`TEXTURES` by default).
    shape : {'blob', 'horse'}, optional
        Mask shape (random by default, blobs three times as likely).
    edge_sigma : float
        Gaussian blur of the binary mask, in pixels: the soft edge.

    Returns
    -------
    Cutout
    """
    size = max(8, int(size))
    texture = texture or TEXTURES[rng.integers(len(TEXTURES))]
    shape = shape or ("horse" if rng.random() < 0.25 else "blob")
    if shape == "horse":
        horse = _horse().astype(np.float32)
        s = size / max(horse.shape)
        hh, ww = max(4, int(round(horse.shape[0] * s))), max(4, int(round(horse.shape[1] * s)))
        binary = cv2.resize(horse, (ww, hh), interpolation=cv2.INTER_AREA) > 0.5
        if rng.random() < 0.5:
            binary = binary[:, ::-1]
    else:
        binary = blob_mask(rng, size)
    pad = int(np.ceil(3 * edge_sigma)) + 1
    binary = np.pad(binary, pad)
    alpha = binary.astype(np.float32)
    if edge_sigma > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), edge_sigma)
    alpha[alpha < 1e-3] = 0.0
    h, w = alpha.shape
    src = photo(texture)
    H, W = src.shape[:2]
    # a random window of the photograph at a random zoom, sized to the object
    zoom = rng.uniform(0.6, 1.2) * min(H, W) / 2 / max(h, w)
    ch, cw = min(H, max(2, int(h * zoom))), min(W, max(2, int(w * zoom)))
    y0, x0 = rng.integers(0, H - ch + 1), rng.integers(0, W - cw + 1)
    patch = cv2.resize(np.ascontiguousarray(src[y0:y0 + ch, x0:x0 + cw]), (w, h),
                       interpolation=cv2.INTER_AREA)
    rgb = np.power(np.clip(patch, 0, 1), 2.2).astype(np.float32)
    return Cutout(rgb=rgb, alpha=alpha, source=f"{texture}/{shape}")


def render_layer(cutout: Cutout, matrix: np.ndarray, canvas_shape: tuple[int, int]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Warp a cut-out onto a canvas.

    Parameters
    ----------
    cutout : Cutout
    matrix : ndarray (2, 3)
        From :func:`lodetools.synth.cutout.pose_matrix`.
    canvas_shape : (H, W)

    Returns
    -------
    premult : ndarray float32 (H, W, 3)
        Alpha-premultiplied linear colour.
    alpha : ndarray float32 (H, W)
    """
    H, W = canvas_shape
    flags = cv2.INTER_LINEAR
    pm = cutout.rgb * cutout.alpha[:, :, None]
    premult = cv2.warpAffine(pm, matrix, (W, H), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(cutout.alpha, matrix, (W, H), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    return premult, np.clip(alpha, 0.0, 1.0)


def composite(background: np.ndarray, layers) -> np.ndarray:
    """Alpha-composite premultiplied layers over a linear background, in order.

    Parameters
    ----------
    background : ndarray float32 (H, W, 3)
    layers : iterable of (premult, alpha)
        From :func:`render_layer`, back to front.

    Returns
    -------
    ndarray float32 (H, W, 3)
    """
    out = np.array(background, dtype=np.float32, copy=True)
    for premult, alpha in layers:
        out *= (1.0 - alpha)[:, :, None]
        out += premult
    return out
