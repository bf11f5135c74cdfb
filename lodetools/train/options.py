"""The training options: one table from which everything else is made.

:data:`FIELDS` lists every setting a training run depends on (name, type,
default, help). From it come

* :class:`TrainConfig`, the dataclass the trainer reads (and writes to
  ``config.json``), made with :func:`dataclasses.make_dataclass`;
* the click options of ``lodetools train <net>``
  (:func:`lodetools.commands._train_options.train_options`), flag
  ``--<name with dashes>``;
* the recipe keys: a recipe's ``[train.<net>]`` table uses the same names.

Command-line values are text for the dict- and list-valued fields
(``--loss l1=1,ssim=1``, ``--lr-milestones 0.5,0.75``); :func:`config_from`
parses them with each field's ``parse``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from lodetools.errors import BadConfig


def parse_kv(text, what: str) -> dict:
    """``"a=1,b=0.5,c=x"`` -> ``{'a': 1, 'b': 0.5, 'c': 'x'}`` (ints, floats, booleans, strings).

    A dict is returned as it is.

    Raises
    ------
    BadConfig

    Examples
    --------
    >>> parse_kv("base=8,dropout=0.1,amp=true", "--net-opts")
    {'base': 8, 'dropout': 0.1, 'amp': True}
    """
    if isinstance(text, dict):
        return dict(text)
    out = {}
    if not text:
        return out
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise BadConfig(f"{what}: expected name=value, got {item!r}")
        k, v = (s.strip() for s in item.split("=", 1))
        low = v.lower()
        if low in ("true", "false"):
            out[k] = low == "true"
            continue
        for cast in (int, float):
            try:
                out[k] = cast(v)
                break
            except ValueError:
                pass
        else:
            out[k] = v
    return out


def parse_floats(text, what: str) -> tuple:
    """``"0.5,0.75"`` -> ``(0.5, 0.75)``; a list or tuple of numbers is returned as a tuple."""
    if isinstance(text, (list, tuple)):
        return tuple(float(x) for x in text)
    if not text:
        return ()
    try:
        return tuple(float(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        raise BadConfig(f"{what}: expected comma-separated numbers, got {text!r}") from None


def _path(v):
    return str(v) if v not in (None, "") else None


def _paths(v):
    return tuple(str(p) for p in (v or ()))


@dataclass(frozen=True)
class Field:
    """One training option.

    name : the config attribute, recipe key and (with dashes) the ``--flag``
    type : ``int``, ``float``, ``str``, ``bool``, ``"path"``, ``"paths"``
        (repeatable path), ``"kv"`` (``name=value,...`` -> dict), ``"floats"``
        (comma-separated -> tuple), or a tuple of choices
    default : the value when neither flag nor recipe sets it (``REQUIRED``: no default)
    help : the ``--help`` line
    min, max : bounds of numbers (click ranges)
    short : an extra short flag (``-o``)
    """

    name: str
    type: Any
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    short: str | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self) -> Callable:
        """Command-line/recipe value -> config value."""
        what = self.flag
        return {"path": _path, "paths": _paths, "kv": lambda v: parse_kv(v, what),
                "floats": lambda v: parse_floats(v, what)}.get(self.type, lambda v: v)


REQUIRED = object()

#: every training setting, in ``--help`` order
FIELDS = (
    Field("data", "path", REQUIRED,
          "Paired dataset to train on, lodetools' own or a published one as downloaded (GoPro, REDS, "
          "RealBlur, HIDE, ReLoBlur, BladeNet, plain blur/+sharp/); its 'train' split, with masks for "
          "the local-blur losses."),
    Field("out", "path", REQUIRED,
          "Run folder: checkpoints/, model.pt, config.json, train_log.csv, val_log.csv.", short="-o"),
    Field("global_data", "paths", (),
          "Global-blur paired dataset(s) for alternating passes (BladeNet); repeatable."),
    Field("layout", str, None,
          "Layout of --data, detected when omitted: NAME or NAME:VARIANT (gopro:blur_gamma, realblur:J, ...)."),
    Field("masks", "path", None,
          "Local-blur masks of a mask-free --data, made outside it by `lodetools masks --data ROOT --out DIR`."),
    Field("val_data", "path", None, "Dataset for validation (default: --data); its --val-split is used."),
    Field("train_split", str, "train", "Split trained on."),
    Field("val_split", str, "val", "Split validated on (skipped when the dataset has none)."),
    Field("iters", int, 1000, "Total training iterations (all stages).", min=1),
    Field("batch", int, 12, "Batch size per process.", min=1),
    Field("crop", int, 256, "Training crop side in pixels (multiple of the network's multiple).", min=16),
    Field("lr", float, None, "Learning rate (default: the network's)."),
    Field("lr_gamma", float, 0.5, "LR factor at each milestone."),
    Field("lr_milestones", "floats", (),
          "Comma-separated milestones: fractions of --iters (< 1) or iteration numbers."),
    Field("lr_step", int, 0, "Also multiply the LR by --lr-gamma every N iterations (0: off).", min=0),
    Field("augment", ("none", "flip", "dihedral"), "flip",
          "flip: horizontal flips (ReLoBlur); dihedral: 8 flip/rotation modes (LODE)."),
    Field("bapc_p", float, 0.5, "Blur-aware patch cropping probability (ReLoBlur; 0 disables).", min=0, max=1),
    Field("bapc_min_fraction", float, 0.05,
          "Blur-centred crops only if the mask's blurred fraction exceeds this.", min=0, max=1),
    Field("net_opts", "kv", {}, "Network options name=value,... (e.g. 'base=8,num_res=2' for a small LBAG)."),
    Field("init_from", "path", None, "Start from the weights of this checkpoint: a lodetools model.pt or "
          "checkpoint, or the authors' (LBAG, BladeNet, ASPDC deblurring net or pair); its network options "
          "fill in what --net-opts does not set."),
    Field("loss", "kv", {}, "Loss weights and variants name=value,... overriding the network's defaults."),
    Field("stages", "kv", {}, "Stage fractions of --iters, name=fraction,... (BladeNet: lbp, deblur, joint)."),
    Field("seed", int, 0, "Seed of weights and data."),
    Field("workers", int, 2, "Data-loading worker processes.", min=0),
    Field("val_every", int, 0, "Validate every N iterations (0: never).", min=0),
    Field("val_images", int, 10, "Validation images (whole, tiled).", min=1),
    Field("val_tile", int, 512, "Tile side for validation inference (0: whole images).", min=0),
    Field("ckpt_every", int, 1000, "Checkpoint every N iterations (and at the end of each stage and run).",
          min=1),
    Field("device", str, "auto", "auto (cuda > mps > cpu), or a torch device such as cuda:1."),
    Field("amp", bool, True, "Mixed precision on CUDA."),
    Field("channels_last", bool, True, "channels_last memory format on CUDA."),
    Field("cache", bool, False, "Keep decoded images in memory (small datasets)."),
)


def _config_field(f: Field):
    if f.required:
        return (f.name, Any)
    if isinstance(f.default, (dict, list)):
        return (f.name, Any, field(default_factory=lambda d=f.default: type(d)(d)))
    return (f.name, Any, field(default=f.default))


def _to_json(self) -> dict:
    d = dataclasses.asdict(self)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


#: Everything a run depends on (written to ``config.json``): ``net`` plus one
#: attribute per :data:`FIELDS` entry, holding parsed values (dicts, tuples).
TrainConfig = dataclasses.make_dataclass(
    "TrainConfig", [("net", str)] + [_config_field(f) for f in FIELDS],
    namespace={"to_json": _to_json, "__doc__": "Everything a training run depends on (see "
               ":data:`lodetools.train.options.FIELDS`); ``to_json()`` is what ``config.json`` holds."})
TrainConfig.__module__ = __name__


def config_from(net: str, values: dict):
    """A :class:`TrainConfig` for ``net`` from command-line or recipe values (missing: defaults).

    Raises
    ------
    BadConfig
        For an unknown name, a missing required value or an unparsable one.
    """
    names = {f.name: f for f in FIELDS}
    unknown = set(values) - set(names)
    if unknown:
        raise BadConfig(f"unknown training option(s): {', '.join(sorted(unknown))}")
    kw = {}
    for f in FIELDS:
        if f.name in values and values[f.name] is not None:
            kw[f.name] = f.parse()(values[f.name])
        elif f.required:
            raise BadConfig(f"{f.flag} is required")
    return TrainConfig(net=net, **kw)

