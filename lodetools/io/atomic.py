"""Atomic file writes: a file appears under its final name complete or not at all.

A write goes to a temporary file ``.<name>.<random>.tmp`` beside the final
name, is flushed and fsynced, then renamed. A process killed mid-write leaves
only such a temporary file: :func:`find_temporaries` lists them and
:func:`remove_stale_temporaries` removes them (runs do, in the folders they
write).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

#: Names of the temporary files of :func:`atomic_open`.
TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def file_mode() -> int:
    """The mode a new file gets from ``open`` under the current umask (``0o666 & ~umask``)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb"):
    """Open a temporary file beside ``path``; rename it to ``path`` on success.

    The temporary name starts with ``.`` and ends with ``.tmp`` so it is never
    taken for an output. On an exception the temporary file is removed and
    ``path`` is untouched.

    Parameters
    ----------
    path : str or os.PathLike
        Final file name. Its folder is created if needed.
    mode : {'wb', 'w'}
        Binary or text mode.

    Yields
    ------
    file object
        The open temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())  # mkstemp makes 0600; outputs get the usual mode
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            try:
                yield f
                f.flush()
                os.fsync(f.fileno())
            except OSError as exc:
                if exc.filename is None:  # a failed write (e.g. a full disk) names no file: name ours
                    raise OSError(exc.errno, exc.strerror or str(exc), os.fspath(path)) from exc
                raise
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + fsync + rename)."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def find_temporaries(root) -> list[Path]:
    """Every temporary file of :func:`atomic_open` under ``root`` (left by killed writers), sorted."""
    found = []
    for folder, _dirs, files in os.walk(root):
        found += [Path(folder) / f for f in files if TEMPORARY.match(f)]
    return sorted(found)


def remove_stale_temporaries(root, *, older_than: float) -> list[Path]:
    """Remove the temporary files under ``root`` last modified before ``older_than``.

    A writer keeps its temporary file for the time of one write, so one not
    modified since before the run started (or for long) was left by a killed
    process.

    Parameters
    ----------
    root : str or os.PathLike
    older_than : float
        A time (seconds since the epoch, as :func:`time.time`).

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    removed = []
    for p in find_temporaries(root):
        with contextlib.suppress(OSError):
            if p.stat().st_mtime < older_than:
                p.unlink()
                removed.append(p)
    return removed


__all__ = ["TEMPORARY", "atomic_open", "file_mode", "atomic_write_bytes", "atomic_write_text", "find_temporaries",
           "remove_stale_temporaries"]
