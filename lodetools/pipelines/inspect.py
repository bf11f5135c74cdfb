"""The ``inspect`` pipeline: what a dataset root holds, as the layout reader sees it.

Reads only (headers of the images, for the size checks); writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lodetools.io.datasets import DatasetScan, check_sizes, scan_dataset, summarize
from lodetools.runner import RunOptions, RunSummary


@dataclass(frozen=True)
class InspectInputs:
    """What ``inspect`` reads.

    Attributes
    ----------
    root : pathlib.Path
        A dataset folder in any layout :mod:`lodetools.io.datasets` reads.
    masks : pathlib.Path, optional
        Masks made outside the dataset.
    """

    root: Path
    masks: Path | None = None


@dataclass(frozen=True)
class InspectParams:
    """What ``inspect`` looks at.

    Attributes
    ----------
    layout : str, optional
        Force a layout, ``"NAME"`` or ``"NAME:VARIANT"`` (detected when None).
    sizes : bool
        Compare every blurred image's size with its sharp image's (headers only).
    """

    layout: str | None = None
    sizes: bool = True


def find_problems(scan: DatasetScan, *, sizes: bool = True) -> tuple[list, list]:
    """What is wrong with a scanned dataset, and what is odd but harmless.

    Parameters
    ----------
    scan : DatasetScan
        From :func:`lodetools.io.datasets.scan_dataset` (its problems: missing
        partners, list lines naming missing files, masks of another size, ...).
    sizes : bool
        Also compare every blurred image's size with its sharp image's (headers only).

    Returns
    -------
    errors, notes : list of Problem
        ``notes``: the non-fatal ones (unpaired extra files).
    """
    problems = list(scan.problems) + (check_sizes(scan) if sizes else [])
    return [p for p in problems if p.fatal], [p for p in problems if not p.fatal]


def run(inputs: InspectInputs, params: InspectParams, opts: RunOptions | None = None) -> RunSummary:
    """Scan a dataset root.

    Returns
    -------
    RunSummary
        ``done``: pair keys; ``failed``: path -> message of every problem;
        ``info``: ``layout``, ``variant``, ``base``, ``splits`` (split ->
        pairs, scenes, with_sharp, with_mask), ``problems`` (messages),
        ``notes`` (odd but harmless: unpaired extra files).
    """
    scan = scan_dataset(inputs.root, layout=params.layout, masks=inputs.masks)
    errors, notes = find_problems(scan, sizes=params.sizes)
    info = {"layout": scan.layout, "variant": scan.variant, "base": str(scan.base),
            "splits": summarize(scan), "problems": [p.message for p in errors],
            "notes": [p.message for p in notes]}
    return RunSummary(done=[p.key for p in scan.pairs], failed={str(p.error.path): p.message for p in errors},
                      out=None, info=info)
