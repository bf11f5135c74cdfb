"""Small high-fps test clips for the synthesize/blur-ratio tests.

Moving cut-outs (``lodetools.sim.photos``) over a background photograph,
rendered in linear light and encoded with a known CRF; optional global camera
shake. Returns the encoded frames and the true moving-object masks.
"""

from __future__ import annotations

import numpy as np

from lodetools.color.crf import CRF, parse_crf
from lodetools.io.images import write_image
from lodetools.sim.photos import composite, linear_photo, make_cutout, pose_matrix, render_layer


def make_clip(seed: int, n_frames: int = 20, size=(64, 96), *, crf: CRF | str = "gamma:2.2",
              shake: float = 0.0, speed: float = 1.5, objects: int = 1, object_size: int = 24,
              bits: int = 8, bright: float = 1.0):
    """Frames (list of uint8/uint16 ``(H, W, 3)``) and per-frame moving-object masks.

    ``shake``: amplitude in pixels of a random global translation per frame.
    """
    crf = parse_crf(crf) if isinstance(crf, str) else crf
    rng = np.random.default_rng(seed)
    H, W = size
    pad = int(np.ceil(shake * 4)) + 4
    bg_big = linear_photo("chelsea" if seed % 2 else "coffee", (H + 2 * pad, W + 2 * pad)) * bright
    cuts = [make_cutout(rng, object_size) for _ in range(objects)]
    starts = [(rng.uniform(0.3, 0.7) * W, rng.uniform(0.3, 0.7) * H) for _ in cuts]
    vels = [(rng.uniform(0.5, 1.0) * speed * rng.choice([-1, 1]), rng.uniform(-0.5, 0.5) * speed)
            for _ in cuts]
    frames, masks = [], []
    cam = np.zeros(2)
    for t in range(n_frames):
        if shake:
            cam = cam + rng.normal(0, shake, 2)
            cam = np.clip(cam, -pad + 1, pad - 1)
        ox, oy = pad + cam[0], pad + cam[1]
        m = np.float32([[1, 0, -ox], [0, 1, -oy]])
        import cv2

        bg = cv2.warpAffine(bg_big, m, (W, H), flags=cv2.INTER_LINEAR)
        layers = []
        mask = np.zeros((H, W), bool)
        for c, (x0, y0), (vx, vy) in zip(cuts, starts, vels):
            M = pose_matrix((x0 + vx * t, y0 + vy * t), 0.0, 1.0, c.alpha.shape)
            pm, al = render_layer(c, M, (H, W))
            layers.append((pm, al))
            mask |= al > 0.5
        lin = np.clip(composite(bg, layers), 0, 1)
        disp = crf.to_display(lin)
        top = 255 if bits == 8 else 65535
        frames.append(np.floor(np.clip(disp, 0, 1) * top + 0.5).astype(np.uint8 if bits == 8 else np.uint16))
        masks.append(mask)
    return frames, masks


def write_frame_folder(folder, frames) -> None:
    """Write frames as ``000000.png, 000001.png, ...``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        write_image(folder / f"{i:06d}.png", f)


def write_video(path, frames, fps: int = 250) -> None:
    """Write frames as a near-lossless H.264 video."""
    import imageio_ffmpeg as iff

    H, W = frames[0].shape[:2]
    w = iff.write_frames(str(path), (W, H), fps=fps, codec="libx264", macro_block_size=1,
                         output_params=["-crf", "0", "-preset", "ultrafast"], pix_fmt_out="yuv444p")
    w.send(None)
    for f in frames:
        w.send(np.ascontiguousarray(f))
    w.close()
