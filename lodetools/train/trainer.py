"""Iteration-based trainer shared by every network.

Networks plug in through :mod:`lodetools.train.registry` (how to add one: see
its docstring).

What the trainer does
---------------------
Adam with a multi-step learning rate (``lr * gamma**k`` after the k-th
milestone; milestones as fractions of ``--iters`` or every ``lr_step``
iterations); device auto (cuda > mps > cpu); mixed precision (fp16 autocast
+ GradScaler) and channels_last on CUDA; DDP when started under ``torchrun``
(NCCL on CUDA, gloo on CPU; ``--batch`` is per process); periodic
validation (PSNR, SSIM, weighted PSNR on 8-bit-rounded whole images, tiled)
written to ``val_log.csv``; training losses in ``train_log.csv`` (and
TensorBoard when installed); atomic checkpoints ``checkpoints/last.pt``
(model, optimizer, scheduler, AMP scaler, torch RNG state, iteration) loaded
with ``torch.load(weights_only=True)``; ``resume=True`` continues exactly
(data samples are a function of (seed, sample number), see
:mod:`lodetools.train.datasets`). At the end ``model.pt`` holds the weights
with the network's name and options, which ``lodetools deblur`` rebuilds.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from lodetools.errors import BadConfig, MissingInput, OutputConflict
from lodetools.io.atomic import atomic_write_bytes, atomic_write_text
from lodetools.device import resolve_device
from lodetools.train.checkpoint import load_checkpoint, model_record, save_checkpoint, unwrap  # noqa: F401
from lodetools.train.datasets import CropDataset, PairSource, SampleBatches, load_source
from lodetools.train.registry import Phase, Stage, TrainSpec, build_model, find_spec, get_spec  # noqa: F401

@dataclass
class TrainConfig:
    """Everything a run depends on (written to ``config.json``)."""

    net: str
    data: str
    out: str
    iters: int = 1000
    global_data: tuple = ()
    val_data: str | None = None
    val_split: str = "val"
    train_split: str = "train"
    net_opts: dict = field(default_factory=dict)
    loss: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)
    batch: int = 12
    crop: int = 256
    lr: float | None = None
    lr_gamma: float = 0.5
    lr_milestones: tuple = ()
    lr_step: int = 0
    augmentation: str = "flip"
    bapc_p: float = 0.5
    bapc_min_fraction: float = 0.05
    seed: int = 0
    workers: int = 0
    val_every: int = 0
    val_images: int = 10
    val_tile: int = 512
    ckpt_every: int = 1000
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    cache: bool = False

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["global_data"] = list(self.global_data)
        d["lr_milestones"] = list(self.lr_milestones)
        return d


# ---------------------------------------------------------------- environment

@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> DistInfo:
    """Initialise ``torch.distributed`` when started by ``torchrun`` (WORLD_SIZE > 1).

    NCCL on CUDA, gloo otherwise. Returns rank/world (0/1 when not distributed).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def wrap_ddp(model: nn.Module, device: torch.device, info: DistInfo) -> nn.Module:
    """``DistributedDataParallel`` around ``model`` when distributed, else ``model``."""
    if info.world <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP
    ids = [device.index if device.index is not None else info.local_rank] if device.type == "cuda" else None
    return DDP(model, device_ids=ids, find_unused_parameters=True)


# ---------------------------------------------------------------- schedule

def stage_bounds(stages: list, iters: int) -> list[tuple[int, int]]:
    """[start, stop) iterations of each stage: ``iters`` split by the stages' fractions."""
    total = sum(s.fraction for s in stages)
    if total <= 0:
        raise BadConfig("stage fractions must add up to more than 0")
    bounds, acc, start = [], 0.0, 0
    for s in stages:
        acc += s.fraction
        stop = int(round(iters * acc / total))
        bounds.append((start, stop))
        start = stop
    return bounds


def lr_milestones(cfg: TrainConfig) -> list[int]:
    """Absolute iterations at which the learning rate is multiplied by ``lr_gamma``."""
    ms = [int(round(f * cfg.iters)) if f < 1 else int(f) for f in cfg.lr_milestones]
    if cfg.lr_step > 0:
        ms += list(range(cfg.lr_step, cfg.iters, cfg.lr_step))
    return sorted(ms)


def lr_factor(t: int, milestones: list, gamma: float) -> float:
    """Multi-step factor ``gamma ** #(milestones <= t)``."""
    return gamma ** sum(1 for m in milestones if m <= t)


