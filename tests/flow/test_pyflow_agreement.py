"""c2f against the original program: Ce Liu's C++ flow (pyflow) on the Middlebury motorcycle pair.

The fixture ``tests/data/pyflow_motorcycle.npz`` is pyflow's flow for
``im1 = image0, im2 = image1`` of ``skimage.data.stereo_motorcycle()`` (741x500
RGB, ``/ 255`` as float64), with pyflow's demo parameters (alpha 0.012, ratio
0.75, minWidth 20, nOuterFPIterations 7, nInnerFPIterations 1,
nSORIterations 30, colType 0 = RGB), which are c2f's defaults. It was made once
with pyflow built from its public source (github.com/pathak22/pyflow, commit
8f8ab9e), outside this repository::

    git clone https://github.com/pathak22/pyflow /tmp/pyflow_src   # commit 8f8ab9e
    python -m venv --system-site-packages /tmp/pfvenv
    /tmp/pfvenv/bin/pip install cython setuptools
    cd /tmp/pyflow_src && /tmp/pfvenv/bin/python setup.py build_ext -i
    PYTHONPATH=/tmp/pyflow_src python -c "
    import numpy as np, pyflow
    from skimage import data
    im1, im2, _ = data.stereo_motorcycle()
    a = np.ascontiguousarray(im1, np.float64) / 255
    b = np.ascontiguousarray(im2, np.float64) / 255
    u, v, _ = pyflow.coarse2fine_flow(a, b, 0.012, 0.75, 20, 7, 1, 30, 0)
    q = np.round(np.stack([u, v], -1)[::2, ::2] * 128).astype(np.int16)
    d = np.diff(q, axis=1, prepend=0).astype(np.int16)
    np.savez_compressed('tests/data/pyflow_motorcycle.npz',
                        flow_x128_xdiff=np.ascontiguousarray(d.transpose(2, 0, 1)))"

Stored compactly: every second pixel in both axes, quantised to 1/128 px
(error <= 0.004 px), as differences along x (``np.cumsum`` restores it).
"""

from pathlib import Path

import numpy as np
from skimage import data

from lodetools.flow.c2f import coarse2fine_flow

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "pyflow_motorcycle.npz"


def pyflow_motorcycle_flow() -> np.ndarray:
    """pyflow's (u, v) on the motorcycle pair at pixels [::2, ::2]: float (250, 371, 2)."""
    z = np.load(FIXTURE)["flow_x128_xdiff"]
    return np.cumsum(z.astype(np.int32), axis=2).transpose(1, 2, 0) / 128.0


def test_c2f_gives_pyflows_flow_on_the_motorcycle_pair():
    im1, im2, disp = data.stereo_motorcycle()
    flow = coarse2fine_flow(im1.astype(np.float32) / 255, im2.astype(np.float32) / 255)
    ref = pyflow_motorcycle_flow()
    gap = np.sqrt(((flow[::2, ::2] - ref) ** 2).sum(-1))
    # measured: 0.025 px mean, 0.089 px p95 (0.32 / 1.04 px with pixel-centre pyramid conventions)
    assert gap.mean() < 0.05
    assert np.percentile(gap, 95) < 0.15
    # and the flow is the disparity (not a trivially small field): same accuracy as pyflow's
    ok = np.isfinite(disp)[::2, ::2]
    truth = np.stack([-disp[::2, ::2], np.zeros_like(disp[::2, ::2])], -1)
    epe = np.sqrt(((flow[::2, ::2] - truth) ** 2).sum(-1))[ok].mean()
    epe_ref = np.sqrt(((ref - truth) ** 2).sum(-1))[ok].mean()
    assert abs(epe - epe_ref) < 0.05 and epe < 5.0
