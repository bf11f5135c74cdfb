"""``lodetools verify``: check a dataset's files against its manifest."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lodetools.errors import EXIT_PARTIAL
from lodetools.io.manifest import read_dataset_json, read_manifest, record_intact


@click.command("verify")
@click.argument("dataset", type=click.Path(path_type=Path))
def command(dataset):
    """Check that every file recorded in DATASET's manifest exists and matches its SHA-256.

    Prints the number of records per split and lists broken items (missing or
    changed files); exits with code 3 if any is broken. A rerun of the command
    that wrote the dataset redoes exactly the broken items.

    Example: lodetools verify demo-out/lode
    """
    doc = read_dataset_json(dataset)
    records = read_manifest(dataset)
    splits: dict = {}
    broken = []
    for key, rec in records.items():
        splits[rec.get("split", "-")] = splits.get(rec.get("split", "-"), 0) + 1
        if not record_intact(dataset, rec):
            broken.append(key)
    parts = ", ".join(f"{n} {s}" for s, n in sorted(splits.items()))
    click.echo(f"{dataset}: {doc.get('command')} dataset, {len(records)} records ({parts or 'none'}), "
               f"{len(broken)} broken")
    for key in broken:
        click.echo(f"  broken: {key}", err=True)
    if broken:
        sys.exit(EXIT_PARTIAL)
