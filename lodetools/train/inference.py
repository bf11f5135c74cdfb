"""Whole-image inference, tiled with overlap so large images fit in memory.

:func:`predict_image` pads the image to the network's multiple (reflection),
cuts it into tiles of at most ``tile`` x ``tile`` pixels overlapping by at
least ``overlap`` pixels (:func:`tile_spans`: the fewest tiles per axis, all
of one length, so a 1280-pixel row with ``tile=512, overlap=32`` is three
448-pixel tiles, 1344 pixels computed, not three 512-pixel ones), runs the
network on each and blends the tiles with a linear ramp over the overlap
(weights ``min(1, d / overlap)`` by distance ``d`` to the tile edge). Tile
lengths and starts are multiples of the network's multiple, so every tile
starts on the network's sampling grid and its nearest/strided downsampling
samples the same pixels in a tile as in the whole image: tiles differ from it
only near seams. The result is cropped back to the input size. With
``tile=0`` (or an image that fits in one tile) the whole padded image is
processed at once.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lodetools.errors import BadConfig


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (B, C, H, W) at the bottom/right to multiples of ``multiple`` (reflect, else replicate)."""
    h, w = x.shape[-2:]
    ph, pw = _round_up(h, multiple) - h, _round_up(w, multiple) - w
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def tile_spans(n: int, tile: int, overlap: int, multiple: int = 1) -> list[tuple[int, int]]:
    """``(start, stop)`` of the tiles covering ``0..n``: the fewest of at most ``tile`` with ``overlap``.

    All tiles have one length ``L``, the smallest multiple of ``multiple``
    with ``count * L - (count - 1) * overlap >= n``; tile ``i`` starts at
    ``i * (L - overlap)``, the last ends at ``n`` (its overlap with the one
    before may exceed ``overlap``). So the pixels computed are about
    ``n + (count - 1) * overlap``, and with ``n``, ``tile`` and ``overlap``
    multiples of ``multiple`` every start and length is one too.

    Parameters
    ----------
    n : int
        Length to cover.
    tile : int
        Largest tile length.
    overlap : int
        Smallest overlap of neighbouring tiles, ``0 <= overlap < tile``.
    multiple : int
        Tile lengths are rounded up to this (at most ``tile`` when ``tile``
        and ``overlap`` are multiples of it).

    Returns
    -------
    list of (int, int)

    Examples
    --------
    >>> tile_spans(1280, 512, 32)
    [(0, 448), (416, 864), (832, 1280)]
    >>> tile_spans(300, 512, 32)
    [(0, 300)]
    """
    if n <= tile:
        return [(0, n)]
    count = -(-(n - overlap) // (tile - overlap))
    length = min(_round_up(-(-(n + (count - 1) * overlap) // count), multiple), tile)
    starts = [i * (length - overlap) for i in range(count - 1)] + [n - length]
    return [(s, s + length) for s in starts]


def final_image(out) -> torch.Tensor:
    """The full-resolution image of a network's output: ``out.final``, the last of a list/tuple, or ``out``.

    MIMO-UNet returns its three scales coarse to fine; LBAG and BladeNet
    return objects whose ``final`` is the (B, 3, H, W) image.
    """
    if hasattr(out, "final"):
        return out.final
    if isinstance(out, (list, tuple)):
        return out[-1]
    return out


def _ramp(n: int, overlap: int) -> torch.Tensor:
    i = torch.arange(n, dtype=torch.float32)
    if overlap <= 0:
        return torch.ones(n)
    d = torch.minimum(i + 0.5, n - i - 0.5)
    return (d / overlap).clamp(max=1.0)


@torch.inference_mode()
def predict_tensor(model, x: torch.Tensor, *, predict=None, multiple: int = 16, tile: int = 512,
                   overlap: int = 32, amp: bool = False) -> torch.Tensor:
    """Deblur (B, 3, H, W) -> (B, 3, H, W), tiled (see the module docstring).

    Parameters
    ----------
    model : nn.Module (in eval mode)
    predict : callable ``(model, x) -> (B, 3, h, w)``; default :func:`final_image` of ``model(x)``
    multiple : int
        Height/width the network needs to be divisible by.
    tile, overlap : int
        Largest tile side and smallest overlap in pixels, both rounded up to
        ``multiple`` (0 = no tiling); see :func:`tile_spans`.
    amp : bool
        fp16 autocast (CUDA).
    """
    predict = predict or (lambda m, t: final_image(m(t)))
    h, w = x.shape[-2:]
    xp = pad_to_multiple(x, multiple)
    H, W = xp.shape[-2:]
    if tile and tile > 0:
        tile = _round_up(int(tile), multiple)
        # tiles start on the network's grid: its nearest/strided downsampling then samples the
        # same pixels in a tile as in the whole image, so tiles differ from it only near seams
        overlap = _round_up(int(overlap), multiple) if overlap > 0 else int(overlap)
        if overlap < 0 or overlap >= tile:
            raise BadConfig(f"overlap {overlap} must be in [0, tile={tile})")
    if not tile or (H <= tile and W <= tile):
        with torch.autocast(x.device.type, dtype=torch.float16, enabled=amp):
            out = predict(model, xp).float()
        return out[..., :h, :w]
    rows, cols = tile_spans(H, tile, overlap, multiple), tile_spans(W, tile, overlap, multiple)
    th, tw = rows[0][1] - rows[0][0], cols[0][1] - cols[0][0]
    acc = torch.zeros((x.shape[0], 3, H, W), device=x.device)
    wsum = torch.zeros((1, 1, H, W), device=x.device)
    wt = (_ramp(th, overlap)[:, None] * _ramp(tw, overlap)[None, :]).to(x.device)
    for y0, y1 in rows:
        for x0, x1 in cols:
            with torch.autocast(x.device.type, dtype=torch.float16, enabled=amp):
                out = predict(model, xp[..., y0:y1, x0:x1]).float()
            acc[..., y0:y1, x0:x1].addcmul_(out, wt)
            wsum[..., y0:y1, x0:x1] += wt
    return (acc / wsum)[..., :h, :w]


def predict_image(model, img: np.ndarray, *, predict=None, multiple: int = 16, tile: int = 512,
                  overlap: int = 32, device=None, amp: bool = False) -> np.ndarray:
    """Deblur one float32 (H, W, 3) image in [0, 1]; returns float32 (H, W, 3) clipped to [0, 1]."""
    device = device or next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].to(device)
    y = predict_tensor(model, x, predict=predict, multiple=multiple, tile=tile, overlap=overlap, amp=amp)
    return y[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy().astype(np.float32, copy=False)
