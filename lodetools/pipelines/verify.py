"""The ``verify`` pipeline: a dataset's files against its manifest. Reads only."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lodetools.io.atomic import find_temporaries
from lodetools.io.manifest import (
    DATASET_JSON, manifest_paths, manifest_problems, read_dataset_json, read_manifest, record_intact,
)


@dataclass
class Verification:
    """What :func:`verify` found.

    Attributes
    ----------
    command : str or None
        The command that wrote the dataset (``dataset.json``); None for the
        output of a first run that stopped before writing ``dataset.json``.
    records : int
        Readable manifest records.
    splits : dict
        split -> records.
    broken : list of str
        Keys of records whose files are missing or changed.
    bad_lines : list of (pathlib.Path, str)
        Manifest lines that are not records (truncated or garbage).
    temporaries : list of pathlib.Path
        Temporary files left by killed writers.
    """

    command: str | None = None
    records: int = 0
    splits: dict = field(default_factory=dict)
    broken: list = field(default_factory=list)
    bad_lines: list = field(default_factory=list)
    temporaries: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.broken or self.bad_lines or self.temporaries)


def verify(root) -> Verification:
    """Check every record of the dataset ``root`` (files present, SHA-256 equal).

    Raises
    ------
    MissingInput
        ``root`` has neither ``dataset.json`` nor a manifest.
    BadInput
        Its ``dataset.json`` is not JSON.
    """
    root = Path(root)
    doc = read_dataset_json(root) if (root / DATASET_JSON).is_file() or not manifest_paths(root) else {}
    records = read_manifest(root)
    v = Verification(command=doc.get("command"), records=len(records), bad_lines=manifest_problems(root),
                     temporaries=find_temporaries(root))
    for key, rec in records.items():
        split = rec.get("split", "-")
        v.splits[split] = v.splits.get(split, 0) + 1
        if not record_intact(root, rec):
            v.broken.append(key)
    return v
