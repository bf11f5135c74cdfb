"""lodetools.io.images: what a broken file prints."""

import os
import subprocess
import sys

import numpy as np
import pytest

from lodetools.errors import BadInput
from lodetools.io.images import read_image, write_image


def _cut_png(tmp_path):
    full = tmp_path / "full.png"
    write_image(full, np.random.default_rng(0).random((64, 96, 3), dtype=np.float32))
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])  # header intact, pixels cut off
    return cut


def test_truncated_png_prints_only_our_error(tmp_path, capfd):
    """OpenCV's "[ WARN ...] PNG input buffer is incomplete" does not reach stderr; the error is ours."""
    cut = _cut_png(tmp_path)
    with pytest.raises(BadInput, match="cannot decode image") as exc:
        read_image(cut)
    assert str(cut) in str(exc.value)
    assert capfd.readouterr().err == ""


def test_opencv_log_level_from_the_environment_wins(tmp_path):
    """OPENCV_LOG_LEVEL set by the user (debugging) is not overridden: the warning shows again."""
    cut = _cut_png(tmp_path)
    code = f"from lodetools.io.images import read_image\ntry:\n    read_image({str(cut)!r})\nexcept Exception:\n    pass"
    for level, shown in (("WARNING", True), ("", False)):
        env = {**os.environ, "OPENCV_LOG_LEVEL": level}
        err = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stderr
        assert ("PNG input buffer is incomplete" in err) == shown, err


def test_mask_array_of_another_kind_is_one_error(tmp_path):
    from lodetools.io.images import read_mask

    p = tmp_path / "m.npy"
    np.save(p, np.zeros((4,), dtype=[("a", "i4"), ("b", "f4")]).reshape(2, 2))
    with pytest.raises(BadInput, match="dtype") as e:
        read_mask(p)
    assert str(e.value.path) == str(p)


def test_pillow_limit_restored_after_threaded_header_reads(tmp_path):
    """Headers are read on several threads: Pillow's own bomb limit comes back afterwards."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    from lodetools.io.images import declared_size

    p = tmp_path / "a.png"
    write_image(p, np.zeros((8, 12, 3), np.float32))
    before = Image.MAX_IMAGE_PIXELS
    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(lambda _: declared_size(p), range(4000)))
    assert set(sizes) == {(12, 8)}
    assert Image.MAX_IMAGE_PIXELS == before is not None
