"""A self-contained HTML report of a run folder (images and plots embedded).

:func:`build_report` looks at what a folder holds and writes a section for
each thing it finds, so it works on a whole ``lodetools demo`` folder as well
as on a single dataset:

- ``demo.json``: stage timings and the quality figures with their bounds
  (each bound's operator, value and verdict as the file states them)
- every paired dataset (a folder with ``dataset.json`` and pairs): sample
  pairs with the blur mask overlaid
- ``qa.jsonl`` of ``align``: the per-scene table and the static reference
  pair's difference image
- ``blur_ratio.csv`` of ``stats blur-ratio``: the curves (LODE Figure 3 style)
- ``runs/<net>/train_log.csv`` and ``val_log.csv``: training curves
- ``runs/<net>/pred/summary.json`` of ``eval``: the metrics table, and one
  test image deblurred by every network (each metric's convention as
  ``summary.json`` states it)

The report reads files only: it imports no pipeline.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path

import numpy as np

from lodetools import __version__
from lodetools.io.images import float_to_uint, read_image, read_mask

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right;font-size:.92em}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.ok{color:#137333;font-weight:600}.bad{color:#b3261e;font-weight:600}
figure{display:inline-block;margin:.3em;text-align:center;vertical-align:top}
figcaption{font-size:.8em;color:#555}img{image-rendering:pixelated;border:1px solid #ccc}
.muted{color:#777;font-size:.9em}
"""


def _thumb(img: np.ndarray, caption: str, width: int | None = None) -> str:
    """An image shown at least 240 px wide (small test images are enlarged, pixelated)."""
    width = width or max(240, min(480, img.shape[1]))
    return _img(png_data_uri(img), caption, width)


