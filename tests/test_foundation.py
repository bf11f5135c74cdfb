"""Foundation: image I/O conversions, safe paths, manifest, recipes, CLI error handling."""

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from lodetools.errors import EXIT_BUG, EXIT_USER, BadConfig, BadInput, MissingInput
from lodetools.io.images import float_to_uint, read_image, read_image_native, read_mask, write_image
from lodetools.io.manifest import ManifestWriter, read_manifest
from lodetools.io.paths import confined, safe_name
from lodetools.recipe import resolve_params

ROOT = Path(__file__).resolve().parent.parent


def cli(*args):
    return subprocess.run([sys.executable, "-m", "lodetools", *args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.mark.parametrize("ext,depth", [(".png", 8), (".png", 16), (".tif", 16), (".tif", 8)])
def test_image_round_trip_is_exact_after_quantisation(tmp_path, ext, depth):
    rng = np.random.default_rng(0)
    img = rng.random((9, 13, 3), dtype=np.float32)
    write_image(tmp_path / f"a{ext}", img, bit_depth=depth)
    native = read_image_native(tmp_path / f"a{ext}")
    assert native.dtype == (np.uint8 if depth == 8 else np.uint16)
    top = 2 ** depth - 1
    np.testing.assert_array_equal(native, np.floor(img.astype(np.float64) * top + 0.5).astype(native.dtype))
    back = read_image(tmp_path / f"a{ext}")
    assert back.dtype == np.float32 and np.abs(back - img).max() <= 0.5 / top + 1e-6


def test_rgb_order_and_jpeg(tmp_path):
    img = np.zeros((16, 16, 3), np.float32)
    img[..., 0] = 1.0  # pure red
    write_image(tmp_path / "r.jpg", img)
    back = read_image(tmp_path / "r.jpg")
    assert back[..., 0].mean() > 0.9 and back[..., 2].mean() < 0.1


def test_quantisation_rounds_half_up_and_clips():
    x = np.array([-0.2, 0.0, 0.5 / 255, 1.5 / 255, 1.0, 1.3])
    np.testing.assert_array_equal(float_to_uint(x), [0, 0, 1, 2, 255, 255])


def test_masks_written_0_255(tmp_path):
    m = np.zeros((5, 6), bool)
    m[1:3, 2:4] = True
    write_image(tmp_path / "m.png", m)
    assert set(np.unique(read_image_native(tmp_path / "m.png"))) == {0, 255}
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), m)


