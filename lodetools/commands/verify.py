"""``lodetools verify``: check a dataset's files against its manifest."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lodetools.errors import EXIT_PARTIAL


@click.command("verify")
@click.argument("dataset", type=click.Path(path_type=Path))
def command(dataset):
    """Check that every file recorded in DATASET's manifest exists and matches its SHA-256.

    Prints the number of records per split and the number of broken ones,
    then lists on stderr each broken item (missing or changed files), each
    manifest line that is not a record (a truncated last line from a killed
    run, or garbage; counted as broken), and each temporary file
    (.<name>.<random>.tmp) a killed writer left. Exits with code 3 if
    anything is listed. A rerun of the command that wrote the dataset redoes
    exactly the broken items and removes the temporary files.

    Example: lodetools verify demo-out/lode
    """
    from lodetools.pipelines.verify import verify

    v = verify(dataset)
    parts = ", ".join(f"{n} {s}" for s, n in sorted(v.splits.items()))
    what = f"{v.command} dataset" if v.command else "unfinished first run (no dataset.json yet)"
    click.echo(f"{dataset}: {what}, {v.records} records ({parts or 'none'}), "
               f"{len(v.broken) + len(v.bad_lines)} broken")
    for key in v.broken:
        click.echo(f"  broken: {key}", err=True)
    for path, msg in v.bad_lines:
        click.echo(f"  broken: {path}: {msg}", err=True)
    for path in v.temporaries:
        click.echo(f"  temporary file: {path}", err=True)
    if not v.ok:
        sys.exit(EXIT_PARTIAL)
