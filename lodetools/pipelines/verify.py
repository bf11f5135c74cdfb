"""The ``verify`` pipeline: a dataset's files against its manifest. Reads only.

A published dataset as downloaded (no manifest: GoPro, REDS, RealBlur, HIDE,
ReLoBlur, BladeNet, plain folders; :mod:`lodetools.io.datasets`) has no
checksums to compare; there every pair the layout reader finds is decoded
(blurred, sharp and mask images readable), and ``inspect``'s problem finder
lists the rest: missing partners, size mismatches between the images of a
pair and with its mask, list lines naming missing files, unpaired files.
"""

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
    layout : str or None
        A published dataset's layout (``NAME`` or ``NAME:VARIANT``); None for a lodetools dataset.
    problems : list of str
        A published dataset's problems (``inspect``'s), one message each.
    notes : list of str
        Odd but harmless (unpaired extra files); listed, not counted as broken.
    """

    command: str | None = None
    records: int = 0
    splits: dict = field(default_factory=dict)
    broken: list = field(default_factory=list)
    bad_lines: list = field(default_factory=list)
    temporaries: list = field(default_factory=list)
    layout: str | None = None
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.broken or self.bad_lines or self.temporaries or self.problems)


def verify(root, *, layout: str | None = None) -> Verification:
    """Check every record of the dataset ``root`` (files present, SHA-256 equal).

    A folder without ``dataset.json`` or manifest, or a forced ``layout`` other
    than ``lodetools``, is checked as a published dataset (:func:`verify_published`).

    Raises
    ------
    MissingInput
        ``root`` has neither ``dataset.json`` nor a manifest, and no layout is recognised in it.
    BadInput
        Its ``dataset.json`` is not JSON.
    """
    from lodetools.io.datasets import parse_layout

    root = Path(root)
    name = parse_layout(layout)[0]
    if name not in (None, "lodetools") or name is None and root.is_dir() and not (root / DATASET_JSON).is_file() \
            and not manifest_paths(root):
        return verify_published(root, layout=layout)
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


def verify_published(root, *, layout: str | None = None) -> Verification:
    """Check a dataset as downloaded: every pair the layout reader finds decodes, and nothing is odd.

    ``records`` counts the pairs, ``broken`` holds ``"<key>: <problem>"`` for
    each pair with an unreadable image, ``problems`` what ``inspect`` lists
    (:func:`lodetools.pipelines.inspect.find_problems`), ``notes`` the unpaired extra files.

    Raises
    ------
    MissingInput, BadInput, BadConfig
        No such folder, no layout recognised, an ambiguous root, an unknown layout.
    """
    from lodetools.errors import LodeError
    from lodetools.io.datasets import scan_dataset
    from lodetools.io.images import read_image, read_mask
    from lodetools.pipelines.inspect import find_problems

    scan = scan_dataset(root, layout=layout)
    errors, notes = find_problems(scan)
    v = Verification(command=None, records=len(scan.pairs),
                     layout=scan.layout + (f":{scan.variant}" if scan.variant else ""),
                     problems=[p.message for p in errors], notes=[p.message for p in notes])
    for pair in scan.pairs:
        v.splits[pair.split] = v.splits.get(pair.split, 0) + 1
        try:
            for path, read in ((pair.blur, read_image), (pair.sharp, read_image), (pair.mask, read_mask)):
                if path is not None and path.is_file():  # a missing partner is one of the problems
                    read(path)
        except LodeError as exc:
            v.broken.append(f"{pair.key}: {exc.message}")
    return v
