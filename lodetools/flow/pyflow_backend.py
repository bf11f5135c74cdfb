"""The original pyflow module (Ce Liu's C++ flow, wrapped by Pathak), when a user has built it.

It is never a dependency and must never be installed from the package registry
(the registry's ``pyflow`` is an unrelated package manager). It is used only if
``import pyflow`` works and the module has ``coarse2fine_flow``.
"""

from __future__ import annotations

import numpy as np


def load_pyflow():
    """The pyflow module if it is Ce Liu's wrapper, else ``None``."""
    try:
        import pyflow  # noqa: PLC0415
    except Exception:
        return None
    return pyflow if hasattr(pyflow, "coarse2fine_flow") else None


def pyflow_flow(ref, moving, *, alpha=0.012, ratio=0.75, min_width=20, outer_iterations=7,
                inner_iterations=1, sor_iterations=30) -> np.ndarray:
    """Flow by pyflow's ``coarse2fine_flow`` in the package convention (pyflow's (u, v))."""
    mod = load_pyflow()
    if mod is None:
        raise RuntimeError("pyflow (Ce Liu's coarse2fine_flow) is not importable")
    a = np.ascontiguousarray(ref, dtype=np.float64)
    b = np.ascontiguousarray(moving, dtype=np.float64)
    col = 0
    if a.ndim == 2:
        a, b, col = a[..., None], b[..., None], 1
    u, v, _ = mod.coarse2fine_flow(a, b, alpha, ratio, min_width, outer_iterations, inner_iterations,
                                   sor_iterations, col)
    return np.stack([u, v], -1).astype(np.float32)
