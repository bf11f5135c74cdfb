"""``lodetools verify``: check a dataset's files against its manifest."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lodetools.commands._dataset_options import layout_option
from lodetools.errors import EXIT_PARTIAL


@click.command("verify")
@click.argument("dataset", type=click.Path(path_type=Path))
@layout_option
def command(dataset, layout):
    """Check that every file recorded in DATASET's manifest exists and matches its SHA-256.

    Prints the number of records per split and the number of broken ones,
    then lists on stderr each broken item (missing or changed files), each
    manifest line that is not a record (a truncated last line from a killed
    run, or garbage; counted as broken), and each temporary file
    (.<name>.<random>.tmp) a killed writer left. Exits with code 3 if
    anything is listed. A rerun of the command that wrote the dataset redoes
    exactly the broken items and removes the temporary files.

    A published dataset as downloaded (no manifest; any layout `lodetools
    inspect` reads, or --layout) has no checksums: every pair the layout
    reader finds is decoded (blurred, sharp, mask), and what `inspect` finds
    is listed: missing partners, size mismatches (images of a pair, mask and
    image), list lines naming missing files; unpaired files as notes. Exit
    code 3 on an unreadable image or a problem.

    \b
    Examples:
      lodetools verify demo-out/lode
      lodetools verify GOPRO_Large
    """
    from lodetools.pipelines.verify import verify

    v = verify(dataset, layout=layout)
    parts = ", ".join(f"{n} {s}" for s, n in sorted(v.splits.items()))
    if v.layout:
        what, unit = f"{v.layout} dataset as downloaded (no manifest)", "pairs"
    else:
        what, unit = (f"{v.command} dataset" if v.command else "unfinished first run (no dataset.json yet)"), \
            "records"
    click.echo(f"{dataset}: {what}, {v.records} {unit} ({parts or 'none'}), "
               f"{len(v.broken) + len(v.bad_lines)} broken" + (f", {len(v.problems)} problem(s)" if v.layout else ""))
    for key in v.broken:
        click.echo(f"  broken: {key}", err=True)
    for path, msg in v.bad_lines:
        click.echo(f"  broken: {path}: {msg}", err=True)
    for path in v.temporaries:
        click.echo(f"  temporary file: {path}", err=True)
    for msg in v.problems:
        click.echo(f"  problem: {msg}", err=True)
    for msg in v.notes:
        click.echo(f"  note: {msg}", err=True)
    if not v.ok:
        sys.exit(EXIT_PARTIAL)
