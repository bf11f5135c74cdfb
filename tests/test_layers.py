"""Imports only point down the layers the README's Architecture section draws.

Every module of the package is parsed (``ast``; imports inside functions and
``if TYPE_CHECKING`` blocks count too) and each import of another ``lodetools``
unit is checked against :data:`ALLOWED`, the picture as data::

    cli -> commands -> pipelines -> {report, sim, train} -> {runner, recipe}
        -> algorithms {color, flow, synth, masks, metrics, nets} -> io
        -> (errors, resources, parallel, device, the package root's __version__)

A unit is a subpackage (``io``, ``color``, ...) or a top-level module
(``recipe``, ``runner``, ...); imports inside a unit are free.
"""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "lodetools"

#: the bottom: units that import no other unit (the package root holds ``__version__``;
#: errors the LodeError kinds; resources the package-data finder; parallel the CPU thread
#: policy; device the torch device policy)
BASE = {"lodetools", "errors", "resources", "parallel", "device"}
IO = BASE | {"io"}
#: the algorithms take arrays and know nothing about files beyond io's readers
ALGORITHMS = {"color", "flow", "synth", "masks", "metrics", "nets"}
#: what every layer above the algorithms may use
SUPPORT = IO | ALGORITHMS | {"runner", "recipe"}

#: unit -> the units it may import (besides itself)
ALLOWED = {
    **{unit: set() for unit in BASE},
    # files and formats
    "io": BASE,
    # algorithms: numpy/torch in and out; among themselves only these edges
    "color": IO,
    "flow": IO,
    "metrics": IO,
    "nets": IO,
    "masks": IO | {"flow"},
    "synth": IO | {"color"},
    # the work runner (resume, workers, shards, seeds) and the TOML recipes
    "runner": IO,
    "recipe": BASE,
    # training (networks, losses, loops); the synthetic capture world (writes its
    # parts through the runner); the HTML report (reads files only)
    "train": IO | {"nets", "metrics"},
    "sim": IO | {"color", "synth", "runner"},
    "report": IO,
    # one module per command: walk inputs, call algorithms, write outputs
    "pipelines": SUPPORT | {"train", "sim", "report"},
    # thin click commands: map options onto a pipeline's parameters
    "commands": SUPPORT | {"train", "sim", "report", "pipelines"},
    "cli": BASE | {"commands"},
    "__main__": {"cli"},
}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "lodetools"


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(module: str, path: Path):
    """(line, imported module) for every lodetools import in the file, relative ones resolved."""
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            if target == "lodetools":  # `from lodetools import io` names units
                for alias in node.names:
                    if (PKG / alias.name).is_dir() or (PKG / f"{alias.name}.py").is_file():
                        yield node.lineno, f"lodetools.{alias.name}"


def _edges():
    for module, path in _modules():
        src = _unit(module) if "." in module else "lodetools"
        if module.count(".") == 1 and not (PKG / module.split(".")[1]).is_dir():
            src = module.split(".")[1]  # a top-level module (recipe.py, ...) is its own unit
        for line, target in _imports(module, path):
            if target == "lodetools" or target.startswith("lodetools."):
                dst = _unit(target)
                if dst != src:
                    yield module, src, dst, line, path


def test_every_unit_is_placed():
    units = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    units |= {p.stem for p in PKG.glob("*.py") if p.stem != "__init__"}
    assert units - set(ALLOWED) == set(), "a new unit: give it a row in ALLOWED (and the README)"


def test_imports_only_point_down():
    bad = []
    for module, src, dst, line, path in _edges():
        if dst not in ALLOWED.get(src, set()):
            bad.append(f"{path.relative_to(PKG.parent)}:{line}: {src} imports {dst}")
    assert not bad, "imports running up a layer:\n" + "\n".join(bad)


def test_io_imports_no_algorithm():
    """io reads and writes files; nothing in it may depend on an algorithm package."""
    for module, src, dst, line, path in _edges():
        if src == "io":
            assert dst in BASE, f"{path}:{line}: io imports {dst}"


@pytest.mark.parametrize("src,dst", [("io", "color"), ("synth", "sim"), ("color", "synth"),
                                     ("pipelines", "commands"), ("report", "pipelines")])
def test_the_rules_forbid_the_known_upward_edges(src, dst):
    """The picture, checked: the edges the README forbids are not allowed here."""
    assert dst not in ALLOWED[src]
