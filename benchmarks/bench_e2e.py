"""End to end: every command at the papers' sizes against what a user would write by hand.

Each ``bench_<command>(size, tmp) -> rows`` runs the lodetools command end to
end (its pipeline ``run`` in this process, as the CLI does: planning, the work
runner, atomic writes, manifest, ``dataset.json``) and its hand-written
comparison (the bare library calls for the same work, writing the same files),
interleaved, three rounds each; a row holds the medians and the 1-minute load
average during the rounds. The machine is shared: read the ratio (ours /
comparison, below 1 is faster) with the load beside it.

Comparisons:

- ``synthesize``: the 25-line cv2 script (``cv2.VideoCapture``, a 256-entry LUT
  for ``g^-1``, float32 mean, ``** (1 / 2.2)``, two ``cv2.imwrite`` at OpenCV's
  default PNG settings), on a 1080p 250 fps H.264 clip, M = 11, windows back to
  back (12 pairs), ``--workers 1``.
- ``develop``: ``rawpy`` read + Menon demosaic (colour-demosaicing, float32)
  + white balance and gamma + two ``cv2.imwrite`` per pair.
- ``align``: the same development + ``estimate_flow`` (c2f) on the reference
  pair + ``cv2.remap`` of every blur image + the ``cv2.imwrite`` calls.
- ``lbs``: the PNG encoding of its three images per sample at OpenCV's default
  level plus its compositing (``synthesize_lbs``), per sample.
- ``eval`` (psnr, ssim, psnrw, ssimw): ``cv2.imread`` of both images,
  scikit-image ``peak_signal_noise_ratio`` and gaussian ``structural_similarity``
  (PSNR and SSIM only), per image, at ReLoBlur's 2152x1436.
- ``deblur`` (LBAG at its recipe width: base 32, 20 residual blocks; random
  weights; ``--tile 512 --overlap 32``): build the network, load the weights,
  ``cv2.imread``, one whole-image forward under ``torch.inference_mode``,
  ``cv2.imwrite``, at 1280x720; both on the same torch thread count.
- ``masks`` (recipe ``reloblur``, one scene of 5 pairs and its static pair, in
  place): Algorithm 1 with cv2 (``imread``, the MOG2 ``apply`` calls, OR,
  erode, dilate, ``imwrite``), per pair, at 2152x1436.
- ``startup``: ``lodetools develop`` and ``lodetools align`` as processes on a
  96x64 rig (warm caches: numba's, the page cache and Python's bytecode
  cache, written even where ``PYTHONDONTWRITEBYTECODE`` is set), against a
  process that imports numpy, OpenCV and rawpy (the least a hand-written
  script imports); median of 7 (target: a command under 0.5 s).

Usage::

    python benchmarks/bench_e2e.py                       # every command
    python benchmarks/bench_e2e.py synthesize lbs        # some
    python benchmarks/bench_e2e.py --only eval,deblur    # the same, comma-separated
    python benchmarks/bench_e2e.py --workers 2 synthesize   # the --workers scaling rows too
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROUNDS = 3


def load1() -> float:
    return os.getloadavg()[0]


def interleaved(ours, theirs, rounds: int = ROUNDS, setup=None):
    """Run ``ours()`` and ``theirs()`` alternately; medians of the wall times and the mean load."""
    t_ours, t_theirs, loads = [], [], []
    for _ in range(rounds):
        for fn, acc in ((ours, t_ours), (theirs, t_theirs)):
            if setup is not None:
                setup()
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
            loads.append(load1())
    return statistics.median(t_ours), statistics.median(t_theirs), float(np.mean(loads))


def row(command, size, ours, theirs, load, per="run", note=""):
    return {"command": command, "size": size, "ours": ours, "theirs": theirs, "ratio": ours / theirs,
            "load": load, "per": per, "note": note}


# --------------------------------------------------------------------------- synthesize

def make_clip(path: Path, size, n_frames: int) -> Path:
    """A 250 fps H.264 clip (yuv420p, as cameras record) of a panning photograph and a moving patch."""
    if not path.exists():
        from bench_synthesize import make_video

        make_video(path, size, n_frames)
    return path


def handwritten_synthesize(video: Path, out: Path, m: int = 11, gamma: float = 2.2) -> int:
    """What a user writes by hand: back-to-back windows of M frames, blurred = mean in linear light."""
    import cv2

    (out / "blur").mkdir(parents=True, exist_ok=True)
    (out / "sharp").mkdir(parents=True, exist_ok=True)
    lut = ((np.arange(256) / 255.0) ** gamma).astype(np.float32)
    cap = cv2.VideoCapture(str(video))
    frames, n = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
        if len(frames) == m:
            acc = np.zeros(frame.shape, np.float32)
            for f in frames:
                acc += cv2.LUT(f, lut)
            acc /= m
            blur = (acc ** (1 / gamma) * 255 + 0.5).astype(np.uint8)
            cv2.imwrite(str(out / "blur" / f"{n:06d}.png"), blur)
            cv2.imwrite(str(out / "sharp" / f"{n:06d}.png"), frames[m // 2])
            frames, n = [], n + 1
    cap.release()
    return n


def lodetools_synthesize(video: Path, out: Path, m: int = 11, workers: int = 1, png_compression=None):
    from lodetools.pipelines.synthesize import SynthesizeParams, run
    from lodetools.runner import RunOptions

    return run([video], SynthesizeParams(m=m, windows_per_clip=0),
               RunOptions(out=out, workers=workers, quiet=True, overwrite=True,
                          png_compression=png_compression))


def bench_synthesize(size, tmp: Path, workers=(1,)) -> list:
    h, w = size
    video = make_clip(Path(tempfile.gettempdir()) / f"lodetools_e2e_{w}x{h}.mp4", size, 140)
    second = None
    if any(k > 1 for k in workers):  # two clips, so that two worker processes have an item each
        second = tmp / "clips2"
        second.mkdir(exist_ok=True)
        for name in ("a.mp4", "b.mp4"):
            if not (second / name).exists():
                os.symlink(video, second / name)
    lodetools_synthesize(video, tmp / "warm", 11)  # numba kernel loaded from its cache, imports done
    n = handwritten_synthesize(video, tmp / "warm_hand")
    rows = []

    def clean():
        for d in ("ours", "hand"):
            shutil.rmtree(tmp / d, ignore_errors=True)

    ours, theirs, load = interleaved(lambda: lodetools_synthesize(video, tmp / "ours"),
                                     lambda: handwritten_synthesize(video, tmp / "hand"), setup=clean)
    rows.append(row("synthesize", f"{w}x{h} M=11", ours, theirs, load, per=f"{n} pairs",
                    note="--workers 1, --png-compression fast"))
    o3, _, load3 = interleaved(lambda: lodetools_synthesize(video, tmp / "ours", png_compression=3),
                               lambda: None, setup=clean)
    rows.append(row("synthesize", f"{w}x{h} M=11", o3, theirs, load3, per=f"{n} pairs",
                    note="--png-compression 3 (the former default)"))
    for k in workers:
        if k == 1:
            continue

        def both(k):
            return lambda: lodetools_synthesize(second, tmp / "ours", workers=k)

        t1, tk, loadk = interleaved(both(1), both(k), setup=clean)
        rows.append(row("synthesize", f"{w}x{h} M=11 x2 clips", tk, t1, loadk, per=f"{2 * n} pairs",
                        note=f"--workers {k} vs --workers 1 (comparison column)"))
    return rows


# --------------------------------------------------------------------------- develop / align

def make_rig(tmp: Path, size, scenes: int = 1) -> Path:
    """A synthetic rig (per scene: reference, whiteboard, one capture) with both cameras calibrated."""
    from tests.support.rig import calibrated_rig

    return calibrated_rig(tmp / f"rig{scenes}", size=size, scenes=scenes, captures=1)


def _bare_develop(raw: Path, out: Path, *, flow: bool = False) -> None:
    """The bare library calls: rawpy, Menon (colour-demosaicing, float32), white balance, gamma,
    cv2.imwrite per image; with ``flow``: c2f on the reference pair and cv2.remap of every blur image."""
    import cv2
    import rawpy
    from colour.utilities import set_default_float_dtype
    from colour_demosaicing import demosaicing_CFA_Bayer_Menon2007

    from lodetools.flow import estimate_flow

    out.mkdir(parents=True, exist_ok=True)
    scene = raw / "scene01"
    pairs = [("reference", scene / "reference_blur.dng", scene / "reference_sharp.dng")]
    pairs += [(p.name[:-9], p, p.with_name(p.name.replace("_blur", "_sharp")))
              for p in sorted(scene.glob("*_blur.dng")) if not p.name.startswith(("reference", "whiteboard"))]
    set_default_float_dtype(np.float32)
    flow_field = None
    for pid, fb, fs in pairs:
        imgs = []
        for f in (fb, fs):
            with rawpy.imread(str(f)) as r:
                bayer = r.raw_image_visible.astype(np.float32) / float(r.white_level)
            rgb = demosaicing_CFA_Bayer_Menon2007(bayer, "RGGB") * np.float32([1.9, 1.0, 1.3])
            imgs.append(np.clip(rgb, 0, 1) ** np.float32(1 / 2.2))
        if flow and flow_field is None:
            flow_field = estimate_flow(imgs[1], imgs[0], "c2f")
        if flow:
            h, w = flow_field.shape[:2]
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            imgs[0] = cv2.remap(imgs[0], gx + flow_field[..., 0], gy + flow_field[..., 1], cv2.INTER_CUBIC)
        for role, img in zip(("blur", "sharp"), imgs):
            cv2.imwrite(str(out / f"{pid}_{role}.png"), (img[..., ::-1] * 255 + 0.5).astype(np.uint8))
    set_default_float_dtype(np.float64)


def _lodetools_raw(command: str, rig: Path, out: Path, workers: int = 1) -> None:
    from lodetools.pipelines.develop import DevelopParams, RawInputs
    from lodetools.runner import RunOptions

    inputs = RawInputs(rig / "raw", rig / "cal" / "blur.toml", rig / "cal" / "sharp.toml")
    opts = RunOptions(out=out, quiet=True, overwrite=True, workers=workers)
    if command == "develop":
        from lodetools.pipelines.develop import run

        run(inputs, DevelopParams(), opts)
    else:
        from lodetools.pipelines.align import AlignParams, run

        run(inputs, AlignParams(), opts)


def _bench_raw(command: str, size, tmp: Path) -> list:
    rig = make_rig(tmp, size)
    h, w = size
    _lodetools_raw(command, rig, tmp / "warm")  # imports, numba caches
    _bare_develop(rig / "raw", tmp / "warm_bare", flow=command == "align")
    ours, theirs, load = interleaved(lambda: _lodetools_raw(command, rig, tmp / "ours"),
                                     lambda: _bare_develop(rig / "raw", tmp / "bare", flow=command == "align"))
    return [row(command, f"{w}x{h}", ours / 2, theirs / 2, load, per="pair (reference + 1 capture)",
                note="whiteboard, registration, QA included in lodetools")]


def bench_develop(size, tmp: Path, workers=(1,)) -> list:
    rows = _bench_raw("develop", size, tmp)
    for k in workers:
        if k == 1:
            continue
        rig = make_rig(tmp, size, scenes=2)  # two scenes, so that two worker processes have an item each

        def both(k):
            return lambda: _lodetools_raw("develop", rig, tmp / "ours_workers", workers=k)

        t1, tk, loadk = interleaved(both(1), both(k))
        h, w = size
        rows.append(row("develop", f"{w}x{h} x2 scenes", tk / 4, t1 / 4, loadk, per="pair",
                        note=f"--workers {k} vs --workers 1 (comparison column)"))
    return rows


def bench_align(size, tmp: Path) -> list:
    return _bench_raw("align", size, tmp)


# --------------------------------------------------------------------------- lbs

def bench_lbs(size, tmp: Path, count: int = 6) -> list:
    """lbs run vs its compositing (synthesize_lbs on the same draws) + cv2.imwrite of its three images."""
    import cv2

    from lodetools.color.crf import parse_crf
    from lodetools.io.images import write_image
    from lodetools.pipelines.lbs import LbsInputs, LbsParams, run
    from lodetools.runner import RunOptions, item_rng
    from lodetools.sim.photos import linear_photo
    from lodetools.sim.voc import write_voc
    from lodetools.synth.lbs import LBSParams, linear_cutout, local_blur_sample
    from lodetools.io.voc import index_instances, load_cutout
    from lodetools.pipelines.lbs import PAD

    h, w = size
    crf = parse_crf("gamma:2.2")
    write_voc(tmp / "voc", seed=0, preset="demo", n_images=8, size=(375, 500))
    (tmp / "bg").mkdir()
    write_image(tmp / "bg" / "bg.png", crf.to_display(linear_photo("coffee", size)))
    params = LbsParams(count=count)
    refs = index_instances(tmp / "voc", min_area=1000)

    def ours():
        run(LbsInputs(voc=tmp / "voc", backgrounds=tmp / "bg"), params,
            RunOptions(out=tmp / "ours", quiet=True, overwrite=True))

    def bare():
        from lodetools.io.images import read_image

        out = tmp / "bare"
        out.mkdir(exist_ok=True)
        for i in range(count):
            rng = item_rng(0, f"train/lbs/{i:06d}")
            rng.integers(1)
            bg = read_image(tmp / "bg" / "bg.png")
            picks = rng.choice(len(refs), size=3)
            cuts = [linear_cutout(*(lambda c: (c.rgb, c.alpha))(load_cutout(tmp / "voc", refs[j], pad=PAD)), crf,
                                  scale=params.synthesis.object_scale) for j in picks]
            s = local_blur_sample(rng, crf.to_linear(bg), cuts[:2], cuts[2:], params=LBSParams(), crf=crf)
            for role, img in (("blur", s.blur), ("sharp", s.sharp), ("mask", s.mask)):
                a = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8) if img.dtype != bool else \
                    img.astype(np.uint8) * 255
                cv2.imwrite(str(out / f"{i}_{role}.png"), a[..., ::-1] if a.ndim == 3 else a)

    ours()
    bare()
    t_ours, t_bare, load = interleaved(ours, bare)
    return [row("lbs", f"{w}x{h}", t_ours / count, t_bare / count, load, per="sample",
                note="comparison: its compositing + 3 cv2.imwrite")]


# --------------------------------------------------------------------------- eval

def make_eval_dataset(root: Path, size, n: int) -> tuple[Path, Path]:
    """A paired dataset of ``n`` photographs (blur, sharp, mask) and a folder of predictions."""
    import cv2

    from lodetools.io.images import write_image
    from lodetools.io.layout import write_pair
    from lodetools.io.manifest import ManifestWriter, write_dataset_json
    from lodetools.sim.photos import photo

    h, w = size
    data, pred = root / "data", root / "pred"
    rng = np.random.default_rng(0)
    src = cv2.resize(photo("chelsea"), (w, h), interpolation=cv2.INTER_CUBIC)
    with ManifestWriter(data / "manifest.jsonl") as wr:
        for i in range(n):
            sharp = np.clip(np.roll(src, 37 * i, axis=1) + rng.normal(0, 0.01, src.shape), 0, 1).astype(np.float32)
            blur = cv2.GaussianBlur(sharp, (0, 0), 2.0)
            mask = np.zeros((h, w), bool)
            mask[h // 7:h * 5 // 8, w // 7:w * 4 // 7] = True
            wr.append(write_pair(data, "test", "s1", f"{i:04d}", {"blur": blur, "sharp": sharp, "mask": mask}))
            write_image(pred / "test" / "s1" / f"{i:04d}.png", np.clip(0.5 * (blur + sharp), 0, 1))
    write_dataset_json(data, command="bench", params={}, recipe=None, counts={"pairs": n})
    return data, pred


def handwritten_eval(data: Path, pred: Path) -> list:
    """What a user writes by hand: ``cv2.imread`` both images, scikit-image PSNR and gaussian SSIM."""
    import cv2
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    out = []
    for p in sorted((pred / "test" / "s1").glob("*.png")):
        a = cv2.imread(str(p))
        b = cv2.imread(str(data / "test" / "s1" / "sharp" / p.name))
        out.append((peak_signal_noise_ratio(b, a, data_range=255),
                    structural_similarity(b, a, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                          data_range=255, channel_axis=2)))
    return out


def lodetools_eval(data: Path, pred: Path, out: Path):
    from lodetools.pipelines.evaluate import EvalInputs, EvalParams, run
    from lodetools.runner import RunOptions

    return run(EvalInputs(pred=pred, gt=data), EvalParams(metrics=("psnr", "ssim", "psnrw", "ssimw")),
               RunOptions(out=out, quiet=True, overwrite=True))


def bench_eval(size, tmp: Path, n: int = 4) -> list:
    h, w = size
    data, pred = make_eval_dataset(tmp, size, n)
    lodetools_eval(data, pred, tmp / "warm")
    ours, theirs, load = interleaved(lambda: lodetools_eval(data, pred, tmp / "ours"),
                                     lambda: handwritten_eval(data, pred))
    return [row("eval", f"{w}x{h}", ours / n, theirs / n, load, per="image",
                note=f"psnr,ssim,psnrw,ssimw vs PSNR + SSIM only; {n} images")]


# --------------------------------------------------------------------------- deblur

def handwritten_deblur(ckpt: Path, src: Path, dst: Path) -> None:
    """What a user writes by hand: build LBAG, load the weights, one forward of the whole image, imwrite."""
    import cv2
    import torch

    from lodetools.nets.lbag import build_lbag

    model = build_lbag(**torch.load(ckpt, map_location="cpu", weights_only=True)["net_opts"])
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True)["model"])
    model.eval()
    img = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div_(255)
    with torch.inference_mode():
        y = model(x).final
    out = (y[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    cv2.imwrite(str(dst), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))


def lodetools_deblur(ckpt: Path, src: Path, out: Path, tile: int = 512):
    from lodetools.pipelines.deblur import DeblurInputs, DeblurParams, run
    from lodetools.runner import RunOptions

    return run(DeblurInputs(checkpoint=ckpt, source=src), DeblurParams(tile=tile),
               RunOptions(out=out, quiet=True, overwrite=True, device="cpu"))


def bench_deblur(size, tmp: Path, threads: int | None = None) -> list:
    """LBAG at its recipe width (MIMO-UNet+ body: base 32, 20 residual blocks), random weights."""
    import cv2
    import torch

    from lodetools.sim.photos import photo
    from lodetools.train.checkpoint import model_record, save_checkpoint
    from lodetools.train.registry import build_model

    h, w = size
    from lodetools.parallel import cpu_threads

    torch.set_num_threads(threads or cpu_threads())  # both sides alike; deblur may take fewer when busy
    torch.manual_seed(0)
    opts = {"base": 32, "num_res": 20}
    ckpt = tmp / "lbag.pt"
    save_checkpoint(ckpt, model_record("lbag", opts, build_model("lbag", opts)))
    src = tmp / "blur.png"
    img = cv2.resize(photo("chelsea"), (w, h), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(src), cv2.cvtColor((img * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR))
    rows = []
    ours, theirs, load = interleaved(lambda: lodetools_deblur(ckpt, src, tmp / "ours"),
                                     lambda: handwritten_deblur(ckpt, src, tmp / "hand.png"))
    rows.append(row("deblur", f"{w}x{h} LBAG", ours, theirs, load, per="image",
                    note=f"--tile 512 --overlap 32 vs one whole-image forward; torch {torch.get_num_threads()} threads"))
    return rows


# --------------------------------------------------------------------------- masks

def handwritten_masks(data: Path, p) -> None:
    """What a user writes by hand: Algorithm 1 with cv2 (imread, MOG2 ``apply``, OR, erode, dilate, imwrite)."""
    import cv2

    for scene in sorted((data / "train").iterdir()):
        ids = sorted(f.stem for f in (scene / "sharp").glob("*.png") if f.stem != "reference")
        imgs = {(k, i): cv2.imread(str(scene / k / f"{i}.png")) for k in ("sharp", "blur")
                for i in ids + ["reference"]}
        er = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (p.erode, p.erode))
        di = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (p.dilate, p.dilate))
        (scene / "hand").mkdir(exist_ok=True)
        for t in ids:
            fg = []
            for k in ("sharp", "blur"):
                m = cv2.createBackgroundSubtractorMOG2(p.history, p.var_threshold, p.detect_shadows)
                for _ in range(p.init_frames):
                    m.apply(imgs[k, "reference"])
                for i in ids:
                    if i != t:
                        m.apply(imgs[k, i])
                fg.append(m.apply(imgs[k, t], learningRate=0))
            mask = ((fg[0] > 1) | (fg[1] > 1)).astype(np.uint8) * 255
            cv2.imwrite(str(scene / "hand" / f"{t}.png"), cv2.dilate(cv2.erode(mask, er), di))


def lodetools_masks(data: Path, p):
    from lodetools.pipelines.masks import MasksParams, run
    from lodetools.runner import RunOptions

    return run(data, MasksParams(lbfmg=p), RunOptions(out=data, quiet=True, overwrite=True))


def bench_masks(size, tmp: Path, n_pairs: int = 5) -> list:
    """One scene of ``n_pairs`` pairs and its static pair (the synthetic masks world), masked in place."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from masks_world import make_scene, write_dataset

    from lodetools.masks.lbfmg import LBFMGParams
    from lodetools.recipe import load_recipe

    h, w = size
    p = LBFMGParams.from_dict(load_recipe("reloblur", "masks")[1])
    data = tmp / "data"
    write_dataset(data, [make_scene(np.random.default_rng(0), size, n_pairs=n_pairs, subframes=7)])
    lodetools_masks(data, p)
    ours, theirs, load = interleaved(lambda: lodetools_masks(data, p), lambda: handwritten_masks(data, p))
    return [row("masks", f"{w}x{h}", ours / n_pairs, theirs / n_pairs, load, per="pair",
                note=f"recipe reloblur, 1 scene of {n_pairs} pairs + static; cv2 script: imread, MOG2, "
                     "morphology, imwrite")]


