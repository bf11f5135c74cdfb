"""Speed and memory of the deformable layers and the SimpleNet/ASPDC networks (CPU).

Prints, each next to the reference it is compared with (run side by side in
this process or in fresh child processes for memory):

1. our DCNv2 (``deform_conv2d``) forward and forward+backward time against a
   plain ``nn.Conv2d`` of the same shape;
2. inference time of SimpleNet and ASPDC (and the reblurring net) at full
   size on one image (default 320x176; ``--full``: 1280x720, as the issue);
3. LGCR against a non-local block on a 3-channel input (default 90x90;
   ``--full``: 180x180, SimpleNet Table 6: 34 MB / 0.466 ms vs 8018 MB /
   68.16 ms on a GPU): peak extra resident memory (measured in a fresh child
   process from ``ru_maxrss``) and time, plus the analytic count of the
   activations each one holds.

Usage::

    PYTHONPATH=. python benchmarks/bench_deform.py [--full] [--threads N]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import torch
from torch import nn


def _time(fn, repeat=5, warmup=True):
    if warmup:
        fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_deform(c, h, w):
    from lodetools.nets.deform import HAS_TORCHVISION, DeformConv2d
    torch.manual_seed(0)
    x = torch.randn(1, c, h, w, requires_grad=True)
    dcn = DeformConv2d(c, c, 3, padding=1)
    conv = nn.Conv2d(c, c, 3, padding=1)
    off = (torch.randn(1, 18, h, w) * 2).requires_grad_()
    mask = torch.rand(1, 9, h, w).requires_grad_()
    print(f"[1] deformable conv {c}->{c} 3x3 on {h}x{w} (torchvision op: {HAS_TORCHVISION})")
    with torch.no_grad():
        td = _time(lambda: dcn(x, off, mask))
        tc = _time(lambda: conv(x))
    print(f"    forward           ours {td * 1e3:8.1f} ms   plain conv {tc * 1e3:8.1f} ms   "
          f"ratio {td / tc:5.1f}x")
    td = _time(lambda: dcn(x, off, mask).sum().backward())
    tc = _time(lambda: conv(x).sum().backward())
    print(f"    forward+backward  ours {td * 1e3:8.1f} ms   plain conv {tc * 1e3:8.1f} ms   "
          f"ratio {td / tc:5.1f}x")


def bench_networks(h, w, names=("simplenet", "aspdc", "aspdc-reblur"), warmup=True):
    from lodetools.nets import build
    print(f"[2] inference at {w}x{h} (full-size networks, one image, no grad; "
          f"{'best of 1 after a warm-up' if warmup else 'one cold pass'})")
    x = torch.rand(1, 3, h, w)
    times = {}
    for name in names:
        torch.manual_seed(0)
        net = build(name).eval()
        n = sum(p.numel() for p in net.parameters())
        args = (x, x) if name == "aspdc-reblur" else (x,)
        with torch.no_grad():
            t = _time(lambda: net(*args), repeat=1, warmup=warmup)
        times[name] = t
        print(f"    {name:13s} {n / 1e6:6.2f}M params  {t:8.2f} s")
    if "simplenet" in times and "aspdc" in times:
        print(f"    ratio simplenet / aspdc: {times['simplenet'] / times['aspdc']:.2f} "
              f"(paper Table 2, GPU: SimpleNet 376 ms at 720p)")


def _rss_kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def _child(kind, size, q):
    """Fresh process: peak extra RSS (VmHWM after a reset) and best time of a forward."""
    torch.set_num_threads(q.get())
    from lodetools.nets.simplenet import LGCR, NonLocalBlock
    torch.manual_seed(0)
    m = LGCR(64) if kind == "lgcr" else NonLocalBlock(3, 3)
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        m(x)  # warm-up at the measured size (first-call allocations, kernel selection)
        try:  # Linux >= 4.0: "5" resets the peak RSS to the current RSS
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            base, field = _rss_kb("VmRSS:"), "VmHWM:"
        except OSError:  # fall back on the process-lifetime peak
            base, field = None, None
        if base is None:
            base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = _time(lambda: m(x), repeat=3 if (kind == "lgcr" or size <= 128) else 1, warmup=False)
        peak = _rss_kb(field) if field else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    q.put(((peak - base) / 1024.0, t))


def _measure(kind, size, threads):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    q.put(threads)
    p = ctx.Process(target=_child, args=(kind, size, q))
    p.start()
    p.join()
    return q.get()


def bench_lgcr(size, threads):
    n = size * size
    print(f"[3] LGCR (r=64) vs non-local block, input 1x3x{size}x{size}, forward, no grad")
    # analytic float32 activations: LGCR holds ~4 C*H*W maps (raw, softmax,
    # Conv3D output, product) plus r*(C+H+W) fragments; non-local holds the
    # N x N affinity and its softmax (N = H*W), the rest is O(N C).
    lg_a = (4 * 3 * n + 64 * (3 + 2 * size)) * 4 / 2**20
    nl_a = 2 * n * n * 4 / 2**20
    mem_l, t_l = _measure("lgcr", size, threads)
    mem_n, t_n = _measure("nonlocal", size, threads)
    print(f"    LGCR       measured {mem_l:9.1f} MB {t_l * 1e3:9.2f} ms   analytic {lg_a:9.1f} MB")
    print(f"    non-local  measured {mem_n:9.1f} MB {t_n * 1e3:9.2f} ms   analytic {nl_a:9.1f} MB")
    print(f"    ratio non-local / LGCR: memory {mem_n / max(mem_l, 0.1):.0f}x (analytic "
          f"{nl_a / lg_a:.0f}x), time {t_n / t_l:.0f}x   (paper at 180x180: 8018/34 MB = 236x, "
          f"68.16/0.466 ms = 146x)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true",
                    help="issue sizes: 128 ch at 180x320, networks at 1280x720, LGCR at 180x180")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parts", default="deform,lgcr,nets",
                    help="comma-separated subset of deform, lgcr, nets")
    ap.add_argument("--nets", default="simplenet,aspdc,aspdc-reblur",
                    help="networks timed by the 'nets' part")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    parts = set(a.parts.split(","))
    if "deform" in parts:
        bench_deform(*((128, 180, 320) if a.full else (64, 64, 64)))
    if "lgcr" in parts:
        bench_lgcr(180 if a.full else 90, a.threads)
    if "nets" in parts:
        names = tuple(a.nets.split(","))
        if a.full:  # a 720p pass takes minutes on CPU: one cold pass each
            bench_networks(720, 1280, names, warmup=False)
        else:
            bench_networks(176, 320, names)


if __name__ == "__main__":
    main()
