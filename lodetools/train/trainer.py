"""Iteration-based trainer shared by every network.

Networks plug in through :mod:`lodetools.train.registry` (how to add one: see
its docstring); the settings of a run are a :class:`TrainConfig`
(:mod:`lodetools.train.options`); what the loop reports goes to callbacks
(:mod:`lodetools.train.callbacks`: CSV logs, TensorBoard, progress bar,
validation).

What the trainer does
---------------------
Adam with a multi-step learning rate (``lr * gamma**k`` after the k-th
milestone; milestones as fractions of ``--iters`` or every ``lr_step``
iterations, :mod:`lodetools.train.schedule`); one device policy
(:func:`lodetools.device.resolve_device`); mixed precision (fp16 autocast +
GradScaler) and channels_last on CUDA; DDP when started under ``torchrun``
(NCCL on CUDA, gloo on CPU; ``--batch`` is per process,
:mod:`lodetools.train.distributed`); periodic validation (PSNR, SSIM,
weighted PSNR on 8-bit-rounded whole images, tiled) written to
``val_log.csv``; training losses in ``train_log.csv`` (and TensorBoard when
installed); atomic checkpoints ``checkpoints/last.pt`` (model, optimizers,
schedulers, AMP scaler, torch RNG state, iteration) loaded with
``torch.load(weights_only=True)`` (:mod:`lodetools.train.checkpoint`);
``resume=True`` continues exactly (data samples are a function of (seed,
sample number), see :mod:`lodetools.train.datasets`). At the end
``model.pt`` holds the weights with the network's name and options, which
``lodetools deblur`` rebuilds.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from lodetools.device import resolve_device
from lodetools.errors import BadConfig, MissingInput, OutputConflict
from lodetools.io.atomic import atomic_write_text
from lodetools.train.callbacks import CsvLog, ProgressBar, Step, TensorBoardLog, Validation
from lodetools.train.checkpoint import load_checkpoint, load_record, load_weights, model_record, save_checkpoint
from lodetools.train.datasets import CropDataset, PairSource, SampleBatches, load_source
from lodetools.train.distributed import setup_distributed, wrap_ddp
from lodetools.train.options import TrainConfig
from lodetools.train.registry import Stage, build_model, get_spec
from lodetools.train.schedule import lr_factor, lr_milestones, phase_at, stage_bounds

TRAIN_FORMAT = "lodetools-train-2"


class Trainer:
    """Train ``cfg.net`` per its :class:`~lodetools.train.registry.TrainSpec`; see the module docstring.

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
    callbacks : list of Callback, optional
        Added to the default ones (CSV logs, TensorBoard, validation, progress bar).
    """

    def __init__(self, cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False,
                 quiet: bool = False, stop_at: int | None = None, callbacks=()):
        self.cfg, self.quiet, self.stop_at = cfg, quiet, stop_at
        self.spec = get_spec(cfg.net)
        self.out = Path(cfg.out)
        self.device = resolve_device(cfg.device)
        self.dist = setup_distributed(self.device)
        if self.device.type == "cuda" and self.dist.world > 1:
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        self.amp = bool(cfg.amp) and self.device.type == "cuda"
        # --init-from: a checkpoint's weights (lodetools' or the authors'); when it holds the whole
        # network its options fill in what --net-opts does not set (a part gives only 'signed')
        self.init = load_record(cfg.init_from) if cfg.init_from and not resume else None
        init_opts = {} if self.init is None else dict(self.init["net_opts"]) if \
            self.init["net"] == self.spec.net else {k: v for k, v in self.init["net_opts"].items() if k == "signed"}
        self.net_opts = {**self.spec.net_defaults, **init_opts, **cfg.net_opts}
        unknown = set(cfg.loss) - set(self.spec.loss_defaults)
        if unknown:
            raise BadConfig(f"unknown loss weight(s) {', '.join(sorted(unknown))} for {cfg.net}; "
                            f"known: {', '.join(self.spec.loss_defaults)}")
        self.weights = {**self.spec.loss_defaults, **cfg.loss}
        self.stages = self.spec.stages(self.weights)
        names = [s.name for s in self.stages]
        for name in cfg.stages:
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
        self.milestones = lr_milestones(cfg.iters, cfg.lr_milestones, cfg.lr_step)
        self.ckpt_path = self.out / "checkpoints" / "last.pt"
        self._check_out(resume, overwrite)
        self.resume = resume
        torch.manual_seed(cfg.seed)
        self.model = build_model(self.spec.name, self.net_opts)
        if self.init is not None:
            load_weights(self.model, self.spec.net, self.init, cfg.init_from)
        self.model = self.model.to(self.device)
        if cfg.channels_last and self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ddp = wrap_ddp(self.model, self.device, self.dist)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.datasets = self._datasets()
        self.blocks = [self._block_lengths(s) for s in self.stages]
        self.history = []       # (iteration, loss) of this process
        self.callbacks = []
        if self.dist.main:
            self.callbacks = [CsvLog(self.out), TensorBoardLog(self.out), Validation(cfg.val_every)]
            if not quiet:
                end = cfg.iters if stop_at is None else min(cfg.iters, int(stop_at))
                self.callbacks.append(ProgressBar(end, f"train {cfg.net}"))
            self.callbacks += list(callbacks)
        self._stage = None

    # -- setup
    def _check_out(self, resume: bool, overwrite: bool) -> None:
        if resume:
            if not self.ckpt_path.is_file():
                raise MissingInput("nothing to resume: no checkpoints/last.pt", self.out)
            return
        if self.ckpt_path.exists() and not overwrite:
            raise OutputConflict("output folder holds a training run; use --resume or --overwrite", self.out)

    def _datasets(self) -> dict:
        cfg, roles, need = self.cfg, {}, {}
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
                own = r == cfg.data   # --layout and --masks describe --data
                pairs += load_source(r, cfg.train_split, need_mask=masked, layout=cfg.layout if own else None,
                                     masks=cfg.masks if own else None, needed_by=cfg.net).pairs
            roles[role] = CropDataset(PairSource(";".join(roots), cfg.train_split, pairs), cfg.crop,
                                      cfg.seed + (0 if role == "data" else 1000), bapc_p=cfg.bapc_p,
                                      bapc_min_fraction=cfg.bapc_min_fraction,
                                      augmentation=cfg.augment, cache=cfg.cache)
        for s in self.stages:
            s.phases = [p for p in s.phases if p.data in roles]
            if not s.phases:
                raise MissingInput(f"stage {s.name!r} has no training data", cfg.data)
        return roles

    def _block_lengths(self, stage: Stage) -> tuple:
        """Iterations each phase runs before the next (one epoch of its data, or ``alternate_every``)."""
        if stage.alternate_every == "epoch":
            per_iter = self.cfg.batch * self.dist.world
            return tuple(max(1, len(self.datasets[p.data]) // per_iter) for p in stage.phases)
        return (max(1, int(stage.alternate_every)),) * len(stage.phases)

    def _optimizers(self, k: int) -> list:
        """(optimizer, scheduler) per phase of stage ``k``; phases without ``params`` share one."""
        stage, (start, _) = self.stages[k], self.bounds[k]
        skip = {id(p) for n in stage.frozen for p in getattr(self.model, n).parameters()}
        lr = stage.lr if stage.lr is not None else (self.cfg.lr if self.cfg.lr is not None else self.spec.lr)
        ms, gamma = self.milestones, self.cfg.lr_gamma

        def make(params):
            opt = torch.optim.Adam(params, lr=lr)
            return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(start + s, ms, gamma))

        shared, out = None, []
        for p in stage.phases:
            if p.params:
                out.append(make([q for n in p.params for q in getattr(self.model, n).parameters()
                                 if id(q) not in skip]))
            else:
                shared = shared or make([q for q in self.model.parameters() if id(q) not in skip])
                out.append(shared)
        return out

    def _loader(self, k: int, p_index: int, t0: int):
        """Batches for the iterations in [t0, stage stop) that use phase ``p_index``."""
        stage, (start, stop), blocks = self.stages[k], self.bounds[k], self.blocks[k]
        ds = self.datasets[stage.phases[p_index].data]
        sampler = SampleBatches(
            range(t0, stop), self.cfg.batch, self.dist.rank, self.dist.world,
            # the dataset's own step counter: distinct across stages and alternating phases
            stream=lambda t: start + phase_at(blocks, t - start)[1],
            keep=lambda t: phase_at(blocks, t - start)[0] == p_index)
        loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=self.cfg.workers,
                                             pin_memory=self.device.type == "cuda",
                                             generator=torch.Generator().manual_seed(self.cfg.seed))
        return iter(loader)

    # -- state
    def _distinct(self, optims):
        seen, out = set(), []
        for pair in optims:
            if id(pair[0]) not in seen:
                seen.add(id(pair[0]))
                out.append(pair)
        return out

    def _state(self, t: int, k: int, optims) -> dict:
        uniq = self._distinct(optims)
        return {"format": TRAIN_FORMAT, "net": self.spec.net, "spec": self.spec.name,
                "net_opts": self.net_opts, "model": self.model.state_dict(),
                "optimizer": [o.state_dict() for o, _ in uniq], "scheduler": [s.state_dict() for _, s in uniq],
                "scaler": self.scaler.state_dict(), "iteration": t, "stage": k,
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "config": json.dumps(self.cfg.to_json(), sort_keys=True)}

    def _load_optimizers(self, optims, state) -> None:
        uniq = self._distinct(optims)
        opts, scheds = state["optimizer"], state["scheduler"]
        if isinstance(opts, dict):                    # lodetools-train-1: one optimizer per stage
            opts, scheds = [opts], [scheds]
        if len(opts) != len(uniq):
            raise BadConfig("checkpoint has another number of optimizers than this stage", self.ckpt_path)
        for (o, s), os_, ss in zip(uniq, opts, scheds):
            o.load_state_dict(os_)
            s.load_state_dict(ss)
        self.scaler.load_state_dict(state["scaler"])

    def emit(self, hook: str, *args) -> None:
        """Call ``hook`` on every callback."""
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def restore_modes(self) -> None:
        """Training mode, with the current stage's frozen parts in eval mode."""
        self.model.train()
        for n in (self._stage.frozen if self._stage is not None else ()):
            getattr(self.model, n).eval()

    def _checkpoint(self, t, k, optims) -> None:
        if self.dist.main:
            save_checkpoint(self.ckpt_path, self._state(t, k, optims))
            self.emit("on_checkpoint", t)

    def _resume_state(self):
        state = load_checkpoint(self.ckpt_path)
        if state.get("net") != self.spec.net or state.get("net_opts") != self.net_opts:
            raise BadConfig("checkpoint was made for another network or options", self.ckpt_path)
        self.model.load_state_dict(state["model"])
        torch.set_rng_state(state["rng_cpu"])              # dropout etc. continue exactly
        if torch.cuda.is_available() and state.get("rng_cuda"):
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        return state

    def _step(self, phase, batch, opt) -> tuple:
        self.model.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            loss, parts = phase.loss(self.ddp, batch, self.weights)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {float(loss)}")
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        self.scaler.update()
        return float(loss.detach()), parts

    def _batch(self, loader) -> dict:
        batch = {n: (v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v)
                 for n, v in next(loader).items()}
        if self.cfg.channels_last and self.device.type == "cuda":
            for n in ("blur", "sharp", "mask"):
                batch[n] = batch[n].contiguous(memory_format=torch.channels_last)
        return batch

    # -- main loop
    def run(self) -> list:
        """Train to ``cfg.iters`` (or ``stop_at``); returns this process's (iteration, loss) list."""
        cfg = self.cfg
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "config.json", json.dumps(cfg.to_json(), indent=2, sort_keys=True))
        t, k, state = 0, 0, None
        if self.resume:
            state = self._resume_state()
            t, k = int(state["iteration"]), int(state["stage"])
            if k < len(self.bounds) and t >= self.bounds[k][1]:
                k += 1
        self.emit("on_start", t)
        end = cfg.iters if self.stop_at is None else min(cfg.iters, int(self.stop_at))
        while k < len(self.stages) and t < end:
            stage, (start, stop) = self.stages[k], self.bounds[k]
            optims = self._optimizers(k)
            if state is not None and int(state["stage"]) == k:
                self._load_optimizers(optims, state)
            state = None
            self._stage = stage
            self.restore_modes()
            loaders = [self._loader(k, i, t) for i in range(len(stage.phases))]
            while t < min(stop, end):
                pi = phase_at(self.blocks[k], t - start)[0]
                opt, sched = optims[pi]
                try:
                    lv, parts = self._step(stage.phases[pi], self._batch(loaders[pi]), opt)
                except FloatingPointError as exc:
                    raise FloatingPointError(f"{exc} at iteration {t}") from None
                lr = opt.param_groups[0]["lr"]
                with warnings.catch_warnings():       # idle optimizers' schedulers step too:
                    warnings.simplefilter("ignore", UserWarning)   # every rate follows the iteration
                    for _, s in self._distinct(optims):
                        s.step()
                t += 1
                self.history.append((t, lv))
                self.emit("on_step", Step(t, stage.name, stage.phases[pi].name, lr, lv, parts))
                if (cfg.ckpt_every and t % cfg.ckpt_every == 0) or t == end or t == stop:
                    self._checkpoint(t, k, optims)
            if t >= stop:
                k += 1
        self.iteration = t  # where training stands, also after resuming a finished run
        if self.dist.main and t >= cfg.iters:
            save_checkpoint(self.out / "model.pt", model_record(self.spec.net, self.net_opts, self.model,
                                                                spec=self.spec.name))
        self.emit("on_end")
        if self.dist.world > 1:
            torch.distributed.barrier()
        return self.history


def train(cfg: TrainConfig, **kwargs) -> list:
    """Build a :class:`Trainer` for ``cfg`` and run it; returns the (iteration, loss) history."""
    return Trainer(cfg, **kwargs).run()