# --------------------------------------------------------------------------- main

# --------------------------------------------------------------------------- start-up

def _cli() -> list:
    """How a user starts lodetools: the installed console script, else ``python -m lodetools``."""
    script = Path(sys.executable).with_name("lodetools")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "lodetools"]


def bench_startup(size, tmp: Path, rounds: int = 7) -> list:
    """``develop`` and ``align`` as processes on a tiny rig (one scene: reference, whiteboard, one capture),
    warm caches, against a process importing what a hand-written script needs (numpy, OpenCV, rawpy)."""
    import subprocess

    rig = make_rig(tmp, size)
    out = tmp / "out"
    bare = [sys.executable, "-c", "import numpy, cv2, rawpy"]

    def command(name):
        return _cli() + [name, "--raw-pairs", str(rig / "raw"), "--out", str(out), "--calib-blur",
                         str(rig / "cal" / "blur.toml"), "--calib-sharp", str(rig / "cal" / "sharp.toml")]

    # warm caches include Python's bytecode cache, which a user's Python writes by default
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def run(argv):
        subprocess.run(argv, check=True, capture_output=True, env=env)

    def clean():
        shutil.rmtree(out, ignore_errors=True)

    rows = []
    h, w = size
    for name in ("develop", "align"):
        clean()
        run(command(name))   # warm: numba's and Python's caches, the page cache
        ours, theirs, load = interleaved(lambda: run(command(name)), lambda: run(bare), rounds=rounds, setup=clean)
        rows.append(row(f"{name} (start-up)", f"{w}x{h}", ours, theirs, load, per="process",
                        note=f"comparison: python -c 'import numpy, cv2, rawpy'; median of {rounds}"))
    return rows


