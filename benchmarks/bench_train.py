"""Training and inference speed of LBAG and BladeNet on CPU, and their GPU memory on paper.

Prints, for each network (full size unless --width-scale):

* training iterations/s (its full loss recipe, Adam step) next to the same step
  of its plain backbone with an L1 loss (MIMO-UNet+ for LBAG; the two U-Nets
  without attention, CE/Dice for BladeNet), and the ratio;
* inference time at 256x256 (and 1280x720 with --full) whole, next to tiled
  (tile 512, overlap 32), and the ratio;
* an on-paper estimate of GPU memory for training at batch 12, 256x256 with
  and without mixed precision: parameters + gradients + Adam states (16 B per
  parameter, + 2 B fp16 weight copies with AMP) plus every forward op output
  (counted on the meta device with a dispatch mode, views excluded; an upper
  bound on what autograd keeps; in-place ops add nothing) at 4 B (fp32) or 2 B (AMP) per element.

Usage: ``python benchmarks/bench_train.py [--full] [--threads N]``. Default
training batch 1 at 128x128 (``--full``: batch 2 at 256x256 on CPU).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from lodetools import nets
from lodetools.nets.blocks import count_parameters
from lodetools.nets.mimo import MIMOUNetPlain
from lodetools.train import losses
from lodetools.train.inference import predict_tensor
from lodetools.train.spec_bladenet import SPEC as BLADE, joint_local_loss
from lodetools.train.spec_lbag import SPEC as LBAG, lbag_loss


def _batch(b, s, device="cpu"):
    g = torch.Generator().manual_seed(0)
    mk = lambda *shape: torch.rand(*shape, generator=g).to(device)   # noqa: E731
    return {"blur": mk(b, 3, s, s), "sharp": mk(b, 3, s, s), "mask": (mk(b, 1, s, s) > 0.7).float()}


def _plain_l1(model, batch, w):
    out = model(batch["blur"])
    out = out[-1] if isinstance(out, list) else out
    return losses.l1_loss(out, batch["sharp"]), {}


class _PlainUNets(torch.nn.Module):
    """BladeNet's two U-Nets without the BSA attention (reference for the step time)."""

    def __init__(self, width):
        super().__init__()
        from lodetools.nets.bladenet import MaskNet, UNet
        self.lbp = MaskNet(width)
        self.unet = UNet(5, width)
        self.outc = torch.nn.Conv2d(width, 3, 1)

    def forward(self, x):
        logits = self.lbp(x)
        return torch.sigmoid(self.outc(self.unet(torch.cat([x, logits], 1))[0]))


def step_time(model, loss_fn, w, batch, reps):
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    model.train()

    def step():
        model.zero_grad(set_to_none=True)
        loss, _ = loss_fn(model, batch, w)
        loss.backward()
        opt.step()

    step()                                                   # warm-up
    t = time.perf_counter()
    for _ in range(reps):
        step()
    return (time.perf_counter() - t) / reps


def infer_time(model, predict, multiple, h, w, tile):
    x = torch.rand(1, 3, h, w)
    model.eval()
    predict_tensor(model, x[..., :64, :64], predict=predict, multiple=multiple, tile=0)   # warm-up
    t = time.perf_counter()
    predict_tensor(model, x, predict=predict, multiple=multiple, tile=tile, overlap=32)
    return time.perf_counter() - t


class _Count(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.elements = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inplace = func.overloadpacket.__name__.endswith("_")      # relu_, add_: no new memory
        if not getattr(func, "is_view", False) and not inplace:
            self.elements += sum(t.numel() for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))
        return out


def memory_estimate(build, loss_fn, w, batch=12, size=256):
    """(params, activation elements, GB fp32, GB AMP) for one training step, on paper."""
    with torch.device("meta"):
        model = build()
        b = _batch(batch, size, device="meta")
    n_par = count_parameters(model)
    with _Count() as c:
        loss_fn(model, b, w)
    fp32 = (16 * n_par + 4 * c.elements) / 1e9
    amp = (18 * n_par + 2 * c.elements) / 1e9
    return n_par, c.elements, fp32, amp


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="issue sizes: batch 2 at 256, inference at 1280x720")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    bsz, crop = (2, 256) if a.full else (1, 128)
    print(f"CPU, {a.threads} threads; training batch {bsz} at {crop}x{crop}; times are wall seconds")
    cases = [
        ("lbag", lambda: nets.build("lbag"), lbag_loss, LBAG, lambda: MIMOUNetPlain(num_res=20, dropout=0.1),
         "MIMO-UNet+ / L1"),
        ("bladenet", lambda: nets.build("bladenet"), joint_local_loss, BLADE, lambda: _PlainUNets(64),
         "U-Nets w/o BSA / L1"),
    ]
    for name, build, loss_fn, spec, ref_build, ref_name in cases:
        torch.manual_seed(0)
        model = build()
        batch = _batch(bsz, crop)
        t = step_time(model, loss_fn, spec.loss_defaults, batch, a.reps)
        tr = step_time(ref_build(), _plain_l1, {}, batch, a.reps)
        print(f"{name:9s} train  {1 / t:8.3f} it/s   {ref_name}: {1 / tr:8.3f} it/s   ratio {tr / t:.2f}")
        sizes = [(256, 256)] + ([(720, 1280)] if a.full else [])
        for h, w in sizes:
            whole = infer_time(model, spec.predict, spec.multiple, h, w, tile=0)
            tiled = infer_time(model, spec.predict, spec.multiple, h, w, tile=512)
            print(f"{name:9s} infer {w}x{h}: whole {whole:7.2f} s   tiled(512/32) {tiled:7.2f} s   "
                  f"ratio {tiled / whole:.2f}")
        n, el, g32, gamp = memory_estimate(build, loss_fn, spec.loss_defaults)
        print(f"{name:9s} GPU memory estimate, batch 12 at 256x256: {n / 1e6:.2f} M params, "
              f"{el / 1e9:.2f} G activation elements -> fp32 {g32:.1f} GB, AMP {gamp:.1f} GB "
              f"(on paper, upper bound)")


if __name__ == "__main__":
    main()
