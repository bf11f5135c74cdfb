"""The GPU suite: every test under tests/gpu is skipped when no CUDA device is available."""

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run benchmarks/gpu_check.sh on a GPU machine)")
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(skip)
