"""Distributed data parallel training under ``torchrun``."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class DistInfo:
    """Rank of this process, number of processes, and its local rank on the node."""

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
