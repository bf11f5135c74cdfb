"""Independent float64 references of LODE Eqs. (6)-(7) for the averaging tests (written from the CRF definitions)."""

import numpy as np


def _srgb_decode(x):
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _srgb_encode(y):
    return np.where(y <= 0.0031308, 12.92 * y, 1.055 * y ** (1 / 2.4) - 0.055)


def _table():
    """A made-up camera: a gamma-1.8 curve with a toe, 3 slightly different channels."""
    x = np.linspace(0, 1, 256)[:, None]
    return np.concatenate([x ** g * (1 - 0.1 * x) + 0.1 * x ** 2 for g in (1.8, 2.0, 2.2)], axis=1)


def reference_blur(frames, spec, top=255, gain=0.0):
    """g(mean(g^-1(frames))) evaluated in float64 from the CRF's definition (LODE Eqs. (6)-(7))."""
    if spec == "table":
        t = _table()
        t = (t - t[0]) / (t[-1] - t[0])
        lin = [np.stack([t[f[..., c], c] for c in range(3)], axis=-1) for f in frames]
    else:
        x = [f.astype(np.float64) / top for f in frames]
        lin = {"gamma:2.2": lambda v: v ** 2.2, "linear": lambda v: v, "srgb": _srgb_decode}[spec]
        lin = [lin(v) for v in x]
    if gain:
        lin = [li + gain * (f.max(axis=2) >= top)[..., None] for li, f in zip(lin, frames)]
    mean = np.clip(np.mean(lin, axis=0), 0, 1)
    if spec == "table":
        codes = np.linspace(0, 1, 256)
        disp = np.stack([np.interp(mean[..., c], t[:, c], codes) for c in range(3)], axis=-1)
    else:
        disp = {"gamma:2.2": lambda v: v ** (1 / 2.2), "linear": lambda v: v, "srgb": _srgb_encode}[spec](mean)
    return np.floor(np.clip(disp, 0, 1) * top + 0.5)
