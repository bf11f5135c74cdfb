"""Output paths confined to the output folder.

Scene names and item ids come from input file names, so they are untrusted:
:func:`safe_name` turns one into a single harmless path component and
:func:`confined` checks that a joined path stays inside the output root.
"""

from __future__ import annotations

import re
from pathlib import Path

from lodetools.errors import BadInput

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(name: str, *, what: str = "name") -> str:
    """Return ``name`` as one safe path component.

    Every run of characters other than letters, digits, ``. _ + -`` becomes
    ``_`` (so ``../x`` becomes ``.._x``, a plain file name); leading dots are
    replaced so no hidden or ``..`` component can appear.

    Parameters
    ----------
    name : str
        Untrusted scene name or item id.
    what : str
        What the name is, for the error message.

    Returns
    -------
    str
        A non-empty component without separators, not ``.`` or ``..``.

    Raises
    ------
    BadInput
        If nothing usable is left.
    """
    clean = _UNSAFE.sub("_", str(name)).strip("_")
    clean = re.sub(r"^\.+", lambda m: "_" * len(m.group()), clean)
    if not clean or set(clean) <= {"_"}:
        raise BadInput(f"unusable {what} {name!r}")
    return clean


def confined(root, *parts: str) -> Path:
    """Join ``parts`` under ``root`` and refuse any result outside ``root``.

    Parameters
    ----------
    root : str or os.PathLike
        The output folder.
    *parts : str
        Relative path components (already made safe, or trusted).

    Returns
    -------
    pathlib.Path
        The joined path.

    Raises
    ------
    BadInput
        If the joined path would leave ``root`` (absolute part, ``..``, link).
    """
    root_r = Path(root).resolve()
    path = Path(root, *parts)
    resolved = path.resolve()
    if resolved != root_r and root_r not in resolved.parents:
        raise BadInput("path escapes the output folder", Path(*parts))
    return path
