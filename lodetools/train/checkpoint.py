"""Checkpoint files: atomic saves, safe loads, and the model a checkpoint describes.

A lodetools model file (``model.pt``, format ``lodetools-model-1``) is a dict
``{'format', 'net', 'spec', 'net_opts', 'model'}``: the network's name in
:mod:`lodetools.nets`, the training spec it was trained with (see
:mod:`lodetools.train.registry`), the builder's options and the state dict.
A training checkpoint (``checkpoints/last.pt``, ``lodetools-train-1``) holds
the same keys plus the optimizer, scheduler and RNG states. Files are read
with ``torch.load(weights_only=True)``, which unpickles tensors and plain
containers only (https://pytorch.org/docs/stable/generated/torch.load.html).

:func:`load_record` (and so :func:`load_model`) also reads the checkpoints
the authors' code saves (LBAG, MIMO-UNet(+), BladeNet, ASPDC), recognised
from the file's contents and renamed to lodetools' networks by
:mod:`lodetools.nets.official`.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from lodetools.errors import BadConfig, BadInput, MissingInput
from lodetools.io.atomic import atomic_write_bytes

MODEL_FORMAT = "lodetools-model-1"


def save_checkpoint(path, state, legacy: bool = False) -> None:
    """Write ``state`` atomically with ``torch.save`` (a reader never sees half a file).

    ``legacy``: the pre-1.6 (non-zip) serialisation, as ReLoBlur's code writes.
    """
    buf = io.BytesIO()
    torch.save(state, buf, _use_new_zipfile_serialization=not legacy)
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
    try:
        if spec is not None and spec.build is not None:
            model = build_model(spec.name, opts)
        else:       # the network of lodetools.nets the file names (a spec may share its name: 'aspdc')
            model = build_model(ckpt["net"], opts, network=True)
    except BadConfig as exc:   # the options the file records do not build its network
        raise BadInput(f"bad network options in the checkpoint ({exc.what})", path) from None
    _load_fitting(model, ckpt["model"], ckpt["net"], path)
    return model


def _load_fitting(module: nn.Module, state: dict, net: str, path=None) -> None:
    """``module.load_state_dict(state)`` once every key and shape fits; else BadInput naming the first misfit."""
    from lodetools.nets.official import first_mismatch

    problem = first_mismatch(module.state_dict(), state)
    if problem:
        raise BadInput(f"weights do not fit network {net!r}: {problem}", path)
    module.load_state_dict(state)


def load_record(path, net: str | None = None) -> dict:
    """A checkpoint file as a lodetools record, whatever format it is in.

    Parameters
    ----------
    path : str or Path
        A lodetools ``model.pt`` or training checkpoint, or a checkpoint saved
        by the authors' code (see :mod:`lodetools.nets.official`).
    net : str, optional
        The network the file must hold; needed only for a bare state dict
        whose keys do not tell.

    Raises
    ------
    MissingInput, BadInput
        The message names the file (and the first mismatching key).
    """
    from lodetools.errors import LodeError
    from lodetools.nets.official import record_from_official
    obj = load_checkpoint(path)
    try:
        return record_from_official(obj, net)
    except LodeError as exc:
        raise type(exc)(exc.what, path) from None


def load_model(path, device="cpu", net: str | None = None):
    """The model a checkpoint file holds, ready for inference.

    Parameters
    ----------
    path : str or Path
        A ``model.pt``, a training checkpoint, or an official checkpoint
        (:func:`load_record`).
    device : torch.device or str
    net : str, optional
        The network the file must hold (:func:`load_record`).

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
    ckpt = load_record(path, net)
    model = rebuild_model(ckpt, path).to(device).eval()
    spec = find_spec(ckpt.get("spec", ckpt["net"]))
    if spec is not None:
        return model, spec.predict, spec.multiple
    return model, None, int(getattr(model, "multiple", 16))


def convert_checkpoint(src, dst, *, to: str | None = None, net: str | None = None, reblur=None,
                       overwrite: bool = False) -> dict:
    """Write a checkpoint in lodetools' format or the authors' (``lodetools convert-checkpoint``).

    Parameters
    ----------
    src : str or Path
        Any checkpoint :func:`load_record` reads.
    dst : str or Path
        The file written (atomically).
    to : {'lodetools', 'official'}, optional
        Target format; default: the other one than ``src``'s.
    net : str, optional
        The network ``src`` must hold (:func:`load_record`).
    reblur : str or Path, optional
        The official ASPDC reblurring net's file (``{'blurring_state_dict'}``)
        to join to an official ASPDC ``src``: the result is an ``aspdc-pair``.
    overwrite : bool
        Replace an existing ``dst``.

    Returns
    -------
    dict
        ``{'from': format of src, 'to': format written, 'net': network}``.

    Raises
    ------
    OutputConflict, MissingInput, BadInput, BadConfig
    """
    from lodetools.errors import BadConfig, LodeError, OutputConflict
    from lodetools.nets.official import detect_format, official_from_record, record_from_official
    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise OutputConflict("output exists (use --overwrite)", dst)
    if to not in (None, "lodetools", "official"):
        raise BadConfig(f"--to must be 'lodetools' or 'official', not {to!r}")
    obj = load_checkpoint(src)
    if reblur is not None:
        extra = load_checkpoint(reblur)
        if detect_format(extra) != "aspdc-reblur":
            raise BadInput("not an official ASPDC reblurring checkpoint (no 'blurring_state_dict')", reblur)
        if detect_format(obj) != "aspdc":
            raise BadInput("--reblur joins an official ASPDC deblurring checkpoint, which this is not", src)
        obj = {**obj, "blurring_state_dict": extra["blurring_state_dict"]}
    try:
        rec = record_from_official(obj, net)
        source = rec.pop("source_format")
        to = to or ("official" if source == "lodetools" else "lodetools")
        if to == "official":
            state, legacy = official_from_record(rec)
        else:
            state, legacy = {k: rec[k] for k in ("format", "net", "spec", "net_opts", "model")}, False
            state["format"] = MODEL_FORMAT
    except LodeError as exc:
        raise type(exc)(exc.what, src) from None
    save_checkpoint(dst, state, legacy=legacy)
    return {"from": source, "to": to, "net": rec["net"]}


#: networks trained as a whole whose parts have official files of their own: part network -> submodule
PARTS = {"aspdc-pair": {"aspdc": "deblur", "aspdc-reblur": "reblur"}}


def load_weights(model: nn.Module, net: str, record: dict, path=None) -> str:
    """Load a record's weights into ``model`` (network ``net``) to start training from them.

    The record holds ``net`` itself, or one part of it (:data:`PARTS`, e.g.
    the official ASPDC deblurring net into ``aspdc-pair``: the other part
    keeps its initialisation). Returns the submodule loaded ('' = all).

    Raises
    ------
    BadInput
        Another network, or weights that do not fit (first mismatching key).
    """
    part = "" if record["net"] == net else PARTS.get(net, {}).get(record["net"])
    if part is None:
        raise BadInput(f"checkpoint holds network {record['net']!r}, not {net!r}", path)
    _load_fitting(getattr(model, part) if part else model, record["model"], net, path)
    return part
