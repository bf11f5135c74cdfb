"""What the training loop reports to: logs, TensorBoard, progress bar, validation.

The trainer calls each callback's ``on_start(trainer, t)`` (``t``: the
first iteration, > 0 on resume), ``on_step(trainer, step)`` after every
iteration (a :class:`Step`), ``on_validation(trainer, t, metrics)``,
``on_checkpoint(trainer, t)`` after each checkpoint is written, and
``on_end(trainer)``. Only the main process (rank 0) gets callbacks.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass
class Step:
    """One finished iteration: its number (1-based), stage, phase, learning rate, loss and terms."""

    t: int
    stage: str
    phase: str
    lr: float
    loss: float
    parts: dict


class Callback:
    """Base class: every hook does nothing."""

    def on_start(self, trainer, t: int) -> None: ...

    def on_step(self, trainer, step: Step) -> None: ...

    def on_validation(self, trainer, t: int, metrics: dict) -> None: ...

    def on_checkpoint(self, trainer, t: int) -> None: ...

    def on_end(self, trainer) -> None: ...


class _CsvFile:
    """CSV rows buffered until the next checkpoint (so a resume never sees rows past it)."""

    def __init__(self, path: Path, header: list):
        self.path, self.header, self.rows = path, header, []

    def truncate(self, iteration: int) -> None:
        """Drop the rows after ``iteration`` (a resumed run rewrites them)."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))[1:]
        self._write([r for r in rows if r and int(r[0]) <= iteration], mode="w")

    def _write(self, rows, mode="a"):
        new = mode == "w" or not self.path.exists()
        with open(self.path, mode, newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(self.header)
            w.writerows(rows)

    def add(self, row: list) -> None:
        self.rows.append(row)

    def flush(self) -> None:
        if self.rows:
            self._write(self.rows)
            self.rows = []


class CsvLog(Callback):
    """``train_log.csv`` (iteration, stage, phase, lr, loss, terms) and ``val_log.csv``."""

    def __init__(self, out: Path):
        self.train = _CsvFile(Path(out) / "train_log.csv", ["iteration", "stage", "phase", "lr", "loss", "parts"])
        self.val = _CsvFile(Path(out) / "val_log.csv", ["iteration", "psnr", "ssim", "wpsnr", "n"])

    def on_start(self, trainer, t):
        if t > 0:
            self.train.truncate(t)
            self.val.truncate(t)

    def on_step(self, trainer, s: Step):
        self.train.add([s.t, s.stage, s.phase, f"{s.lr:.6g}", f"{s.loss:.8g}",
                        ";".join(f"{n}={float(v):.6g}" for n, v in s.parts.items())])

    def on_validation(self, trainer, t, m):
        self.val.add([t, f"{m['psnr']:.4f}", f"{m['ssim']:.5f}", f"{m['wpsnr']:.4f}", m["n"]])

    def on_checkpoint(self, trainer, t):
        self.train.flush()
        self.val.flush()


class TensorBoardLog(Callback):
    """Losses and validation metrics in ``<out>/tensorboard`` when TensorBoard is installed."""

    def __init__(self, out: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(Path(out) / "tensorboard"))
        except Exception:  # tensorboard not installed
            self.writer = None

    def on_step(self, trainer, s: Step):
        if self.writer is not None:
            self.writer.add_scalar(f"loss/{s.stage}/{s.phase}", s.loss, s.t)

    def on_validation(self, trainer, t, m):
        if self.writer is not None:
            for n in ("psnr", "ssim", "wpsnr"):
                self.writer.add_scalar(f"val/{n}", m[n], t)

    def on_end(self, trainer):
        if self.writer is not None:
            self.writer.close()


class ProgressBar(Callback):
    """A tqdm bar on stderr (only when it is a terminal)."""

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.bar = total, desc, None

    def on_start(self, trainer, t):
        from tqdm import tqdm
        self.bar = tqdm(total=self.total, initial=t, desc=self.desc, unit="it", file=sys.stderr,
                        disable=not sys.stderr.isatty())

    def on_step(self, trainer, s: Step):
        self.bar.update(1)
        self.bar.set_postfix(stage=s.stage, loss=f"{s.loss:.4f}")

    def on_end(self, trainer):
        if self.bar is not None:
            self.bar.close()


class Validation(Callback):
    """Every ``every`` iterations: :func:`validate`, reported to the other callbacks."""

    def __init__(self, every: int):
        self.every = every

    def on_step(self, trainer, s: Step):
        if self.every and s.t % self.every == 0:
            m = validate(trainer.model, trainer.spec, trainer.cfg, trainer.device, trainer.amp)
            trainer.restore_modes()              # frozen parts back to eval mode
            if m is not None:
                trainer.emit("on_validation", s.t, m)


@torch.no_grad()
def validate(model, spec, cfg, device, amp: bool = False) -> dict | None:
    """PSNR / SSIM / weighted PSNR on up to ``cfg.val_images`` whole validation images.

    Images of ``cfg.val_data`` (else ``cfg.data``), split ``cfg.val_split``,
    deblurred tiled (``cfg.val_tile``); metrics on 8-bit-rounded images
    (:mod:`lodetools.metrics.batched`). None when there is no such split.
    """
    from lodetools.errors import MissingInput
    from lodetools.metrics.batched import psnr_batch, ssim_batch, weighted_psnr_batch
    from lodetools.train.datasets import load_pair, load_source
    from lodetools.train.inference import predict_image
    try:
        own = not cfg.val_data   # --layout and --masks describe --data
        pairs = load_source(cfg.val_data or cfg.data, cfg.val_split, layout=cfg.layout if own else None,
                            masks=cfg.masks if own else None).pairs[: cfg.val_images]
    except MissingInput:
        return None
    was = model.training
    model.eval()
    vals = {"psnr": [], "ssim": [], "wpsnr": []}
    for pair in pairs:
        blur, sharp, mask = load_pair(pair)
        pred = predict_image(model, blur, predict=spec.predict, multiple=spec.multiple,
                             tile=cfg.val_tile, device=device, amp=amp)
        p = torch.from_numpy(pred).permute(2, 0, 1)[None].double()
        g = torch.from_numpy(sharp).permute(2, 0, 1)[None].double()
        vals["psnr"].append(float(psnr_batch(p, g)[0]))
        vals["ssim"].append(float(ssim_batch(p, g)[0]))
        if mask is not None and mask.any():
            vals["wpsnr"].append(float(weighted_psnr_batch(p, g, torch.from_numpy(mask)[None, None].double())[0]))
    model.train(was)
    return {k: (float(np.mean(v)) if v else float("nan")) for k, v in vals.items()} | {"n": len(pairs)}
