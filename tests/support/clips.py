"""Small high-fps test clips for the synthesize/blur-ratio tests, from the synthetic world.

Wraps :func:`lodetools.sim.clips.make_clip` (moving cut-outs over a background
photograph, optional camera shake, rendered in linear light): returns the
frames encoded with a chosen CRF and bit depth (optionally over-exposed) and
each frame's true moving-object footprint.
"""

from __future__ import annotations

import numpy as np

from lodetools.color.crf import CRF, parse_crf
from lodetools.io.images import write_image
from lodetools.sim.clips import make_clip as sim_clip


def make_clip(seed: int, n_frames: int = 20, size=(64, 96), *, crf: CRF | str = "gamma:2.2",
              shake: bool = False, speed=(2.0, 4.0), objects=(1, 2), object_size=(0.3, 0.5),
              bits: int = 8, bright: float = 1.0, fps: float = 250.0):
    """Frames (list of uint8/uint16 ``(H, W, 3)``) and per-frame moving-object masks (bool).

    ``speed``: peak object speed in frame widths per second (see ``sim.clips``);
    ``bright``: exposure multiplier before the CRF (values above 1 clip highlights).
    """
    crf = parse_crf(crf) if isinstance(crf, str) else crf
    clip = sim_clip(np.random.default_rng(seed), size, n_frames, fps, n_objects=objects, shake=shake,
                    crf=crf, speed=speed, object_size=object_size)
    top = 255 if bits == 8 else 65535
    frames, masks = [], []
    for fr in clip.frames():
        disp = crf.to_display(np.clip(fr.linear * np.float32(bright), 0, 1))
        frames.append(np.floor(np.clip(disp, 0, 1) * top + 0.5).astype(np.uint8 if bits == 8 else np.uint16))
        masks.append(fr.mask)
    return frames, masks


def write_frame_folder(folder, frames) -> None:
    """Write frames as ``000000.png, 000001.png, ...``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        write_image(folder / f"{i:06d}.png", f)
