"""Issue 7 targets on the synthetic RAW rig, end to end: rig DNGs -> develop -> aligned pairs -> masks.

The rig's true flow, off by up to 1 px per pair, stands in for ``align``; colour casts,
per-capture exposures, sensor noise, demosaicing and white balance are the
real chain's. Targets: mean IoU against the rig's true blur masks >= 0.75,
blurred-fraction error <= 2 percentage points.
"""

import json

import numpy as np
from click.testing import CliRunner

from lodetools.commands.masks import command
from lodetools.io.images import read_mask
from lodetools.io.manifest import read_manifest
from masks_world import iou, rig_dataset


def test_rig_masks_meet_the_issue_targets(tmp_path):
    # each pair off by up to 1 px (ReLoBlur reports ~1 px alignment error, appendix Table 1)
    truth = rig_dataset(tmp_path / "rig", tmp_path / "ds", size=(96, 128), scenes=2, captures=3, seed=1,
                        jitter=1.0)
    res = CliRunner().invoke(command, ["--data", str(tmp_path / "ds"), "--recipe", "reloblur", "--quiet"])
    assert res.exit_code == 0, (res.output, res.exception)
    recs = read_manifest(tmp_path / "ds")
    got = {k: read_mask(tmp_path / "ds" / recs[k]["files"]["mask"]) for k in truth}
    ious = [iou(got[k], truth[k]) for k in truth]
    assert np.mean(ious) >= 0.75, ious
    err = np.mean([m.mean() for m in got.values()]) - np.mean([m.mean() for m in truth.values()])
    assert abs(err) <= 0.02, err
    stats = json.loads((tmp_path / "ds" / "mask_stats.json").read_text())["summary"]
    assert stats["count"] == len(truth)
    assert stats["mean"] == np.mean([m.mean() for m in got.values()])
