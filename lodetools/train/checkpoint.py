"""Checkpoint files: atomic saves, safe loads, and the model a checkpoint describes.

A lodetools model file (``model.pt``, format ``lodetools-model-1``) is a dict
``{'format', 'net', 'spec', 'net_opts', 'model'}``: the network's name in
:mod:`lodetools.nets`, the training spec it was trained with (see
:mod:`lodetools.train.registry`), the builder's options and the state dict.
A training checkpoint (``checkpoints/last.pt``, ``lodetools-train-1``) holds
the same keys plus the optimizer, scheduler and RNG states. Files are read
with ``torch.load(weights_only=True)``, which unpickles tensors and plain
containers only (https://pytorch.org/docs/stable/generated/torch.load.html).
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from lodetools.errors import BadInput, MissingInput
from lodetools.io.atomic import atomic_write_bytes

MODEL_FORMAT = "lodetools-model-1"


def save_checkpoint(path, state: dict) -> None:
    """Write ``state`` atomically with ``torch.save`` (a reader never sees half a file)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path) -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)`` onto the CPU.

    Raises
    ------
    MissingInput
        If the file does not exist.
    BadInput
        If it is not a readable torch file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInput("checkpoint not found", path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt/truncated/foreign file
        raise BadInput(f"not a readable checkpoint: {type(exc).__name__}", path) from None


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (or ``model`` itself)."""
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return model.module
    return model


def model_record(net: str, net_opts: dict, model: nn.Module, spec: str | None = None) -> dict:
    """What ``deblur`` needs: network name (``lodetools.nets``), training spec, options, weights."""
    return {"format": MODEL_FORMAT, "net": net, "spec": spec or net, "net_opts": dict(net_opts),
            "model": unwrap(model).state_dict()}


def rebuild_model(ckpt: dict, path=None) -> nn.Module:
    """Rebuild the network a checkpoint describes and load its weights.

    Uses the training spec's ``build`` when the checkpoint names a spec that
    has one, else ``lodetools.nets.build(ckpt['net'])``.

    Raises
    ------
    BadInput
        If the checkpoint lacks the network name or weights, or its weights
        do not fit the network (``path`` names the file in the message).
    """
    from lodetools.train.registry import build_model, find_spec
    if not isinstance(ckpt, dict) or "net" not in ckpt or "model" not in ckpt:
        raise BadInput("checkpoint lacks the network name or weights", path)
    opts = dict(ckpt.get("net_opts", {}))
    spec = find_spec(ckpt.get("spec", ckpt["net"]))
    model = build_model(spec.name if spec is not None and spec.build is not None else ckpt["net"], opts)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise BadInput(f"weights do not fit network {ckpt['net']!r}: "
                       f"{first[1].strip() if len(first) > 1 else first[0]}", path) from None
    return model


def load_model(path, device="cpu"):
    """The model a checkpoint file holds, ready for inference.

    Parameters
    ----------
    path : str or Path
        A ``model.pt`` or a training checkpoint.
    device : torch.device or str

    Returns
    -------
    model : nn.Module
        In eval mode, on ``device``.
    predict : callable or None
        ``predict(model, x)`` -> deblurred (B, 3, H, W) from its training
        spec (None: ``model(x)``).
    multiple : int
        What the network needs the height and width to divide by.
    """
    from lodetools.train.registry import find_spec
    ckpt = load_checkpoint(path)
    model = rebuild_model(ckpt, path).to(device).eval()
    spec = find_spec(ckpt.get("spec", ckpt["net"]))
    if spec is not None:
        return model, spec.predict, spec.multiple
    return model, None, int(getattr(model, "multiple", 16))
