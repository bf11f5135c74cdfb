"""A minimal pipeline on the work runner, used by the runner tests.

Each item writes a random 48x64 image (from its own seeded generator) and a
mask into the paired layout; ``--sleep`` slows items down so a test can kill
the run halfway.
"""

import functools
import sys
import time
from dataclasses import dataclass

import click
import numpy as np

from lodetools.commands._options import params_from_click, run_options, run_options_from
from lodetools.errors import BadInput
from lodetools.io.layout import item_key, write_pair
from lodetools.io.manifest import write_dataset_json
from lodetools.runner import WorkItem, check_output, recorded_parameters, report, run_items


@dataclass(frozen=True)
class ToyParams:
    """What the toy computes (``sleep`` only slows it down: not recorded)."""

    count: int = 12
    bad: bool = False
    scene: str = "scene"


def process(item, rng, *, out, sleep):
    split, scene, iid = item.payload
    if iid == "bad":
        raise BadInput("this item is bad on purpose", f"{scene}/{iid}")
    blur = rng.random((48, 64, 3), dtype=np.float32)
    sharp = rng.random((48, 64, 3), dtype=np.float32)
    time.sleep(sleep)
    rec = write_pair(out, split, scene, iid, {"blur": blur, "sharp": sharp, "mask": blur[..., 0] > 0.5})
    rec["provenance"] = {"n": int(rng.integers(1000))}
    return rec


@click.command()
@run_options
@click.option("--count", type=int, default=12)
@click.option("--sleep", type=float, default=0.0)
@click.option("--finish-sleep", type=float, default=0.0, help="Pause between reading the records and "
              "writing dataset.json (a slow shard).")
@click.option("--bad", is_flag=True)
@click.option("--scene", default="scene")
def main(**values):
    opts = run_options_from(values)
    params = params_from_click(ToyParams, values)
    out = opts.out
    items = []
    for i in range(params.count):
        iid = f"{i:04d}"
        items.append(WorkItem(item_key("train", params.scene, iid), ("train", params.scene, iid)))
    if params.bad:
        items.insert(3, WorkItem(item_key("train", params.scene, "bad"), ("train", params.scene, "bad")))
    cp = recorded_parameters(params, opts)
    check_output(out, "toy", cp, overwrite=opts.overwrite)
    fn = functools.partial(process, out=out, sleep=values["sleep"])

    def finish(s):
        n = len(s.records)
        time.sleep(values["finish_sleep"])
        write_dataset_json(out, command="toy", params=cp, recipe=None, counts={"pairs": n})

    summary = run_items(items, fn, opts, finish=finish)
    sys.exit(report(summary))


if __name__ == "__main__":
    from lodetools.cli import run_command

    run_command(main, prog_name="toy")
