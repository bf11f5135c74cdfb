"""The built wheel carries its recipes and calibration files (package data).

Builds the wheel from a copy of the source tree (offline: ``pip wheel
--no-build-isolation`` with the installed setuptools), installs it into a
fresh virtual environment, and runs ``lodetools synthesize --recipe lode``
there on two tiny clips: the recipe and a shipped calibration must be found
inside the installed package, not in this checkout.
"""

import importlib.util
import json
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("lodetools", "setup.cfg", "pyproject.toml", "README.md")

# runs inside the fresh environment: the installed package must be the wheel's
DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path

    import lodetools
    from lodetools.cli import main
    from lodetools.io.calibration import read_calibration
    from lodetools.recipe import find_recipe

    site = Path(sys.argv[1]).resolve()
    assert Path(lodetools.__file__).resolve().is_relative_to(site), lodetools.__file__
    for name in ("lode", "lbag"):
        assert Path(str(find_recipe(name))).resolve().is_relative_to(site), find_recipe(name)
    assert read_calibration("sim-blur").shape == (240, 320)
    sys.argv = ["lodetools", *sys.argv[2:]]
    main()
""")


def _copy_sources(dst: Path) -> None:
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))
        else:
            shutil.copy2(src, dst / name)


def _tiny_clips(root: Path) -> None:
    import cv2

    rng = np.random.default_rng(0)
    for c in range(2):
        d = root / f"clip{c}"
        d.mkdir(parents=True)
        for i in range(9):
            cv2.imwrite(str(d / f"{i:04d}.png"), rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))


def test_wheel_ships_recipes_and_calibration(tmp_path):
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 71 and importlib.util.find_spec("wheel") is None:
        pytest.skip("building a wheel offline needs setuptools >= 71 or the wheel package")
    src, dist = tmp_path / "src", tmp_path / "dist"
    src.mkdir()
    _copy_sources(src)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(dist), str(src)], capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("lodetools-*.whl")

    # a fresh environment holding only the wheel; the dependencies come from this
    # environment's site-packages through PYTHONPATH, where no .pth file runs, so
    # the editable install of this checkout is invisible there
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    vpy = venv / "bin" / "python"
    site = Path(subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                           "--target", str(site), str(wheel)], capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr
    assert (site / "lodetools" / "recipes" / "lode.toml").is_file()

    _tiny_clips(tmp_path / "clips")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": sysconfig.get_paths()["purelib"], "HOME": str(tmp_path),
           "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    # --bit-depth 16 (a flag over the recipe's 8) takes the numpy path: the fused 8-bit
    # kernel would spend ~10 s compiling in the fresh environment's empty numba cache
    run = subprocess.run([str(vpy), "-c", DRIVER, str(site), "synthesize", "--recipe", "lode",
                          "--videos", "clips", "--out", "out", "--quiet", "--bit-depth", "16"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    info = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert Path(info["recipe"]).resolve().is_relative_to(site.resolve())
    params = info["parameters"]
    assert params["windows_per_clip"] == 1 and params["crf"] == "gamma:2.2"  # from the recipe
    assert str(params["bit_depth"]) == "16"  # the flag overrides it
