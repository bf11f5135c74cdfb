"""DDP with 2 CPU processes (gloo) agrees with one process on the averaged gradient."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from lodetools.train.checkpoint import load_checkpoint
from lodetools.train.datasets import CropDataset, load_source
from lodetools.train.options import TrainConfig
from lodetools.train.registry import build_model
from lodetools.train.spec_lbag import SPEC as LBAG_SPEC, lbag_loss
from lodetools.train.trainer import Trainer

from tests.support.train_data import make_dataset

OPTS = {"base": 4, "num_res": 1, "dropout": 0.0}    # no dropout: the same function on every rank
#: the official loss with its shift tolerance: a per-image minimum, then the mean, so the
#: mean over ranks of each rank's loss is the loss of the whole batch
WEIGHTS = dict(LBAG_SPEC.loss_defaults)
B = 2


def _batch(root, start, n):
    ds = CropDataset(load_source(root, "train"), 64, seed=0, cache=True)
    items = [ds[g] for g in range(start, start + n)]
    return {k: torch.stack([it[k] for it in items]) for k in ("blur", "sharp", "mask")}


def _worker(rank, world, port, root, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from lodetools.train.distributed import setup_distributed, wrap_ddp
    info = setup_distributed(torch.device("cpu"))
    assert (info.rank, info.world) == (rank, world) and dist.get_backend() == "gloo"
    torch.manual_seed(0)
    model = build_model("lbag", OPTS)
    ddp = wrap_ddp(model, torch.device("cpu"), info)
    loss, _ = lbag_loss(ddp, _batch(root, rank * B, B), WEIGHTS)    # rank r: samples [rB, rB + B)
    loss.backward()                                                  # DDP all-reduces (averages)
    if rank == 0:
        torch.save({n: p.grad for n, p in model.named_parameters()}, os.path.join(out, "grads.pt"))
    # and the trainer itself under DDP: 2 iterations, every rank ends with the same weights
    cfg = TrainConfig(net="lbag", data=root, out=os.path.join(out, "run"), iters=2, batch=B, crop=64,
                      net_opts=OPTS, cache=True)
    tr = Trainer(cfg, quiet=True)
    tr.run()
    torch.save(tr.model.state_dict(), os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_ddp_two_cpu_processes_match_one_process(tmp_path):
    root = make_dataset(tmp_path / "d", n=4)
    mp.spawn(_worker, args=(2, _free_port(), root, str(tmp_path)), nprocs=2, join=True)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model("lbag", OPTS)
    loss, _ = lbag_loss(model, _batch(root, 0, 2 * B), WEIGHTS)          # one process, both halves
    loss.backward()
    ddp_grads = torch.load(tmp_path / "grads.pt", weights_only=True)
    for n, p in model.named_parameters():
        assert torch.allclose(ddp_grads[n], p.grad, rtol=1e-4, atol=1e-7), n
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    assert load_checkpoint(tmp_path / "run" / "model.pt")["net"] == "lbag"
