"""The registry of trainable networks and their training specs.

How a network plugs in
----------------------
Each trainable network has a *training spec*: a :class:`TrainSpec` object in
a module named in :data:`SPECS` (``name -> "module:attribute"``, imported
lazily). A spec says how to build the model, which losses each stage uses and
how to get the deblurred image out of the model. To add network ``foo``:

1. Write its builder in ``lodetools/nets/foo.py`` and register it in
   ``lodetools.nets.REGISTRY`` (``build("foo", **opts)``).
2. Write ``lodetools/train/spec_foo.py`` with ``SPEC = TrainSpec(...)``::

       def l1_phase(model, batch, w):           # -> (loss, {name: value})
           out = model(batch["blur"])              # (B, 3, H, W)
           loss = w["l1"] * losses.l1_loss(out, batch["sharp"])
           return loss, {"l1": loss}

       SPEC = TrainSpec(
           name="foo", net="foo", net_defaults={"width": 64},
           loss_defaults={"l1": 1.0},
           stages=lambda w: [Stage("main", [Phase(l1_phase)])],
           predict=lambda model, x: model(x), multiple=4, lr=1e-4)

   ``batch`` holds ``blur``/``sharp`` (B, 3, S, S) and ``mask`` (B, 1, S, S)
   on the training device; ``w`` is the loss-weight dict (``loss_defaults``
   overridden by ``--loss``; ``stages(w)`` receives it too). ``predict``
   maps a (B, 3, H, W) batch to the deblurred (B, 3, H, W) image (used by
   validation and ``lodetools deblur``); ``multiple`` is what H and W must
   divide by; ``min_crop`` the smallest training crop the losses accept.
   Several stages run one after another (each gets ``fraction`` of
   ``--iters``, overridable by ``--stages name=fraction,...``), each with a
   fresh Adam over the parameters that are not in ``Stage.frozen`` (names of
   submodules, kept in eval mode) and an optional learning rate
   ``Stage.lr``. A stage with several phases alternates them, every
   ``Stage.alternate_every`` iterations or, with ``alternate_every="epoch"``,
   after one pass over each phase's dataset; a phase with ``params`` (names
   of submodules) has its own Adam over those parameters only (BladeNet's
   global-blur pass updates only the deblurring net). Each phase draws from
   the dataset role it names (``"data"`` = ``--data``, ``"global"`` =
   ``--global-data``; phases whose dataset is absent are dropped).
   ``Phase.need_mask`` restricts its dataset to pairs with masks. A model
   with extra networks (ASPDC's reblurring net) is one ``nn.Module`` holding
   both, made by ``TrainSpec.build(**net_opts)``; ``predict`` picks the
   deblurring output. Checkpoints store ``net``, the spec's name and the
   options, so ``lodetools deblur`` rebuilds the same model
   (:func:`lodetools.train.checkpoint.rebuild_model`).
3. Map it in :data:`SPECS` and add ``lodetools/commands/train_foo.py``: a
   click command decorated with ``@train_options`` from
   ``lodetools.commands._train_options`` that calls ``run_train_command("foo", ctx)``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from lodetools.errors import BadConfig

#: network name -> "module:attribute" of its :class:`TrainSpec`
SPECS = {
    "lbag": "lodetools.train.spec_lbag:SPEC",
    "bladenet": "lodetools.train.spec_bladenet:SPEC",
    "simplenet": "lodetools.train.spec_simplenet:SPEC",
    "aspdc": "lodetools.train.spec_aspdc:SPEC",
}

LossFn = Callable[[nn.Module, dict, dict], tuple]


@dataclass
class Phase:
    """One kind of training step: a loss on batches from one dataset role.

    loss : callable ``(model, batch, weights) -> (loss tensor, {name: tensor})``
    data : ``"data"`` (``--data``) or ``"global"`` (``--global-data``)
    need_mask : only pairs that have a mask
    name : shown in the logs
    params : names of submodules this phase updates, with an Adam state of its
        own; empty: the stage's optimizer (every parameter not frozen)
    """

    loss: LossFn
    data: str = "data"
    need_mask: bool = False
    name: str = "main"
    params: tuple = ()


@dataclass
class Stage:
    """A training stage: its phases alternated.

    fraction : share of ``--iters`` (normalised over the stages)
    frozen : names of submodules not trained in this stage (kept in eval mode)
    lr : learning rate of this stage (default: the run's ``lr``)
    alternate_every : int or ``"epoch"``
        Iterations of one phase before the next; ``"epoch"``: one pass over
        that phase's dataset (``len(dataset) // (batch * processes)``
        iterations, at least 1), as per-epoch training loops do.
    """

    name: str
    phases: list
    fraction: float = 1.0
    frozen: tuple = ()
    lr: float | None = None
    alternate_every: int | str = 1


@dataclass
class TrainSpec:
    """How to train one network (see the module docstring)."""

    name: str
    net: str
    net_defaults: dict
    loss_defaults: dict
    stages: Callable[[dict], list]
    predict: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    multiple: int = 16
    lr: float = 1e-4
    description: str = ""
    #: smallest training crop the losses accept (e.g. SSIM windows at 1/4 scale)
    min_crop: int = 0
    #: optional ``build(**net_opts) -> nn.Module`` when the trained model is not just
    #: ``lodetools.nets.build(net)`` (e.g. a deblurring net plus a reblurring net)
    build: Callable | None = None


def get_spec(name: str) -> TrainSpec:
    """The :class:`TrainSpec` registered as ``name`` in :data:`SPECS`."""
    try:
        target = SPECS[name]
    except KeyError:
        raise BadConfig(f"unknown network {name!r}; known: {', '.join(SPECS)}") from None
    mod, attr = target.split(":")
    return getattr(importlib.import_module(mod), attr)


def find_spec(name: str) -> TrainSpec | None:
    """The spec registered as ``name``, or None (not registered, or its module is not there yet)."""
    if name not in SPECS:
        return None
    try:
        return get_spec(name)
    except ModuleNotFoundError:
        return None


def build_model(net: str, net_opts: dict, network: bool = False) -> nn.Module:
    """Build the model trained as ``net``.

    ``net`` names a training spec whose ``build`` makes the model (a network
    with extra parts, e.g. ASPDC with its reblurring net), or else a network
    of :mod:`lodetools.nets` built with ``net_opts``. ``network``: ``net``
    names a network of :mod:`lodetools.nets` even where a spec has that name.
    """
    from lodetools import nets
    try:
        spec = None if network else find_spec(net)
        if spec is not None:
            if spec.build is not None:
                return spec.build(**net_opts)
            return nets.build(spec.net, **net_opts)
        return nets.build(net, **net_opts)
    except TypeError as exc:
        raise BadConfig(f"bad options for network {net!r}: {exc}") from None
    except ValueError as exc:
        raise BadConfig(str(exc)) from None
