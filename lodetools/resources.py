"""Files shipped inside the package (package data): recipes and calibration files.

``lodetools/recipes/*.toml`` (``recipes/train/*.toml`` for training) hold each
paper's defaults; ``lodetools/calibration/*.toml`` the synthetic rig's two
cameras. They are found with :mod:`importlib.resources`, so an installed
wheel finds them as a source checkout does.
"""

from __future__ import annotations

from importlib import resources

#: package-data folders (under ``lodetools/``)
RECIPES = "recipes"
CALIBRATION = "calibration"


def shipped_dir(folder: str):
    """The package-data folder ``lodetools/<folder>`` (a :class:`pathlib.Path` when installed as files)."""
    return resources.files("lodetools") / folder


def find_shipped(folder: str, name, *, subfolders=("",), suffix: str = ".toml"):
    """The shipped file ``<folder>/[<sub>/]<name>[<suffix>]``, or ``None``.

    Parameters
    ----------
    folder : str
        :data:`RECIPES` or :data:`CALIBRATION`.
    name : str
        ``lode``, ``lode.toml`` or ``train/lbag``.
    subfolders : sequence of str
        Tried in order (``""``: the folder itself).
    suffix : str
        Appended when ``name`` lacks it.

    Returns
    -------
    pathlib.Path or importlib.resources.abc.Traversable or None
    """
    parts = [p for p in str(name).replace("\\", "/").split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        return None
    base = shipped_dir(folder)
    for sub in subfolders:
        node = base / sub if sub else base
        for cand in (parts, parts[:-1] + [parts[-1] + suffix]):
            leaf = node
            for p in cand:
                leaf = leaf / p
            if leaf.is_file():
                return leaf
    return None


def shipped_names(folder: str, *, subfolders=("",), suffix: str = ".toml") -> list[str]:
    """Names (without ``suffix``) of the files shipped in ``folder`` and its ``subfolders``."""
    names = []
    for sub in subfolders:
        node = shipped_dir(folder) / sub if sub else shipped_dir(folder)
        if node.is_dir():
            names += sorted(p.name[:-len(suffix)] for p in node.iterdir()
                            if p.is_file() and p.name.endswith(suffix))
    return names