def test_corrupt_and_missing_images(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(BadInput, match="cannot decode"):
        read_image(tmp_path / "bad.png")
    with pytest.raises(MissingInput):
        read_image(tmp_path / "none.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(BadInput):
        read_image(tmp_path / "empty.png")


@pytest.mark.parametrize("name,expected", [("../x", "___x"), ("a/b", "a_b"), ("..", None), ("/etc/passwd", "etc_passwd"),
                                           ("ok-1.2", "ok-1.2"), (".hidden", "_hidden"), ("", None)])
def test_safe_name(name, expected):
    if expected is None:
        with pytest.raises(BadInput):
            safe_name(name)
    else:
        assert safe_name(name) == expected
        assert "/" not in safe_name(name) and safe_name(name) not in (".", "..")


def test_confined_refuses_escape(tmp_path):
    assert confined(tmp_path, "a", "b.png") == tmp_path / "a" / "b.png"
    with pytest.raises(BadInput, match="escapes"):
        confined(tmp_path, "..", "x.png")
    with pytest.raises(BadInput):
        confined(tmp_path, "/etc/passwd")


def test_manifest_tolerates_truncated_last_line(tmp_path):
    with ManifestWriter(tmp_path / "manifest.jsonl") as w:
        w.append({"key": "a", "v": 1})
        w.append({"key": "b", "v": 2})
    p = tmp_path / "manifest.jsonl"
    p.write_bytes(p.read_bytes()[:-7])
    assert list(read_manifest(tmp_path)) == ["a"]
    with ManifestWriter(p) as w:  # appending after a truncated line starts a new line
        w.append({"key": "c", "v": 3})
    assert list(read_manifest(tmp_path)) == ["a", "c"]


def _recipe_command():
    @click.command("demo-cmd")
    @click.option("--recipe")
    @click.option("--alpha", type=float, default=1.0)
    @click.option("--name", default="x")
    @click.pass_context
    def cmd(ctx, recipe, alpha, name):
        params, path = resolve_params(ctx)
        click.echo(json.dumps(params))

    return cmd


def test_recipe_values_and_flag_override(tmp_path):
    r = tmp_path / "r.toml"
    r.write_text('description = "doc"\n[demo-cmd]\nalpha = 0.25\nname = "fromrecipe"\n')
    res = CliRunner().invoke(_recipe_command(), ["--recipe", str(r), "--name", "flag"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {"recipe": str(r), "alpha": 0.25, "name": "flag"}


def test_recipe_unknown_key_and_bad_value(tmp_path):
    r = tmp_path / "r.toml"
    r.write_text("alpah = 0.25\n")
    res = CliRunner().invoke(_recipe_command(), ["--recipe", str(r)])
    assert isinstance(res.exception, BadConfig) and "unknown recipe key 'alpah'" in str(res.exception)
    r.write_text('alpha = "abc"\n')
    res = CliRunner().invoke(_recipe_command(), ["--recipe", str(r)])
    assert isinstance(res.exception, BadConfig) and "bad recipe value alpha" in str(res.exception)
    r.write_text("alpha = [\n")
    res = CliRunner().invoke(_recipe_command(), ["--recipe", str(r)])
    assert isinstance(res.exception, BadConfig) and "not valid TOML" in str(res.exception)


def test_cli_one_line_error_and_exit_codes(tmp_path):
    p = cli("verify", str(tmp_path / "missing"))
    assert p.returncode == EXIT_USER
    assert p.stderr.strip() == f"error: not a lodetools dataset (no dataset.json) ({tmp_path / 'missing'})"
    p = cli("--debug", "verify", str(tmp_path / "missing"))
    assert p.returncode == EXIT_USER and "Traceback" in p.stderr
    p = cli("no-such-command")
    assert p.returncode == EXIT_USER and len(p.stderr.strip().splitlines()) == 1


def test_internal_bug_exit_code_differs(tmp_path):
    (tmp_path / "dataset.json").write_text("{}")
    (tmp_path / "manifest.jsonl").write_text('{"key": "a", "files": 5}\n')  # not a mapping: a bug path
    p = cli("verify", str(tmp_path))
    assert p.returncode == EXIT_BUG and "internal error" in p.stderr and "Traceback" not in p.stderr


def test_python_m_and_help():
    p = cli("--help")
    assert p.returncode == 0 and "verify" in p.stdout


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    from lodetools.io.atomic import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary file left


def test_params_from_click_types_nesting_and_overrides():
    from dataclasses import dataclass
    from typing import Literal

    from lodetools.commands._options import params_from_click

    @dataclass(frozen=True)
    class Inner:
        alpha: float = 1.0

    @dataclass(frozen=True)
    class P:
        inner: Inner = Inner()
        depth: Literal[8, 16] = 8
        paths: tuple[Path, ...] = ()
        size: tuple[int, int] | None = None
        flag: bool = True

    p = params_from_click(P, {"depth": "16", "paths": ["a", "b"], "alpha": "0.5", "other": 3},
                          size=("3", "4"), flag=False)
    assert p == P(Inner(0.5), 16, (Path("a"), Path("b")), (3, 4), False)
    assert params_from_click(P, {}) == P()
    with pytest.raises(BadConfig, match="bad depth '12'"):
        params_from_click(P, {"depth": "12"})
    with pytest.raises(BadConfig, match="bad alpha"):
        params_from_click(P, {"alpha": "x"})


def _fields(cls) -> set:
    import dataclasses
    import typing

    names = set()
    for f, hint in typing.get_type_hints(cls).items():
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            names |= _fields(hint)
        names.add(f)
    return names


@pytest.mark.parametrize("command,classes,special", [
    ("synthesize", ["synthesize.SynthesizeParams"], {"videos"}),
    ("lbs", ["lbs.LbsInputs", "lbs.LbsParams"], set()),
    ("masks", ["masks.MasksParams"], {"data", "mixtures"}),
    ("develop", ["develop.RawInputs", "develop.DevelopParams"],
     {"no_color_matrix", "no_refining_step", "no_color_correction"}),
    ("align", ["develop.RawInputs", "align.AlignParams"],
     {"no_color_matrix", "no_refining_step", "no_color_correction", "no_densify", "device"}),
    ("stats_blur_ratio", ["blur_ratio.BlurRatioInputs", "blur_ratio.BlurRatioParams"], set()),
])
def test_every_option_of_a_command_reaches_its_pipeline(command, classes, special):
    """No option is silently dropped: each maps onto a typed field, a run option, or a named conversion."""
    import importlib

    cmd = importlib.import_module(f"lodetools.commands.{command}").command
    known = set(special) | {"out", "recipe", "seed", "workers", "shard", "on_error", "overwrite", "quiet", "png_compression"}
    for spec in classes:
        mod, cls = spec.rsplit(".", 1)
        known |= _fields(getattr(importlib.import_module(f"lodetools.pipelines.{mod}"), cls))
    assert {p.name for p in cmd.params} - known == set()
