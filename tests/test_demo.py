"""``lodetools demo --quick`` end to end, and the report in headless Chromium."""

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from lodetools.io.manifest import read_manifest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    p = subprocess.run([sys.executable, "-m", "lodetools", "demo", "--out", str(out), "--quick"],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 0, p.stderr[-3000:]
    return out


def test_every_stage_wrote_its_outputs(demo_dir):
    doc = json.loads((demo_dir / "demo.json").read_text())
    names = [s["name"] for s in doc["stages"]]
    for stage in ("sim", "synthesize", "stats blur-ratio", "calibrate color", "align", "masks", "lbs",
                  "train+deblur+eval lbag", "train+deblur+eval bladenet", "train+deblur+eval simplenet",
                  "train+deblur+eval aspdc", "report"):
        assert stage in names
    for ds in ("lode", "reloblur", "lbs", "lbs-val"):
        recs = read_manifest(demo_dir / ds)
        assert recs, ds
    assert (demo_dir / "stats" / "blur_ratio.csv").is_file()
    assert (demo_dir / "calibration" / "blur.toml").is_file()
    masks = [r for r in read_manifest(demo_dir / "reloblur").values() if "mask" in r["files"]]
    assert masks
    for net in ("lbag", "bladenet", "simplenet", "aspdc"):
        run = demo_dir / "runs" / net
        assert (run / "model.pt").is_file() and (run / "train_log.csv").is_file()
        assert json.loads((run / "pred" / "summary.json").read_text())["count"] >= 1
    assert (demo_dir / "report.html").is_file()


def test_quality_figures_within_the_issues_bounds(demo_dir):
    doc = json.loads((demo_dir / "demo.json").read_text())
    bounds = {b["name"]: b for b in doc["bounds"]}
    for fig in ("synthesize.max_error_gray_levels", "calibrate.nonuniformity_after", "align.static_psnr_after",
                "align.static_psnr_gain", "masks.mean_iou", "masks.fraction_error_pp", "lbs.mask_is_union"):
        assert fig in bounds, f"{fig} was not measured"
    for b in bounds.values():  # each bound states its operator and value; the verdict follows from them
        assert b["value"] == doc["figures"][b["name"]] and b["op"] in ("<=", ">=", "==")
    failed = {k: b["value"] for k, b in bounds.items() if not b["met"]}
    assert not failed, failed


def test_report_reads_bounds_and_conventions_from_the_files(tmp_path):
    """The report shows what demo.json and summary.json state, not constants of the pipelines."""
    from lodetools.report import build_report
    from lodetools.sim.checks import check_bounds

    bounds = check_bounds({"masks.mean_iou": 0.5, "align.epe_px": 0.1},
                          {"masks.mean_iou": (">=", 0.75), "align.epe_px": ("<=", 0.125)})
    assert [b["met"] for b in bounds] == [False, True]
    (tmp_path / "demo.json").write_text(json.dumps({"preset": "quick", "seed": 0, "stages": [],
                                                    "figures": {}, "bounds": bounds}))
    pred = tmp_path / "runs" / "x" / "pred"
    pred.mkdir(parents=True)
    (pred / "summary.json").write_text(json.dumps({"summary": {"psnr": {"mean": 30.0}}, "count": 1,
                                                   "conventions": {"psnr": "a stated convention"}}))
    text = build_report(tmp_path)
    assert "&lt;= 0.125" in text and "&gt;= 0.75" in text and "NOT met" in text
    assert "a stated convention" in text


class _Checker(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.images, self.errors = [], 0, []

    void = {"meta", "img", "br", "hr", "link", "input"}

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images += 1
            src = dict(attrs).get("src", "")
            if not src.startswith("data:image/png;base64,"):
                self.errors.append(f"image not embedded: {src[:40]}")
        if tag not in self.void:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}>")
        else:
            self.stack.pop()


def test_report_is_wellformed_and_self_contained(demo_dir):
    text = (demo_dir / "report.html").read_text()
    c = _Checker()
    c.feed(text)
    assert not c.errors and not c.stack
    assert c.images >= 10
    for section in ("Stages", "Accuracy against the synthetic world", "Datasets: sample pairs",
                    "Geometric alignment", "Blurred-area ratio", "Training", "Deblurring metrics"):
        assert section in text, section
    assert "http://" not in text and "https://" not in text  # nothing fetched from the network


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None and not os.environ.get("CI"), reason="no chromium here (CI installs it)")
def test_report_renders_in_headless_chromium(demo_dir, tmp_path):
    exe = _chromium()
    assert exe, "chromium is not installed (.ci/run installs Debian's chromium)"
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars"]
    url = (demo_dir / "report.html").resolve().as_uri()
    p = subprocess.run([exe, *flags, "--enable-logging=stderr", "--v=0", "--window-size=1200,2400",
                        f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert shot.is_file(), p.stderr[-2000:]
    console_errors = [l for l in p.stderr.splitlines() if "CONSOLE" in l and ("ERROR" in l or "Uncaught" in l)]
    assert not console_errors, console_errors
    from lodetools.io.images import read_image

    img = read_image(shot)
    assert img.std() > 0.05  # not a blank page
    assert (img.mean(axis=2) < 0.5).mean() > 0.01  # some dark text / pictures
