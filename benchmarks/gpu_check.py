"""GPU check: the CUDA paths against the CPU/fp32 ones, and speed and memory per network.

Run by ``benchmarks/gpu_check.sh`` (one GPU, under 5 minutes); every check
takes a ``device`` so the same code runs on the CPU (``--device cpu --quick``,
tiny sizes) where no GPU is at hand. Prints one JSON document (and writes it
with ``--out``):

* ``c2f``: lodetools.flow c2f, torch engine on ``device`` against the CPU
  engine on the same pair (mean / p99 / max flow difference in pixels, times);
* ``train_step``: per network, one training step (the recipe's first stage
  loss) with fp16 autocast + GradScaler + channels_last against fp32 from the
  same weights and batch: relative loss difference, gradient cosine
  similarity, finiteness;
* ``speed``: per network at the recipe's crop and batch (fp16 + channels_last
  on CUDA as the trainer runs): iterations/s and peak memory;
* ``deblur``: full-size networks on a 2152x1436 image (ReLoBlur's size), tiled
  (512 / 32) and whole: seconds, peak memory, and the largest tiled-vs-whole
  difference.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

NETS = ("lbag", "bladenet", "simplenet", "aspdc")
SMALL = {"lbag": {"base": 8, "num_res": 1}, "bladenet": {"width": 8}, "simplenet": {"width": 8, "rank": 4},
         "aspdc": {"width": 8, "num_res": 1, "reblur_width": 8}}


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device):
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device):
    return torch.cuda.max_memory_allocated(device) / 2**30 if torch.device(device).type == "cuda" else None


def check_c2f(device, size=(480, 640)):
    """c2f torch engine on ``device`` vs the CPU engine: flow differences in pixels."""
    from lodetools.flow import estimate_flow
    rng = np.random.default_rng(0)
    h, w = size
    base = rng.random((h // 8 + 2, w // 8 + 2, 3)).astype(np.float32)
    import cv2
    ref = cv2.resize(base, (w + 16, h + 16), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    moving = np.ascontiguousarray(ref[5:5 + h, 3:3 + w])        # ref(x) = moving(x + (-2, -3))
    ref = np.ascontiguousarray(ref[2:2 + h, 1:1 + w])
    t = time.perf_counter()
    cpu = estimate_flow(ref, moving, method="c2f", device="cpu")      # 'auto' alone would pick the GPU
    t_cpu = time.perf_counter() - t
    estimate_flow(ref[:64, :64], moving[:64, :64], method="c2f", engine="torch", device=str(device))  # warm-up
    t = time.perf_counter()
    dev = estimate_flow(ref, moving, method="c2f", engine="torch", device=str(device))
    t_dev = time.perf_counter() - t
    d = np.linalg.norm(cpu - dev, axis=-1)
    return {"size": [h, w], "mean_px": float(d.mean()), "p99_px": float(np.percentile(d, 99)),
            "max_px": float(d.max()), "cpu_s": t_cpu, "device_s": t_dev,
            "true_shift_error_px": float(np.abs(dev[16:-16, 16:-16].mean((0, 1)) - [-2, -3]).max())}


def _spec_model_batch(net, device, crop, batch, opts=None, seed=0):
    from lodetools.train.registry import build_model, get_spec
    spec = get_spec(net)
    torch.manual_seed(seed)
    model = build_model(spec.name, {**spec.net_defaults, **(opts or {})}).to(device)
    g = torch.Generator().manual_seed(seed)
    sharp = torch.rand(batch, 3, crop // 8, crop // 8, generator=g)
    sharp = torch.nn.functional.interpolate(sharp, size=(crop, crop), mode="bilinear", align_corners=False)
    blur = torch.nn.functional.avg_pool2d(sharp, 5, 1, 2, count_include_pad=False)
    mask = (torch.rand(batch, 1, crop // 16, crop // 16, generator=g) > 0.5).float()
    mask = torch.nn.functional.interpolate(mask, size=(crop, crop), mode="nearest")
    batch_ = {"blur": blur.to(device), "sharp": sharp.to(device), "mask": mask.to(device)}
    return spec, model, batch_


def _first_loss(spec):
    w = dict(spec.loss_defaults)
    return spec.stages(w)[0].phases[0].loss, w


def train_step(model, batch, loss_fn, w, device, amp, channels_last, scaler=None):
    """One step (forward, backward, Adam-free): (loss value, flat gradient) on ``device``."""
    device = torch.device(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
    model.train()
    model.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        loss, _ = loss_fn(model, batch, w)
    scale = 1.0
    if scaler is not None and amp:
        scaler.scale(loss).backward()
        scale = scaler.get_scale()
    else:
        loss.backward()
    grads = torch.cat([p.grad.detach().float().flatten() / scale for p in model.parameters() if p.grad is not None])
    return float(loss.detach()), grads


def check_train_step(net, device, crop=64, batch=2, opts=None):
    """AMP + channels_last vs fp32 for one step from the same weights and batch (dropout off)."""
    spec, model, b = _spec_model_batch(net, device, crop, batch, opts)
    loss_fn, w = _first_loss(spec)
    for m in model.modules():                       # the same function both times: no dropout noise
        if isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d)):
            m.p = 0.0
    state = {k: v.clone() for k, v in model.state_dict().items()}
    amp = torch.device(device).type == "cuda"
    l32, g32 = train_step(model, b, loss_fn, w, device, amp=False, channels_last=False)
    model.load_state_dict(state)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    l16, g16 = train_step(model, b, loss_fn, w, device, amp=amp, channels_last=amp, scaler=scaler)
    cos = float(torch.nn.functional.cosine_similarity(g32, g16, dim=0))
    return {"loss_fp32": l32, "loss_amp": l16, "loss_rel_diff": abs(l16 - l32) / max(abs(l32), 1e-12),
            "grad_cosine": cos, "finite": bool(torch.isfinite(g16).all()), "amp": amp}


def check_speed(net, device, crop, batch, steps=5, opts=None):
    """Training iterations/s and peak memory at ``crop``/``batch`` (AMP + channels_last on CUDA)."""
    spec, model, b = _spec_model_batch(net, device, crop, batch, opts)
    loss_fn, w = _first_loss(spec)
    amp = torch.device(device).type == "cuda"
    if amp:
        model = model.to(memory_format=torch.channels_last)
        b = {k: v.contiguous(memory_format=torch.channels_last) for k, v in b.items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(torch.device(device).type, dtype=torch.float16, enabled=amp):
            loss, _ = loss_fn(model, b, w)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    step()
    _sync(device)
    _peak_reset(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    dt = time.perf_counter() - t
    return {"crop": crop, "batch": batch, "it_per_s": steps / dt, "peak_gib": _peak_gib(device)}


def check_deblur(net, device, size=(1436, 2152), tile=512, overlap=32, opts=None):
    """Deblur one image tiled and whole: seconds, peak memory, largest difference."""
    from lodetools.train.inference import predict_tensor
    from lodetools.train.registry import build_model, get_spec
    spec = get_spec(net)
    torch.manual_seed(0)
    model = build_model(spec.name, {**spec.net_defaults, **(opts or {})}).to(device).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, size[0] // 16, size[1] // 16, generator=g),
                                        size=size, mode="bilinear", align_corners=False).to(device)
    out = {}
    for name, t in (("tiled", tile), ("whole", 0)):
        _peak_reset(device)
        _sync(device)
        t0 = time.perf_counter()
        y = predict_tensor(model, x, predict=spec.predict, multiple=spec.multiple, tile=t, overlap=overlap)
        _sync(device)
        out[name] = {"s": time.perf_counter() - t0, "peak_gib": _peak_gib(device)}
        out[name + "_y"] = y.clamp(0, 1)
    d = (out.pop("tiled_y") - out.pop("whole_y")).abs()
    out["max_diff"] = float(d.max())
    out["mean_diff"] = float(d.mean())
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny networks and sizes (a CPU run of the same code)")
    ap.add_argument("--only", default="c2f,train_step,speed,deblur", help="comma-separated checks")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    a = ap.parse_args(argv)
    recipes = {"lbag": (256, 12), "bladenet": (192, 8), "simplenet": (256, 8), "aspdc": (256, 6)}
    only = set(a.only.split(","))
    res = {"device": a.device, "torch": torch.__version__,
           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}

    def run(name, fn):
        t = time.perf_counter()
        try:
            res[name] = fn()
        except Exception as exc:                      # report and go on: one failure must not hide the rest
            res[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"{name}: {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)

    opts = SMALL if a.quick else {}
    if "c2f" in only:
        run("c2f", lambda: check_c2f(a.device, (96, 128) if a.quick else (480, 640)))
    for net in NETS:
        if "train_step" in only:
            run(f"train_step/{net}", lambda: check_train_step(net, a.device, opts=opts.get(net)))
        if "speed" in only:
            crop, batch = (64, 2) if a.quick else recipes[net]
            run(f"speed/{net}", lambda: check_speed(net, a.device, crop, batch, steps=2 if a.quick else 5,
                                                    opts=opts.get(net)))
        if "deblur" in only:
            size, tile = ((136, 200), 64) if a.quick else ((1436, 2152), 512)
            run(f"deblur/{net}", lambda: check_deblur(net, a.device, size, tile, 16 if a.quick else 32,
                                                      opts=opts.get(net)))
    text = json.dumps(res, indent=1)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return res


if __name__ == "__main__":
    main()