BENCHES = {
    "synthesize": (bench_synthesize, (1080, 1920)),
    "develop": (bench_develop, (1436, 2152)),
    "align": (bench_align, (1436, 2152)),
    "lbs": (bench_lbs, (720, 1280)),
    "eval": (bench_eval, (1436, 2152)),
    "deblur": (bench_deblur, (720, 1280)),
    "masks": (bench_masks, (1436, 2152)),
    "startup": (bench_startup, (64, 96)),
}


def print_table(rows, file=sys.stdout):
    print(f"{'command':<18} {'size':<22} {'lodetools':>10} {'comparison':>11} {'ratio':>6} {'load':>5}  per / note",
          file=file)
    for r in rows:
        print(f"{r['command']:<18} {r['size']:<22} {r['ours']:>9.2f}s {r['theirs']:>10.2f}s {r['ratio']:>6.2f} "
              f"{r['load']:>5.1f}  {r['per']}; {r['note']}", file=file)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("commands", nargs="*", help=f"some of {', '.join(BENCHES)} (default: all)")
    ap.add_argument("--workers", type=int, default=1, help="also time synthesize and develop with this many workers")
    ap.add_argument("--only", default="", help="comma-separated subset, e.g. --only eval,deblur")
    args = ap.parse_args(argv)
    names = args.commands + [n for n in args.only.split(",") if n] or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown command(s) {', '.join(unknown)}; known: {', '.join(BENCHES)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="lodetools_e2e_") as d:
        for name in names:
            fn, size = BENCHES[name]
            tmp = Path(d) / name
            tmp.mkdir()
            kw = {"workers": (1, args.workers)} if name in ("synthesize", "develop") and args.workers > 1 else {}
            rows += fn(size, tmp, **kw)
            print_table(rows[-1:])
    print()
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; median of {ROUNDS} interleaved rounds")
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
