"""Fixtures shared across the test packages: the synthetic world's pieces, built once per session.

The builders live in :mod:`tests.support` (importable because ``tests`` is a
package); these fixtures cache what several modules use, so each is made once.
A test that changes one of them works on a copy (``shutil.copytree``).
"""

from __future__ import annotations

import pytest

from tests.support import datasets_world
from tests.support.rig import calibrated_rig
from tests.support.train_data import make_dataset


@pytest.fixture(scope="session")
def dataset_worlds(tmp_path_factory):
    """Tiny copies of each published layout as downloaded: ``{name: (root, truth)}``."""
    return datasets_world.build_all(tmp_path_factory)


@pytest.fixture(scope="session")
def rig_factory(tmp_path_factory):
    """``make(size, scenes, captures)``: a test-preset RAW rig with both cameras calibrated (cached per shape)."""
    cache = {}

    def make(size=(64, 96), scenes=2, captures=1):
        key = (tuple(size), scenes, captures)
        if key not in cache:
            cache[key] = calibrated_rig(tmp_path_factory.mktemp("rig"), size=size, scenes=scenes,
                                        captures=captures)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def train_sets(tmp_path_factory):
    """Two tiny paired datasets: ``local`` (train + val, masked local blur) and ``global`` (whole-frame blur)."""
    base = tmp_path_factory.mktemp("train_data")
    return {"local": make_dataset(base / "local", n=4, splits=("train", "val")),
            "global": make_dataset(base / "global", n=2, local=False, seed=1)}