def phase_at(stage: Stage, u: int) -> tuple[int, int]:
    """(phase index, count of that phase's earlier steps) at stage step ``u``."""
    n, a = len(stage.phases), max(1, stage.alternate_every)
    block = u // a
    return block % n, (block // n) * a + u % a


# ---------------------------------------------------------------- metrics

def _batched_metrics():
    """PSNR, SSIM and weighted PSNR per image (8-bit rounded, the metrics module's convention)."""
    from lodetools.metrics.batched import psnr_batch, ssim_batch, weighted_psnr_batch
    return psnr_batch, ssim_batch, weighted_psnr_batch


# ---------------------------------------------------------------- checkpoints

# ---------------------------------------------------------------- the trainer

class _Logger:
    """CSV rows buffered until the next checkpoint (so a resume never sees rows past it)."""

    def __init__(self, path: Path, header: list, enabled: bool):
        self.path, self.header, self.enabled, self.rows = path, header, enabled, []

    def truncate(self, iteration: int) -> None:
        if not (self.enabled and self.path.exists()):
            return
        with open(self.path, newline="") as f:
            rows = [r for r in csv.reader(f)][1:]
        keep = [r for r in rows if r and int(r[0]) <= iteration]
        self._write(keep, mode="w")

    def _write(self, rows, mode="a"):
        new = mode == "w" or not self.path.exists()
        with open(self.path, mode, newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(self.header)
            w.writerows(rows)

    def add(self, row: list) -> None:
        if self.enabled:
            self.rows.append(row)

    def flush(self) -> None:
        if self.enabled and self.rows:
            self._write(self.rows)
            self.rows = []


def _tensorboard(out: Path, enabled: bool):
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
        return SummaryWriter(str(out / "tensorboard"))
    except Exception:  # tensorboard not installed
        return None


class Trainer:
    """Train ``cfg.net`` per its :class:`TrainSpec`; see the module docstring.

    Parameters
    ----------
    cfg : TrainConfig
    resume : bool
        Continue from ``<out>/checkpoints/last.pt``.
    overwrite : bool
        Start afresh even if ``out`` holds a run.
    quiet : bool
        No progress bar.
    stop_at : int, optional
        Stop (with a checkpoint) after this iteration, e.g. before a job's time limit.
    """

    def __init__(self, cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False,
                 quiet: bool = False, stop_at: int | None = None):
        self.cfg, self.quiet, self.stop_at = cfg, quiet, stop_at
        self.spec = get_spec(cfg.net)
        self.out = Path(cfg.out)
        self.device = resolve_device(cfg.device)
        self.dist = setup_distributed(self.device)
        if self.device.type == "cuda" and self.dist.world > 1:
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        self.amp = bool(cfg.amp) and self.device.type == "cuda"
        self.net_opts = {**self.spec.net_defaults, **cfg.net_opts}
        self.weights = {**self.spec.loss_defaults, **cfg.loss}
        unknown = set(cfg.loss) - set(self.spec.loss_defaults)
        if unknown:
            raise BadConfig(f"unknown loss weight(s) {', '.join(sorted(unknown))} for {cfg.net}; "
                            f"known: {', '.join(self.spec.loss_defaults)}")
        self.stages = self.spec.stages(self.weights)
        names = [s.name for s in self.stages]
        for name, frac in cfg.stages.items():
            if name not in names:
                raise BadConfig(f"unknown stage {name!r} for {cfg.net}; stages: {', '.join(names)}")
        for s in self.stages:
            s.fraction = float(cfg.stages.get(s.name, s.fraction))
        self.bounds = stage_bounds(self.stages, cfg.iters)
        if cfg.crop % self.spec.multiple or cfg.crop < self.spec.min_crop:
            raise BadConfig(f"--crop {cfg.crop} for {cfg.net} must be a multiple of {self.spec.multiple} "
                            f"and at least {self.spec.min_crop}")
        if cfg.val_data:
            load_source(cfg.val_data, cfg.val_split)          # fail early on a wrong --val-data
        self.milestones = lr_milestones(cfg)
        self.ckpt_path = self.out / "checkpoints" / "last.pt"
        self._check_out(resume, overwrite)
        self.resume = resume
        torch.manual_seed(cfg.seed)
        self.model = build_model(self.spec.name, self.net_opts).to(self.device)
        if cfg.channels_last and self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ddp = wrap_ddp(self.model, self.device, self.dist)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.datasets = self._datasets()
        self.history = []       # (iteration, loss) of this process

    # -- setup
    def _check_out(self, resume: bool, overwrite: bool) -> None:
        if resume:
            if not self.ckpt_path.is_file():
                raise MissingInput("nothing to resume: no checkpoints/last.pt", self.out)
            return
        if self.ckpt_path.exists() and not overwrite:
            raise OutputConflict("output folder holds a training run; use --resume or --overwrite", self.out)

    def _datasets(self) -> dict:
        cfg, roles = self.cfg, {}
        need = {}
        for s in self.stages:
            for p in s.phases:
                need[p.data] = need.get(p.data, False) or p.need_mask
        srcs = {"data": [cfg.data], "global": list(cfg.global_data)}
        for role, masked in need.items():
            roots = [r for r in srcs.get(role, []) if r]
            if not roots:
                continue
            pairs = []
            for r in roots:
                pairs += load_source(r, cfg.train_split, need_mask=masked).pairs
            roles[role] = CropDataset(PairSource(";".join(roots), cfg.train_split, pairs), cfg.crop,
                                      cfg.seed + (0 if role == "data" else 1000), bapc_p=cfg.bapc_p,
                                      bapc_min_fraction=cfg.bapc_min_fraction,
                                      augmentation=cfg.augmentation, cache=cfg.cache)
        for s in self.stages:
            s.phases = [p for p in s.phases if p.data in roles]
            if not s.phases:
                raise MissingInput(f"stage {s.name!r} has no training data", cfg.data)
        return roles

    def _optimizer(self, k: int):
        stage, (start, _) = self.stages[k], self.bounds[k]
        frozen = [getattr(self.model, n) for n in stage.frozen]
        skip = {id(p) for m in frozen for p in m.parameters()}
        params = [p for p in self.model.parameters() if id(p) not in skip]
        lr = stage.lr if stage.lr is not None else (self.cfg.lr if self.cfg.lr is not None else self.spec.lr)
        opt = torch.optim.Adam(params, lr=lr)
        ms, gamma = self.milestones, self.cfg.lr_gamma
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(start + s, ms, gamma))
        return opt, sched

    def _loader(self, stage: Stage, k: int, p_index: int, t0: int):
        """Batches for the iterations in [t0, stage stop) that use phase ``p_index``."""
        start, stop = self.bounds[k]
        ds = self.datasets[stage.phases[p_index].data]
        sampler = SampleBatches(
            range(t0, stop), self.cfg.batch, self.dist.rank, self.dist.world,
            # the dataset's own step counter: distinct across stages and alternating phases
            stream=lambda t: start + phase_at(stage, t - start)[1],
            keep=lambda t: phase_at(stage, t - start)[0] == p_index)
        loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=self.cfg.workers,
                                             pin_memory=self.device.type == "cuda",
                                             generator=torch.Generator().manual_seed(self.cfg.seed))
        return iter(loader)

    # -- state
    def _state(self, t: int, k: int, opt, sched) -> dict:
        return {"format": "lodetools-train-1", "net": self.spec.net, "spec": self.spec.name,
                "net_opts": self.net_opts,
                "model": self.model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "scaler": self.scaler.state_dict(),
                "iteration": t, "stage": k, "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "config": json.dumps(self.cfg.to_json(), sort_keys=True)}

    def _checkpoint(self, t, k, opt, sched, loggers) -> None:
        if self.dist.main:
            save_checkpoint(self.ckpt_path, self._state(t, k, opt, sched))
            for lg in loggers:
                lg.flush()

    def _set_modes(self, stage: Stage) -> None:
        self.model.train()
        for n in stage.frozen:
            getattr(self.model, n).eval()

    # -- validation
    @torch.no_grad()
    def validate(self) -> dict | None:
        """PSNR / SSIM / weighted PSNR on up to ``val_images`` whole validation images."""
        from lodetools.train.datasets import load_pair
        from lodetools.train.inference import predict_image
        root = self.cfg.val_data or self.cfg.data
        try:
            pairs = load_source(root, self.cfg.val_split).pairs[: self.cfg.val_images]
        except MissingInput:
            return None
        psnr_b, ssim_b, wpsnr_b = _batched_metrics()
        model = self.model
        was = model.training
        model.eval()
        vals = {"psnr": [], "ssim": [], "wpsnr": []}
        for pair in pairs:
            blur, sharp, mask = load_pair(pair)
            pred = predict_image(model, blur, predict=self.spec.predict, multiple=self.spec.multiple,
                                 tile=self.cfg.val_tile, device=self.device, amp=self.amp)
            p = torch.from_numpy(pred).permute(2, 0, 1)[None].double()
            g = torch.from_numpy(sharp).permute(2, 0, 1)[None].double()
            vals["psnr"].append(float(psnr_b(p, g)[0]))
            vals["ssim"].append(float(ssim_b(p, g)[0]))
            if mask is not None and mask.any():
                vals["wpsnr"].append(float(wpsnr_b(p, g, torch.from_numpy(mask)[None, None].double())[0]))
        model.train(was)
        return {k: (float(np.mean(v)) if v else float("nan")) for k, v in vals.items()} | {"n": len(pairs)}

    # -- main loop
    def run(self) -> list:
        """Train to ``cfg.iters`` (or ``stop_at``); returns this process's (iteration, loss) list."""
        cfg, main = self.cfg, self.dist.main
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "config.json", json.dumps(self.cfg.to_json(), indent=2, sort_keys=True))
        tlog = _Logger(self.out / "train_log.csv", ["iteration", "stage", "phase", "lr", "loss", "parts"], main)
        vlog = _Logger(self.out / "val_log.csv", ["iteration", "psnr", "ssim", "wpsnr", "n"], main)
        tb = _tensorboard(self.out, main)
        t, k, state = 0, 0, None
        if self.resume:
            state = load_checkpoint(self.ckpt_path)
            if state.get("net") != self.spec.net or state.get("net_opts") != self.net_opts:
                raise BadConfig("checkpoint was made for another network or options", self.ckpt_path)
            self.model.load_state_dict(state["model"])
            torch.set_rng_state(state["rng_cpu"])              # dropout etc. continue exactly
            if torch.cuda.is_available() and state.get("rng_cuda"):
                torch.cuda.set_rng_state_all(state["rng_cuda"])
            t, k = int(state["iteration"]), int(state["stage"])
            if k < len(self.bounds) and t >= self.bounds[k][1]:
                k += 1
            tlog.truncate(t)
            vlog.truncate(t)
        end = cfg.iters if self.stop_at is None else min(cfg.iters, int(self.stop_at))
        bar = None
        if main and not self.quiet:
            from tqdm import tqdm
            bar = tqdm(total=end, initial=t, desc=f"train {cfg.net}", unit="it", file=sys.stderr,
                       disable=not sys.stderr.isatty())
        opt = sched = None
        while k < len(self.stages) and t < end:
            stage, (start, stop) = self.stages[k], self.bounds[k]
            opt, sched = self._optimizer(k)
            if state is not None and int(state["stage"]) == k:
                opt.load_state_dict(state["optimizer"])
                sched.load_state_dict(state["scheduler"])
                self.scaler.load_state_dict(state["scaler"])
            state = None
            self._set_modes(stage)
            loaders = [self._loader(stage, k, i, t) for i in range(len(stage.phases))]
            while t < min(stop, end):
                pi = phase_at(stage, t - start)[0]
                phase = stage.phases[pi]
                batch = {n: (v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v)
                         for n, v in next(loaders[pi]).items()}
                if cfg.channels_last and self.device.type == "cuda":
                    for n in ("blur", "sharp", "mask"):
                        batch[n] = batch[n].contiguous(memory_format=torch.channels_last)
                self.model.zero_grad(set_to_none=True)
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                    loss, parts = phase.loss(self.ddp, batch, self.weights)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss became {float(loss)} at iteration {t}")
                self.scaler.scale(loss).backward()
                self.scaler.step(opt)
                self.scaler.update()
                lr = opt.param_groups[0]["lr"]
                sched.step()
                t += 1
                lv = float(loss.detach())
                self.history.append((t, lv))
                tlog.add([t, stage.name, phase.name, f"{lr:.6g}", f"{lv:.8g}",
                          ";".join(f"{n}={float(v):.6g}" for n, v in parts.items())])
                if tb is not None:
                    tb.add_scalar(f"loss/{stage.name}/{phase.name}", lv, t)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(stage=stage.name, loss=f"{lv:.4f}")
                if cfg.val_every and t % cfg.val_every == 0 and main:
                    v = self.validate()
                    self._set_modes(stage)                  # frozen parts back to eval mode
                    if v is not None:
                        vlog.add([t, f"{v['psnr']:.4f}", f"{v['ssim']:.5f}", f"{v['wpsnr']:.4f}", v["n"]])
                        if tb is not None:
                            for n in ("psnr", "ssim", "wpsnr"):
                                tb.add_scalar(f"val/{n}", v[n], t)
                if (cfg.ckpt_every and t % cfg.ckpt_every == 0) or t == end or t == stop:
                    self._checkpoint(t, k, opt, sched, (tlog, vlog))
            if t >= stop:
                k += 1
        if bar is not None:
            bar.close()
        if main and t >= cfg.iters:
            save_checkpoint(self.out / "model.pt", model_record(self.spec.net, self.net_opts, self.model,
                                                                spec=self.spec.name))
        if tb is not None:
            tb.close()
        if self.dist.world > 1:
            torch.distributed.barrier()
        return self.history


def train(cfg: TrainConfig, **kwargs) -> list:
    """Build a :class:`Trainer` for ``cfg`` and run it; returns the (iteration, loss) history."""
    return Trainer(cfg, **kwargs).run()
