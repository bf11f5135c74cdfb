"""Deblurring networks, built by name from a registry.

``build(name, **options)`` imports ``lodetools.nets.<module>`` and calls its
builder; options such as width/depth give small models for tests.
"""

from __future__ import annotations

import importlib

#: network name -> "module:builder"
REGISTRY = {
    "lbag": "lodetools.nets.lbag:build_lbag",
    "mimo-unet": "lodetools.nets.mimo:build_mimo_unet",
    "mimo-unet+": "lodetools.nets.mimo:build_mimo_unet_plus",
    "bladenet": "lodetools.nets.bladenet:build_bladenet",
    "simplenet": "lodetools.nets.simplenet:build_simplenet",
    "aspdc": "lodetools.nets.aspdc:build_aspdc",
    "aspdc-reblur": "lodetools.nets.aspdc:build_reblur",
    "aspdc-pair": "lodetools.nets.aspdc:build_aspdc_pair",
}


def build(name: str, **options):
    """Build network ``name`` (a key of :data:`REGISTRY`) with ``options``."""
    try:
        target = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(REGISTRY)}") from None
    mod, fn = target.split(":")
    return getattr(importlib.import_module(mod), fn)(**options)