def png_data_uri(img: np.ndarray) -> str:
    """A data URI of an image array (float in [0, 1], uint8, or bool) encoded as PNG."""
    import cv2

    a = np.asarray(img)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = float_to_uint(a, 8)
    if a.ndim == 3:
        a = a[:, :, ::-1]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(a))
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def figure_data_uri(fig) -> str:
    """A data URI of a matplotlib figure (PNG); the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def overlay_mask(img: np.ndarray, mask: np.ndarray, colour=(1.0, 0.15, 0.1), alpha=0.45) -> np.ndarray:
    """``img`` with ``mask`` tinted in ``colour`` and its outline drawn."""
    import cv2

    out = img.astype(np.float32).copy()
    m = mask.astype(bool)
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(colour, np.float32)
    edge = cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    out[edge] = colour
    return out


def _img(uri: str, caption: str, width: int | None = None) -> str:
    w = f' width="{width}"' if width else ""
    return (f'<figure><img src="{uri}"{w} alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table(header, rows) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _fmt(v, digits=4) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "inf" if v == float("inf") else f"{v:.{digits}g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x, digits) for x in v)
    return html.escape(str(v))


def _find_datasets(root: Path) -> list[Path]:
    found = []
    for p in sorted(root.rglob("dataset.json")):
        d = p.parent
        if (d / "manifest.jsonl").is_file() and any(d.glob("*/*/sharp")):
            found.append(d)
    return found


def section_demo(root: Path) -> str:
    p = root / "demo.json"
    if not p.is_file():
        return ""
    doc = json.loads(p.read_text())
    rows = [[html.escape(s["name"]), f"{s['seconds']:.1f}"] for s in doc.get("stages", [])]
    out = [f"<h2>Stages</h2><p>Preset <b>{html.escape(str(doc.get('preset')))}</b>, seed {doc.get('seed')}, "
           f"total {doc.get('total_seconds', 0):.0f} s.</p>", _table(["stage", "seconds"], rows)]
    qrows = []
    for b in doc.get("bounds", []):  # each bound as demo.json states it: name, value, op, bound, met
        cls = "ok" if b.get("met") else "bad"
        qrows.append([html.escape(str(b.get("name"))), _fmt(b.get("value")),
                      f"{html.escape(str(b.get('op')))} {_fmt(b.get('bound'))}",
                      f'<span class="{cls}">{"met" if b.get("met") else "NOT met"}</span>'])
    if qrows:
        out.append("<h2>Accuracy against the synthetic world's truth</h2>"
                   + _table(["figure", "value", "bound", ""], qrows))
    return "".join(out)


def section_datasets(root: Path, n: int = 3) -> str:
    from lodetools.io.layout import read_pairs
    from lodetools.io.manifest import read_dataset_json

    parts = []
    for d in _find_datasets(root):
        try:
            doc = read_dataset_json(d)
            pairs = read_pairs(d, split=None)
        except Exception:
            continue
        rel = d.relative_to(root).as_posix() if d != root else d.name
        splits: dict = {}
        for p in pairs:
            splits[p.split] = splits.get(p.split, 0) + 1
        parts.append(f"<h3>{html.escape(rel)} <span class='muted'>({html.escape(str(doc.get('command')))}, "
                     f"{', '.join(f'{v} {k}' for k, v in sorted(splits.items()))})</span></h3>")
        moving = [p for p in pairs if not p.record.get("static")]
        for p in (moving or pairs)[:n]:
            blur, sharp = read_image(p.blur), read_image(p.sharp)
            figs = [_thumb(blur, f"{p.key} blurred"), _thumb(sharp, "sharp")]
            if p.mask is not None and p.mask.is_file():
                m = read_mask(p.mask)
                figs.append(_thumb(overlay_mask(blur, m), f"mask ({100 * m.mean():.1f} % blurred)"))
            parts.append("<div>" + "".join(figs) + "</div>")
    return "<h2>Datasets: sample pairs</h2>" + "".join(parts) if parts else ""


def section_align(root: Path) -> str:
    from lodetools.io.layout import read_pairs

    parts = []
    for qa in sorted(root.rglob("qa.jsonl")):
        recs = [json.loads(l) for l in qa.read_text().splitlines() if l.strip()]
        if not recs:
            continue
        flat = [_flatten(r) for r in recs]
        keys = [k for k in _QA_COLUMNS if any(k in f for f in flat)]
        if len(keys) < 2:  # not align's QA: show every scalar
            keys = list(dict.fromkeys(k for f in flat for k, v in f.items() if isinstance(v, (int, float, str))))
        rows = [[_fmt(f.get(k)) for k in keys] for f in flat]
        parts.append(f"<h3>{html.escape(qa.parent.relative_to(root).as_posix() or qa.parent.name)}</h3>"
                     + _table([_QA_COLUMNS.get(k, k) for k in keys], rows))
        try:
            statics = [p for p in read_pairs(qa.parent, split=None) if p.record.get("static")]
        except Exception:
            statics = []
        for p in statics[:2]:
            blur, sharp = read_image(p.blur), read_image(p.sharp)
            diff = np.clip(np.abs(blur - sharp) * 4, 0, 1)
            figs = [_thumb(sharp, f"{p.scene} static sharp", 240), _thumb(blur, "static blur, aligned", 240),
                    _thumb(diff, "|difference| x4 after alignment", 240)]
            unaligned = p.record.get("files", {}).get("blur_unaligned")
            if unaligned and (qa.parent / unaligned).is_file():
                ub = read_image(qa.parent / unaligned)
                figs.insert(2, _thumb(np.clip(np.abs(ub - sharp) * 4, 0, 1), "|difference| x4 before alignment",
                                      240))
            parts.append("<div>" + "".join(figs) + "</div>")
    return "<h2>Geometric alignment (per scene)</h2>" + "".join(parts) if parts else ""


#: columns of align's per-scene QA shown in the table, in order, with their headers
_QA_COLUMNS = {"scene": "scene", "psnr_before": "PSNR before", "psnr_after": "PSNR after",
               "ssim_before": "SSIM before", "ssim_after": "SSIM after", "delta_l_before": "ΔL before",
               "delta_l_after": "ΔL after", "develop.delta_l_after.smoothed": "ΔL after (denoised)",
               "flow.mean": "flow mean px", "flow.p95": "flow p95 px", "flow.max": "flow max px",
               "develop.beta": "beta (R, G, B)"}


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def section_blur_ratio(root: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = []
    for p in sorted(root.rglob("blur_ratio.csv")):
        with open(p) as f:
            rows = list(csv.reader(f))
        if len(rows) < 2:
            continue
        header, data = rows[0], np.array([[float(x) for x in r] for r in rows[1:]])
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for j, name in enumerate(header[1:], 1):
            ax.plot(data[:, 0], data[:, j], label=name)
        ax.set_xlabel("optical-flow magnitude threshold (px)")
        ax.set_ylabel("blurred-area ratio")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=.3)
        ax.legend()
        ax.set_title("Blurred-area ratio (LODE Figure 3 style)")
        parts.append(_img(figure_data_uri(fig), p.relative_to(root).as_posix()))
    return "<h2>Blurred-area ratio</h2>" + "".join(parts) if parts else ""


def _read_csv(p: Path) -> list[dict]:
    with open(p) as f:
        return list(csv.DictReader(f))


def section_training(root: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted(p.parent for p in root.rglob("train_log.csv"))
    if not runs:
        return ""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for run in runs:
        rows = _read_csv(run / "train_log.csv")
        it = [int(r["iteration"]) for r in rows]
        loss = [float(r["loss"]) for r in rows]
        if it:
            axes[0].plot(it, loss, label=run.name, alpha=.85)
        if (run / "val_log.csv").is_file():
            v = _read_csv(run / "val_log.csv")
            axes[1].plot([int(r["iteration"]) for r in v], [float(r["psnr"]) for r in v], "o-", label=run.name)
    axes[0].set_title("training loss (each network's own loss)")
    axes[1].set_title("validation PSNR (dB)")
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.grid(alpha=.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return "<h2>Training</h2>" + _img(figure_data_uri(fig), "training curves")


def below_input_notes(root: Path, metric: str = "psnrw") -> dict:
    """One plain line per network of ``demo.json`` that scores below the blurred input.

    A deblurring network should make the blurred regions closer to the sharp
    image than the blurred input is; the figures ``<net>.<metric>`` and
    ``input.<metric>`` of ``demo.json`` say whether it did. ``training`` of
    ``demo.json`` (iterations per network), when present, is named in the line.

    Returns
    -------
    dict
        network name -> note (only the networks below the input).
    """
    p = root / "demo.json"
    if not p.is_file():
        return {}
    doc = json.loads(p.read_text())
    figures, training = doc.get("figures") or {}, doc.get("training") or {}
    ref = figures.get(f"input.{metric}")
    if not isinstance(ref, (int, float)):
        return {}
    notes = {}
    for key, value in figures.items():
        net, _, m = key.partition(".")
        if m != metric or net == "input" or not isinstance(value, (int, float)) or value >= ref:
            continue
        iters = (training.get(net) or {}).get("iters")
        budget = f" ({iters} training iterations)" if iters else ""
        notes[net] = (f"Below the blurred input on the blurred regions ({metric} {value:.2f} vs {ref:.2f} dB): "
                      f"the demo's time budget{budget} is too short for this network to learn to deblur.")
    return notes


def section_metrics(root: Path) -> str:
    sums = sorted(root.rglob("summary.json"))
    rows, names, preds, conventions = [], [], [], {}
    for s in sums:
        doc = json.loads(s.read_text())
        if "summary" not in doc:
            continue
        run = s.parent.parent.name if s.parent.name == "pred" else s.parent.name
        for m in doc["summary"]:
            if m not in names:
                names.append(m)
        rows.append((run, doc))
        preds.append((run, s.parent))
        conventions.update(doc.get("conventions") or {})
    if not rows:
        return ""
    notes = below_input_notes(root)
    table = _table(["network", "images", *names, *(["note"] if notes else [])],
                   [[html.escape(r), d.get("count"), *[_fmt((d["summary"].get(m) or {}).get("mean")) for m in names],
                     *([html.escape(notes.get(r, ""))] if notes else [])]
                    for r, d in rows])
    conv = "".join(f"<li><b>{html.escape(m)}</b>: {html.escape(str(conventions[m]))}</li>"
                   for m in names if m in conventions)
    out = f"<h2>Deblurring metrics</h2>{table}<ul class='muted'>{conv}</ul>"
    # one test image through every network
    try:
        import csv as _csv

        with open(preds[0][1] / "metrics.csv") as f:
            key = next(_csv.DictReader(f))["key"]
    except Exception:
        return out
    split, scene, iid = key.split("/")
    figs = []
    for run, d in preds:
        cands = list(d.glob(f"{split}/{scene}/{iid}.*")) or list(d.glob(f"**/{iid}.png"))
        if cands:
            figs.append(_thumb(read_image(cands[0]), run))
    return out + f"<p>Test image {html.escape(key)} as each network restores it:</p><div>{''.join(figs)}</div>"


def build_report(root) -> str:
    """The HTML text of the report of run folder ``root``."""
    import datetime as dt

    root = Path(root)
    body = "".join(f(root) for f in (section_demo, section_datasets, section_align, section_blur_ratio,
                                     section_training, section_metrics))
    if not body:
        body = "<p>Nothing to report: no demo.json, dataset, qa.jsonl, blur_ratio.csv or training run found.</p>"
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>lodetools report: "
            f"{html.escape(root.name)}</title><style>{_CSS}</style></head><body><h1>lodetools report</h1>"
            f"<p class='muted'>{html.escape(str(root))} &middot; lodetools {__version__} &middot; {now}</p>"
            f"{body}</body></html>\n")
