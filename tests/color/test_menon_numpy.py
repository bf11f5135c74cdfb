"""The numpy demosaic engine (``lodetools.color._menon_numpy``) against the numba kernels, and its choice.

Both engines equal colour-demosaicing's float32 computation bit for bit
(``tests/pipelines/test_develop.py``); here the numpy engine must equal the
numba kernels bit for bit on every Bayer pattern, odd and tiny sizes (where
the borders wrap several times), a photograph, negative values and values
near float32's overflow and underflow (where the float64 accumulation and
the rounding order show).
"""

import subprocess
import sys

import numpy as np
import pytest
from skimage import data

from lodetools.color import _menon_numba, _menon_numpy, isp
from lodetools.color.isp import demosaic
from lodetools.errors import BadConfig
from lodetools.io.bayer import PATTERNS, pattern_indices

SIZES = [(1, 1), (1, 7), (6, 1), (2, 2), (3, 5), (5, 7), (7, 9), (8, 2), (37, 50)]


def _cases(h, w, seed):
    """Random float32 Bayer data: uniform, signed noise, near float32's maximum (inf and nan appear), subnormal."""
    rng = np.random.default_rng(seed)
    u = rng.random((h, w))
    return {"uniform": u, "signed": u - 0.4, "huge": u * 3.4e38, "subnormal": u * 1e-39}


def mosaic(rgb, pattern):
    """The Bayer image a camera with ``pattern`` records of ``rgb`` (H, W, 3)."""
    cm = pattern_indices(pattern)
    cfa = np.empty(rgb.shape[:2], np.float32)
    for a in (0, 1):
        for b in (0, 1):
            cfa[a::2, b::2] = rgb[a::2, b::2, cm[a, b]]
    return cfa


@pytest.mark.parametrize("pattern", list(PATTERNS))
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_numpy_equals_numba_bit_for_bit(pattern, size):
    cm = pattern_indices(pattern)
    for kind, cfa in _cases(*size, seed=size[0] * 100 + size[1]).items():
        cfa = cfa.astype(np.float32)
        with np.errstate(all="ignore"):
            for refining in (True, False):
                ours = _menon_numpy.menon(cfa, cm, refining)
                assert ours.dtype == np.float32 and ours.shape == (*size, 3)
                np.testing.assert_array_equal(ours, _menon_numba.menon(cfa, cm, refining),
                                              err_msg=f"menon {kind} refining={refining}")
            np.testing.assert_array_equal(_menon_numpy.bilinear(cfa, cm), _menon_numba.bilinear(cfa, cm),
                                          err_msg=f"bilinear {kind}")


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_numpy_equals_numba_on_a_photo(pattern):
    """A real photograph, mosaicked: edges in both directions, so the classifier picks both estimates."""
    cfa = mosaic(data.astronaut()[60:124, 140:236].astype(np.float32) / 255, pattern)
    cm = pattern_indices(pattern)
    for refining in (True, False):
        np.testing.assert_array_equal(demosaic(cfa, pattern, refining_step=refining, engine="numpy"),
                                      _menon_numba.menon(cfa, cm, refining))
    np.testing.assert_array_equal(demosaic(cfa, pattern, method="bilinear", engine="numpy"),
                                  _menon_numba.bilinear(cfa, cm))


def test_bilinear_sum_order_hand_evaluated():
    """Red at a blue site is the float64 sum of its four red neighbours / 4, added row by row.

    With quarters s = 0.75 * 2**-53, s, 1 and 2**-24: (s + s) + 1 rounds up to 1 + 2**-52 and the float32
    rounding of 1 + 2**-24 + 2**-52 gives 1 + 2**-23; adding column by column ((s + 1) + s: both s lost)
    would give the tie 1 + 2**-24, rounded to 1.0.
    """
    cfa = np.zeros((5, 5), np.float32)
    cfa[0, 0] = cfa[0, 2] = 3 * 2.0 ** -53
    cfa[2, 0], cfa[2, 2] = 4.0, 2.0 ** -22
    out = _menon_numpy.bilinear(cfa, pattern_indices("RGGB"))
    assert out[1, 1, 0] == np.float32(1 + 2.0 ** -23)
    np.testing.assert_array_equal(out, _menon_numba.bilinear(cfa, pattern_indices("RGGB")))


def test_auto_engine_on_a_small_image_does_not_import_numba():
    code = ("import sys; from lodetools.color.isp import demosaic; import numpy as np; "
            "demosaic(np.random.rand(64, 96).astype(np.float32), 'RGGB'); print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_auto_engine_choice(monkeypatch):
    """numpy for small images until its time budget is spent; numba for large ones and once numba is warm."""
    monkeypatch.delitem(sys.modules, "numba.np.npyimpl", raising=False)
    monkeypatch.setattr(isp, "_numpy_spent", [0.0])
    small, large = isp.AUTO_NUMPY_MAX_PIXELS, isp.AUTO_NUMPY_MAX_PIXELS + 1
    assert isp._pick_engine("auto", small) == "numpy"
    assert isp._pick_engine("auto", large) == "numba"
    assert isp._pick_engine("numpy", large) == "numpy" and isp._pick_engine("numba", 1) == "numba"
    cfa = np.random.default_rng(0).random((8, 10)).astype(np.float32)
    demosaic(cfa, "RGGB")  # the numpy engine, timed against the budget
    assert 0.0 < isp._numpy_spent[0] < isp.AUTO_NUMPY_BUDGET_S
    monkeypatch.setattr(isp, "_numpy_spent", [isp.AUTO_NUMPY_BUDGET_S])
    assert isp._pick_engine("auto", 1) == "numba"
    monkeypatch.setattr(isp, "_numpy_spent", [0.0])
    monkeypatch.setitem(sys.modules, "numba.np.npyimpl", sys)  # numba has loaded a kernel in this process
    assert isp._pick_engine("auto", 1) == "numba"


def test_bad_engine_or_layout():
    cfa = np.zeros((4, 4), np.float32)
    with pytest.raises(BadConfig, match="engine 'cuda'"):
        demosaic(cfa, "RGGB", engine="cuda")
    with pytest.raises(ValueError, match="not a Bayer layout"):
        _menon_numpy.menon(cfa, np.array([[0, 1], [2, 1]]), True)
