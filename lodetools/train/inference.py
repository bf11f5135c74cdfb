"""Whole-image inference, tiled with overlap so large images fit in memory.

:func:`predict_image` pads the image to the network's multiple (reflection),
cuts it into ``tile`` x ``tile`` tiles overlapping by ``overlap`` pixels,
runs the network on each and blends the tiles with a linear ramp over the
overlap (weights ``min(1, d / overlap)`` by distance ``d`` to the tile edge;
tile and overlap rounded up to the multiple, so every tile starts on the
network's sampling grid),
then crops back to the input size. With ``tile=0`` (or an image that fits in
one tile) the whole padded image is processed at once.
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


def tile_starts(n: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``n`` with at least ``overlap`` overlap."""
    if n <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, n - tile, step)) + [n - tile]
    return sorted(set(starts))


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


@torch.no_grad()
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
        Tile side and overlap in pixels, both rounded up to ``multiple`` (0 = no tiling).
    amp : bool
        fp16 autocast (CUDA).
    """
    predict = predict or (lambda m, t: final_image(m(t)))
    h, w = x.shape[-2:]
    xp = pad_to_multiple(x, multiple)
    H, W = xp.shape[-2:]
    if tile and tile > 0:
        tile = _round_up(int(tile), multiple)
        # tile starts on the network's grid: its nearest/strided downsampling then samples the
        # same pixels in a tile as in the whole image, so tiles differ from it only near seams
        overlap = _round_up(int(overlap), multiple) if overlap > 0 else int(overlap)
        if overlap < 0 or overlap >= tile:
            raise BadConfig(f"overlap {overlap} must be in [0, tile={tile})")
    if not tile or (H <= tile and W <= tile):
        with torch.autocast(x.device.type, dtype=torch.float16, enabled=amp):
            out = predict(model, xp).float()
        return out[..., :h, :w]
    th, tw = min(tile, H), min(tile, W)
    acc = torch.zeros((x.shape[0], 3, H, W), device=x.device)
    wsum = torch.zeros((1, 1, H, W), device=x.device)
    wt = (_ramp(th, overlap)[:, None] * _ramp(tw, overlap)[None, :]).to(x.device)
    for y0 in tile_starts(H, th, overlap):
        for x0 in tile_starts(W, tw, overlap):
            with torch.autocast(x.device.type, dtype=torch.float16, enabled=amp):
                out = predict(model, xp[..., y0:y0 + th, x0:x0 + tw]).float()
            acc[..., y0:y0 + th, x0:x0 + tw] += out * wt
            wsum[..., y0:y0 + th, x0:x0 + tw] += wt
    return (acc / wsum)[..., :h, :w]


def predict_image(model, img: np.ndarray, *, predict=None, multiple: int = 16, tile: int = 512,
                  overlap: int = 32, device=None, amp: bool = False) -> np.ndarray:
    """Deblur one float32 (H, W, 3) image in [0, 1]; returns float32 (H, W, 3) clipped to [0, 1]."""
    device = device or next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].to(device)
    y = predict_tensor(model, x, predict=predict, multiple=multiple, tile=tile, overlap=overlap, amp=amp)
    return y[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy().astype(np.float32)
