"""``manifest.jsonl`` (one record per item) and ``dataset.json`` (the run's summary).

A manifest record is a JSON object with at least::

    {"key": "train/scene/000047", "id": "000047", "split": "train",
     "scene": "scene", "files": {"blur": "train/scene/blur/000047.png", ...},
     "sha256": {"blur": "...", ...}, "provenance": {...}}

``key`` is unique in a dataset. Records are appended one line at a time,
flushed and fsynced, so a killed run leaves at most a truncated last line,
which :func:`read_manifest` ignores (the item is redone; :func:`manifest_problems`
reports it). A sharded run (``--shard K/N``) writes
``manifests/shard-K-of-N.jsonl`` so cluster tasks never write one file
together; readers take the union. The summary files of a dataset
(``dataset.json``, ``qa.jsonl``, ...) are written under :func:`output_lock`
from that union, so concurrent shards write them one after the other.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
from pathlib import Path

from lodetools import __version__
from lodetools.errors import BadInput, MissingInput
from lodetools.io.atomic import atomic_write_text

MANIFEST = "manifest.jsonl"
SHARD_DIR = "manifests"
DATASET_JSON = "dataset.json"
#: The lock file of :func:`output_lock`.
LOCK_FILE = ".lodetools.lock"


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes (a path, or a package resource with ``open``)."""
    h = hashlib.sha256()
    with (path.open("rb") if hasattr(path, "open") else open(path, "rb")) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_jsonl(path: Path, problems: list | None = None) -> list[dict]:
    """The records of one manifest file; unreadable lines are left out (and told to ``problems``).

    ``problems`` receives ``(path, message)`` per line that is not a JSON
    record with a ``key``: a truncated last line (from a killed run) or garbage.
    """
    records = []
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            rec = None
        if isinstance(rec, dict) and isinstance(rec.get("key"), str):
            records.append(rec)
        elif problems is not None:
            what = "truncated last line" if i == len(lines) - 1 else "unreadable line"
            problems.append((Path(path), f"{what} {i + 1} (not a manifest record)"))
    return records


def manifest_paths(root) -> list[Path]:
    """Every manifest file of a dataset: ``manifest.jsonl`` then shard manifests."""
    root = Path(root)
    paths = [root / MANIFEST] if (root / MANIFEST).is_file() else []
    if (root / SHARD_DIR).is_dir():
        paths += sorted((root / SHARD_DIR).glob("shard-*.jsonl"))
    return paths


def manifest_problems(root) -> list[tuple[Path, str]]:
    """``(manifest file, message)`` for every line of a dataset's manifests that is not a record.

    :func:`read_manifest` leaves such lines out (their items are redone by a
    rerun); ``verify`` reports them.
    """
    problems: list = []
    for p in manifest_paths(root):
        _read_jsonl(p, problems)
    return problems


@contextlib.contextmanager
def output_lock(root):
    """Hold an exclusive lock of the output folder ``root`` (``fcntl.flock`` of ``.lodetools.lock``).

    Concurrent shards of one run (SLURM array tasks on one file system) take
    it to read the union of the manifests and write the summary files, one
    after the other. The lock is released when the block ends or the process
    dies. Where the file system has no ``flock`` (some Lustre mounts), the
    block runs unlocked: rerunning any one shard after all have finished
    rewrites the summaries from the union.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(root / LOCK_FILE, "a+b") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        except OSError:  # pragma: no cover - file systems without flock
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def read_manifest(root) -> dict[str, dict]:
    """All records of a dataset by key (a later record for a key wins).

    Parameters
    ----------
    root : str or os.PathLike
        The dataset folder.

    Returns
    -------
    dict
        key -> record, sorted by key.
    """
    out: dict[str, dict] = {}
    for p in manifest_paths(root):
        for rec in _read_jsonl(p):
            out[rec["key"]] = rec
    return dict(sorted(out.items()))


def record_intact(root, record: dict, *, check_hash: bool = True) -> bool:
    """True if every file of ``record`` exists (and matches its SHA-256)."""
    root = Path(root)
    hashes = record.get("sha256", {})
    for role, rel in record.get("files", {}).items():
        p = root / rel
        if not p.is_file():
            return False
        if check_hash and role in hashes and sha256_file(p) != hashes[role]:
            return False
    return True


class ManifestWriter:
    """Appends records to a manifest file, one fsynced line each.

    Parameters
    ----------
    path : str or os.PathLike
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # repair a truncated last line so the next record starts on its own line
        if self.path.is_file() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                last = f.read(1)
            if last != b"\n":
                with open(self.path, "ab") as f:
                    f.write(b"\n")
        self._f = open(self.path, "ab")

    def append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        try:
            self._f.write(line.encode("utf-8"))
            self._f.flush()
            os.fsync(self._f.fileno())
        except OSError as exc:  # a full disk: name the manifest
            raise OSError(exc.errno, exc.strerror or str(exc), os.fspath(self.path)) from exc

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def rewrite_sorted(path, records: dict[str, dict]) -> None:
    """Atomically replace a manifest with ``records`` sorted by key.

    Done at the end of an unsharded run so serial and parallel runs leave
    byte-identical manifests.
    """
    text = "".join(json.dumps(records[k], sort_keys=True, separators=(",", ":")) + "\n"
                   for k in sorted(records))
    atomic_write_text(path, text)


def read_dataset_json(root) -> dict:
    """The ``dataset.json`` of a dataset.

    Raises
    ------
    MissingInput
        If there is none (not a lodetools dataset).
    BadInput
        If it is not valid JSON.
    """
    p = Path(root) / DATASET_JSON
    if not p.is_file():
        raise MissingInput("not a lodetools dataset (no dataset.json)", root)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadInput(f"dataset.json is not valid JSON: {exc.msg}", p) from None


def write_dataset_json(root, *, command: str, params: dict, recipe: str | None,
                       counts: dict, extra: dict | None = None) -> dict:
    """Write ``dataset.json``: tool version, command, recipe, effective parameters, counts.

    ``created`` is kept from an existing file; ``updated`` is now.
    """
    p = Path(root) / DATASET_JSON
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    created = now
    if p.is_file():
        try:
            created = json.loads(p.read_text(encoding="utf-8")).get("created", now)
        except (json.JSONDecodeError, OSError):
            pass
    doc = {
        "tool": "lodetools",
        "version": __version__,
        "command": command,
        "recipe": recipe,
        "parameters": params,
        "counts": counts,
        "created": created,
        "updated": now,
    }
    if extra:
        doc.update(extra)
    atomic_write_text(p, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    return doc
