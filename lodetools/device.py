"""The one device policy of lodetools: which torch device a computation runs on."""

from __future__ import annotations

import os
import sys
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when a device is resolved, not with this module
    import torch


#: device files of the GPU drivers torch can use: NVIDIA (Linux), WSL's GPU paravirtualisation, AMD ROCm
GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/dxg", "/dev/kfd")


def gpu_possible() -> bool:
    """Whether torch could find a GPU here, answered without importing torch (0.9 s).

    ``False`` on Linux when none of the driver device files
    (:data:`GPU_DEVICE_FILES`) exists: then ``torch.cuda.is_available()`` is
    ``False`` too, so a CPU-only computation can skip torch altogether.
    ``True`` elsewhere (macOS has MPS; other systems are not checked).

    Returns
    -------
    bool

    Examples
    --------
    >>> isinstance(gpu_possible(), bool)
    True
    """
    if not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(p) for p in GPU_DEVICE_FILES)


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def resolve_device(device=None) -> torch.device:
    """The :class:`torch.device` to run on.

    Parameters
    ----------
    device : None, str or torch.device
        ``None`` or ``"auto"``: CUDA when available, else Apple's MPS, else
        the CPU. Otherwise a torch device (``"cpu"``, ``"cuda:1"``, ...); a
        CUDA or MPS request on a machine without one falls back to the CPU
        with a warning, so a command written for a GPU machine still runs.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    import torch

    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    dev = torch.device(device)
    if (dev.type == "cuda" and not torch.cuda.is_available()) or (dev.type == "mps" and not _mps_available()):
        warnings.warn(f"device {device} is not available here; running on the CPU", stacklevel=2)
        return torch.device("cpu")
    return dev
