"""Importing any lodetools module is cheap and does nothing else.

pytest imports every module of the package to collect the docstrings'
examples (``--doctest-modules``), and ``lodetools --help`` should not pay for
torch: so no module may print, write files or fail on import.
"""

import json
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "lodetools"

SCRIPT = """
import importlib, json, sys
for m in sys.argv[1:]:
    importlib.import_module(m)
print(json.dumps({"torch": "torch" in sys.modules}))
"""


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts)


def test_every_module_imports_without_side_effects(tmp_path):
    mods = [m for m in _modules() if m != "lodetools.__main__"]
    run = subprocess.run([sys.executable, "-c", SCRIPT, *mods], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1, f"a module printed on import: {run.stdout!r}"
    assert run.stderr == "", f"a module wrote to stderr on import: {run.stderr}"
    assert list(tmp_path.iterdir()) == [], "a module wrote files on import"


def test_cli_help_does_not_import_torch(tmp_path):
    run = subprocess.run([sys.executable, "-c", SCRIPT, "lodetools.cli", "lodetools.recipe",
                          "lodetools.io.calibration", "lodetools.color.crf"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["torch"] is False


def test_demosaic_keeps_numpy_print_options(tmp_path):
    """colour-science switches numpy to its 1.13 print mode on import; lodetools keeps the user's."""
    code = ("import numpy as np; from lodetools.color.isp import demosaic; "
            "demosaic(np.full((8, 8), 0.5, np.float32), 'RGGB'); print(np.get_printoptions()['legacy'])")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"
