"""Test helper: a synthetic RAW rig with both cameras calibrated through the CLI."""

import pytest

from lodetools.cli import main
from lodetools.sim import rig


def run(argv) -> int:
    """Run ``lodetools argv`` in process; return its exit code."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    return exc.value.code


def calibrated_rig(root, *, size, scenes, captures):
    """Write a test-preset rig to ``root/raw`` and calibrate both cameras into ``root/cal``."""
    rig.write_rig(root / "raw", seed=0, preset="test", size=size, scenes=scenes, captures=captures)
    for cam in ("blur", "sharp"):
        assert run(["calibrate", "color", "--lightbox", root / "raw" / f"lightbox_{cam}.dng",
                    "--camera", f"sim-{cam}", "--out", root / "cal" / f"{cam}.toml"]) == 0
    return root
