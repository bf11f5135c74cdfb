"""The authors' checkpoint formats: recognise them and map their weights to lodetools' networks and back.

What each official repository saves (``torch.load`` of the file gives):

============  ==============================================================  ================
format        saved object (official code)                                    lodetools net
============  ==============================================================  ================
``lbag``      ``{'global_step', 'optimizer_states', 'state_dict': {'model':   ``lbag``
              sd}}``, legacy (non-zip) serialisation (ReLoBlur
              ``utils.save_checkpoint``)
``mimo-unet`` ``{'model': sd}`` (MIMO-UNet ``train.py``; the released         ``mimo-unet``,
              ``*.pkl``; resume files add optimizer, scheduler, epoch)        ``mimo-unet+``
``bladenet``  ``DataParallel(WholeNet).state_dict()``: ``module.maskNet.*``,  ``bladenet``
              ``module.deblurNet.*`` (BladeNet ``train.py``)
``aspdc``     ``{'epoch', 'deblurring_state_dict'}``; the reblurring net's    ``aspdc``,
              file ``{'blurring_state_dict'}`` (ASPDC ``DR_network.py``)      ``aspdc-reblur``
============  ==============================================================  ================

Key names (official -> lodetools):

* LBAG / MIMO-UNet(+): ``Encoder.i.layers.j.main.k.main.0.w`` ->
  ``encoder.i.j.main.k.0.w`` (EBlock/DBlock ``layers`` and BasicConv
  ``main`` dropped; ``Decoder``, ``Convs``, ``ConvsOut``, ``AFFs``, ``FAM1/2``,
  ``SCM1/2`` lower-cased, ``ConvsOut`` -> ``convs_out``). Same layer order.
* BladeNet: ``module.`` dropped; ``maskNet`` -> ``lbp``, ``deblurNet`` ->
  ``deblur``; ``inc.double_conv`` -> ``unet.inc``, ``downN.maxpool_conv.1.double_conv``
  -> ``unet.downs.N-1.1``, ``upN.conv.double_conv`` -> ``unet.ups.N-1.conv``,
  ``outc.conv`` -> ``outc``; the deblurring net's ``SAUp`` blocks (up2-up4)
  register ``conv1, deChannelConv, sa1`` -> ``pre, conv, att`` (the official
  file keeps its order: ``sa1`` last).
* ASPDC: ResBlock ``model`` -> ``body``; ``en_res_group1..3_1/_2`` and
  ``de_res_group3..1_1/_2`` -> ``groups.0..5`` (ResBlocks, then the ASPDC
  module at index ``num_res``); ``hallucination_d0.{m_conv,dconv}`` ->
  ``branches.0.{conv_offset,(weight,bias)}``; ``hallucination_dN.hallucination_conv.{p_conv
  (18 ch), m_conv (9 ch), dconv}`` -> ``branches.N.conv_offset`` (p_conv's
  rows then m_conv's: mmcv's offset layout is torchvision's) and
  ``branches.N.{weight,bias}``; ``mask_conv`` -> ``attention``,
  ``fusion_conv`` -> ``fusion``, ``dense_conv`` -> ``dense``. Reblurring net:
  ``head_conv`` -> ``head``, ``body_conv_1..3`` / ``body_dconv_3..1`` ->
  ``stages.0..5``, ``kernel_head_conv``, ``kernel_conv_1..3``,
  ``kernel_dconv_3..1`` -> ``kernels.0..6``.

ASPDC's test script builds ``DeblurringNet(norm_layer=partial(InstanceNorm2d,
affine=False, track_running_stats=True))`` and never calls ``eval()``, but no
module of the network instantiates ``norm_layer`` (ResBlock and the ASPDC
module take it and ignore it): the network has no normalisation layer, and its
state dict no running statistics, so :class:`lodetools.nets.aspdc.ASPDCNet`
needs none. It feeds images mapped to [-1, 1] (``Normalize(mean=0.5,
std=0.5)``), clamps the output to [-1, 1] and maps it back: official weights
load into ``ASPDCNet(signed=True)``. Its zero-offset branch's ``m_conv``
lacks padding (a bug: a mask 2 px smaller than the features); lodetools pads
it, which changes no weight shape.

All functions work on state dicts (name -> tensor) and plain objects; reading
and writing files is :mod:`lodetools.train.checkpoint`'s job.

References
----------
.. [1] LeiaLi/ReLoBlur, chosj95/MIMO-UNet, komejisatori/BladeNet,
   Dong-Huo/ASPDC on GitHub (the official code).
"""

from __future__ import annotations

import re
from collections import OrderedDict

import torch

from lodetools.errors import BadConfig, BadInput

__all__ = ["FORMATS", "NETS", "detect_format", "identify_network", "to_lodetools", "to_official",
           "first_mismatch", "record_from_official", "official_from_record"]

#: official save formats :func:`detect_format` knows
FORMATS = ("lbag", "mimo-unet", "bladenet", "aspdc", "aspdc-reblur")

#: lodetools networks with an official format -> that format
NETS = {"lbag": "lbag", "mimo-unet": "mimo-unet", "mimo-unet+": "mimo-unet", "bladenet": "bladenet",
        "aspdc": "aspdc", "aspdc-reblur": "aspdc-reblur", "aspdc-pair": "aspdc"}

_PARAM = r"(?:weight|bias|running_mean|running_var|num_batches_tracked)"


# ------------------------------------------------------------------ rename rules
# A rule pairs an official key template with a lodetools one; ``{rest}`` is any
# tail, ``{i}``/``{j}`` an index, ``{p}`` a parameter or buffer name.

def _regex(template: str) -> re.Pattern:
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out += re.escape(template[pos:m.start()])
        name = m.group(1)
        out += {"rest": r"(?P<rest>.+)", "p": rf"(?P<p>{_PARAM})"}.get(name, rf"(?P<{name}>\d+)")
        pos = m.end()
    return re.compile(out + re.escape(template[pos:]) + "$")


class _Pass:
    """One renaming pass: the first matching rule renames a key.

    ``required``: a key that matches no rule cannot be mapped (None).
    """

    def __init__(self, rules, required=True):
        self.fwd = [(_regex(a), b) for a, b in rules]
        self.rev = [(_regex(b), a) for a, b in rules]
        self.required = required

    def apply(self, key: str, to_lodetools: bool):
        for rx, template in (self.fwd if to_lodetools else self.rev):
            m = rx.match(key)
            if m:
                return template.format(**m.groupdict())
        return None if self.required else key


def _mimo_passes():
    tops = {"Encoder": "encoder", "Decoder": "decoder", "feat_extract": "feat_extract", "Convs": "convs",
            "ConvsOut": "convs_out", "AFFs": "affs", "FAM1": "fam1", "FAM2": "fam2", "SCM1": "scm1",
            "SCM2": "scm2"}
    rules = [(f"{a}.{{i}}.layers.{{rest}}", f"{b}.{{i}}.{{rest}}") for a, b in tops.items()
             if a in ("Encoder", "Decoder")]
    rules += [(f"{a}.{{rest}}", f"{b}.{{rest}}") for a, b in tops.items() if a not in ("Encoder", "Decoder")]
    # every parameter sits in a BasicConv: official ``BasicConv.main.0`` = lodetools ``BasicConv.0``
    return [_Pass([("{rest}.main.0.{p}", "{rest}.0.{p}")]), _Pass(rules)]


def _bladenet_passes():
    rules = []
    for off, lt in (("maskNet", "lbp"), ("deblurNet", "deblur")):
        rules.append((f"module.{off}.inc.double_conv.{{rest}}", f"{lt}.unet.inc.{{rest}}"))
        for n in range(1, 5):
            rules.append((f"module.{off}.down{n}.maxpool_conv.1.double_conv.{{rest}}",
                          f"{lt}.unet.downs.{n - 1}.1.{{rest}}"))
            if off == "deblurNet" and n > 1:      # SAUp: conv1 -> BSA -> deChannelConv
                rules += [(f"module.{off}.up{n}.conv1.double_conv.{{rest}}", f"{lt}.unet.ups.{n - 1}.pre.{{rest}}"),
                          (f"module.{off}.up{n}.deChannelConv.double_conv.{{rest}}",
                           f"{lt}.unet.ups.{n - 1}.conv.{{rest}}"),
                          (f"module.{off}.up{n}.sa1.conv1.{{rest}}", f"{lt}.unet.ups.{n - 1}.att.{{rest}}")]
            else:
                rules.append((f"module.{off}.up{n}.conv.double_conv.{{rest}}", f"{lt}.unet.ups.{n - 1}.conv.{{rest}}"))
        rules.append((f"module.{off}.outc.conv.{{rest}}", f"{lt}.outc.{{rest}}"))
    return [_Pass(rules)]


_ASPDC_GROUPS = ("en_res_group1", "en_res_group2", "en_res_group3", "de_res_group3", "de_res_group2",
                 "de_res_group1")


def _aspdc_passes(num_res: int):
    module = [("res_conv.{rest}", "res_conv.{rest}"),
              ("hallucination_d0.m_conv.{p}", "branches.0.conv_offset.{p}"),
              ("hallucination_d0.dconv.{p}", "branches.0.{p}"),
              ("hallucination_d{i}.hallucination_conv.p_conv.{p}", "branches.{i}.conv_offset@p.{p}"),
              ("hallucination_d{i}.hallucination_conv.m_conv.{p}", "branches.{i}.conv_offset@m.{p}"),
              ("hallucination_d{i}.hallucination_conv.dconv.{p}", "branches.{i}.{p}"),
              ("mask_conv.{rest}", "attention.{rest}"), ("fusion_conv.{rest}", "fusion.{rest}")]
    rules = [("head.{rest}", "head.{rest}"), ("dense_conv.{rest}", "dense.{rest}"), ("tail.{rest}", "tail.{rest}")]
    for g, name in enumerate(_ASPDC_GROUPS):
        rules += [(f"{name}_2.{a}", f"groups.{g}.{num_res}.{b}") for a, b in module]   # before the
        rules.append((f"{name}_1.{{i}}.{{rest}}", f"groups.{g}.{{i}}.{{rest}}"))       # ResBlocks' rule
    return [_Pass([("{rest}.model.{i}.{p}", "{rest}.body.{i}.{p}")], required=False), _Pass(rules)]


def _reblur_passes():
    rules = [("head_conv.{rest}", "head.{rest}"), ("kernel_head_conv.{rest}", "kernels.0.{rest}"),
             ("tail.{rest}", "tail.{rest}")]
    for s, name in enumerate(("body_conv_1", "body_conv_2", "body_conv_3", "body_dconv_3", "body_dconv_2",
                              "body_dconv_1")):
        rules.append((f"{name}.{{rest}}", f"stages.{s}.{{rest}}"))
    for k, name in enumerate(("kernel_conv_1", "kernel_conv_2", "kernel_conv_3", "kernel_dconv_3",
                              "kernel_dconv_2", "kernel_dconv_1"), start=1):
        rules.append((f"{name}.{{rest}}", f"kernels.{k}.{{rest}}"))
    return [_Pass([("{rest}.model.{i}.{p}", "{rest}.body.{i}.{p}")], required=False), _Pass(rules)]


#: official order of the reblurring net's modules (lodetools registers stages before kernels)
_REBLUR_ORDER = ("head_conv", "kernel_head_conv", "body_conv_1", "kernel_conv_1", "body_conv_2", "kernel_conv_2",
                 "body_conv_3", "kernel_conv_3", "body_dconv_3", "kernel_dconv_3", "body_dconv_2",
                 "kernel_dconv_2", "body_dconv_1", "kernel_dconv_1", "tail")

#: (block regex, rank of the sub-module names) giving the official key order per network
_ORDER = {
    "bladenet": (re.compile(r"^(module\.deblurNet\.up\d\.)([^.]+)\."), {"conv1": 0, "deChannelConv": 1, "sa1": 2}),
    "aspdc": (re.compile(r"^(.*\.hallucination_d\d\.(?:hallucination_conv\.)?)([^.]+)\."),
              {"p_conv": 0, "m_conv": 1, "dconv": 2}),
    "aspdc-reblur": (re.compile(r"^()([^.]+)\."), {n: i for i, n in enumerate(_REBLUR_ORDER)}),
}


def _official_order(keys: list, fmt: str) -> list:
    if fmt not in _ORDER:
        return keys
    rx, rank = _ORDER[fmt]
    first, order = {}, []
    for i, k in enumerate(keys):
        m = rx.match(k)
        block, sub = (m.group(1), m.group(2)) if m else (k, "")
        first.setdefault(block, i)
        order.append((first[block], rank.get(sub, 0), i, k))
    return [k for *_, k in sorted(order)]


# ------------------------------------------------------------------ detection

#: a key only that network's official state dict has
_SIGNATURES = (("bladenet", "maskNet.inc.double_conv.0.weight"),
               ("aspdc", "en_res_group1_2.res_conv.0.weight"),
               ("aspdc-reblur", "kernel_head_conv.weight"),
               ("mimo", "feat_extract.0.main.0.weight"))


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and len(obj) > 0 and all(
        isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items())


def detect_format(obj) -> str | None:
    """The save format of a loaded checkpoint object.

    Returns
    -------
    str or None
        ``'lodetools'`` (a ``lodetools-*`` record), one of :data:`FORMATS`,
        ``'state-dict'`` (a bare name -> tensor dict of unknown origin), or
        None when the object is none of these.
    """
    if not isinstance(obj, dict):
        return None
    if str(obj.get("format", "")).startswith("lodetools") or ("net" in obj and "model" in obj):
        return "lodetools"
    if "deblurring_state_dict" in obj:
        return "aspdc"
    if "blurring_state_dict" in obj:
        return "aspdc-reblur"
    if isinstance(obj.get("state_dict"), dict) and "model" in obj["state_dict"]:
        return "lbag"
    if _is_state_dict(obj.get("model")):
        return "mimo-unet"
    if _is_state_dict(obj):
        if any(k.startswith("module.maskNet.") for k in obj):
            return "bladenet"
        return "state-dict"
    return None


def _strip_module(sd: dict) -> dict:
    """Drop ``DataParallel``'s ``module.`` prefix when every key has it."""
    if sd and all(k.startswith("module.") for k in sd):
        return OrderedDict((k[len("module."):], v) for k, v in sd.items())
    return sd


def identify_network(sd: dict) -> str | None:
    """The lodetools network an official state dict (any wrapper removed) belongs to, or None.

    LBAG and MIMO-UNet share their key names: LBAG's heads have 4 output
    channels (gate + RGB), MIMO-UNet's 3; MIMO-UNet+ has 20 ResBlocks per
    block, MIMO-UNet 8.
    """
    sd = _strip_module(sd)
    for net, key in _SIGNATURES:
        if key in sd:
            if net != "mimo":
                return net
            head = sd.get("feat_extract.5.main.0.weight")
            if head is not None and head.shape[0] == 4:
                return "lbag"
            return "mimo-unet+" if _count(sd, r"Encoder\.0\.layers\.(\d+)\.main\.0\.main\.0\.weight") == 20 \
                else "mimo-unet"
    return None


def _count(sd: dict, pattern: str) -> int:
    rx = re.compile(pattern + "$")
    return len({m.group(1) for m in map(rx.match, sd) if m})


def _infer_options(net: str, sd: dict) -> dict:
    """Builder options of ``net`` (:mod:`lodetools.nets`) that fit an official state dict."""
    try:
        if net in ("lbag", "mimo-unet", "mimo-unet+"):
            return {"base": int(sd["feat_extract.0.main.0.weight"].shape[0]),
                    "num_res": _count(sd, r"Encoder\.0\.layers\.(\d+)\.main\.0\.main\.0\.weight")}
        if net == "bladenet":
            return {"width": int(sd["maskNet.inc.double_conv.0.weight"].shape[0])}
        if net == "aspdc":
            return {"width": int(sd["head.0.weight"].shape[0]), "groups": len(_ASPDC_GROUPS),
                    "num_res": _count(sd, r"en_res_group1_1\.(\d+)\.model\.0\.weight"), "signed": True}
        if net == "aspdc-reblur":
            return {"width": int(sd["head_conv.0.weight"].shape[0]), "signed": True}
    except KeyError as exc:
        raise BadInput(f"not an official {net} checkpoint: no key {exc.args[0]!r}") from None
    raise BadConfig(f"network {net!r} has no official format; known: {', '.join(NETS)}")


def _passes(net: str, opts: dict):
    fmt = NETS[net]
    if fmt in ("lbag", "mimo-unet"):
        return _mimo_passes()
    if fmt == "bladenet":
        return _bladenet_passes()
    if fmt == "aspdc":
        return _aspdc_passes(int(opts.get("num_res", 2)))
    return _reblur_passes()


# ------------------------------------------------------------------ conversion

def _rename(key: str, passes, to_lodetools: bool):
    for p in (passes if to_lodetools else passes[::-1]):
        if key is None:
            return None
        key = p.apply(key, to_lodetools)
    return key


def to_lodetools(sd: dict, net: str, opts: dict | None = None) -> tuple[OrderedDict, dict]:
    """Official state dict -> (lodetools state dict, builder options of ``net``).

    Parameters
    ----------
    sd : dict
        The official network's state dict (``module.`` prefixes allowed for BladeNet).
    net : str
        Target network of :mod:`lodetools.nets` (a key of :data:`NETS`, not ``aspdc-pair``).
    opts : dict, optional
        Builder options; inferred from the tensors' shapes when None.

    Raises
    ------
    BadInput
        A key no rule maps (the message names it).
    """
    if net == "bladenet" and not next(iter(sd), "").startswith("module."):
        sd = OrderedDict((f"module.{k}", v) for k, v in sd.items())   # saved without DataParallel
    opts = dict(_infer_options(net, _strip_module(sd)) if opts is None else opts)
    passes = _passes(net, opts)
    out, pending = OrderedDict(), {}
    for k, v in sd.items():
        new = _rename(k, passes, True)
        if new is None:
            raise BadInput(f"unexpected key {k!r} for an official {net} checkpoint")
        if "@" in new:      # ASPDC: p_conv's rows then m_conv's make one conv_offset
            base, tail = new.split("@")
            key = f"{base}.{tail[2:]}"
            pending.setdefault(key, {})[tail[0]] = v
            if len(pending[key]) == 2:
                parts = pending.pop(key)
                out[key] = torch.cat([parts["p"], parts["m"]], 0)
            continue
        out[new] = v
    if pending:
        key = next(iter(pending))
        raise BadInput(f"missing key {_official_name(key, net, opts)!r} (p_conv without m_conv or back)")
    return out, opts


def to_official(sd: dict, net: str, opts: dict | None = None) -> OrderedDict:
    """lodetools state dict of ``net`` -> the official state dict, in the official module order.

    BladeNet's keys get ``DataParallel``'s ``module.`` prefix, as its training code saves them.

    Raises
    ------
    BadInput
        A key no rule maps.
    """
    opts = dict(opts or {})
    passes = _passes(net, opts)
    out = OrderedDict()
    for k, v in sd.items():
        parts = [(k, v)]
        if net in ("aspdc", "aspdc-pair") and k.endswith(("conv_offset.weight", "conv_offset.bias")) \
                and ".branches.0." not in k:
            k9 = v.shape[0] // 3                          # 2K offset rows, then K mask rows
            head, _, p = k.rpartition(".")
            parts = [(f"{head}@p.{p}", v[:2 * k9]), (f"{head}@m.{p}", v[2 * k9:])]
        for key, t in parts:
            new = _rename(key, passes, False)
            if new is None:
                raise BadInput(f"key {k!r} of {net} has no official name")
            out[new] = t
    return OrderedDict((k, out[k]) for k in _official_order(list(out), NETS[net] if net != "aspdc-pair"
                                                                 else "aspdc"))


def first_mismatch(expected: dict, got: dict, name=lambda k: k) -> str | None:
    """The first difference between two state dicts' keys and shapes, as a message; None if they fit.

    Parameters
    ----------
    expected : dict
        Key -> tensor (or shape) of the network that is built.
    got : dict
        Key -> tensor of the checkpoint.
    name : callable
        Maps a key to the name shown (e.g. its official name).
    """
    for k, v in got.items():
        if k not in expected:
            return f"unexpected key {name(k)!r}"
        shape = tuple(expected[k].shape) if hasattr(expected[k], "shape") else tuple(expected[k])
        if tuple(v.shape) != shape:
            return f"key {name(k)!r} has shape {tuple(v.shape)}, the network {shape}"
    for k in expected:
        if k not in got:
            return f"missing key {name(k)!r}"
    return None


def _check(net: str, opts: dict, sd: dict) -> None:
    """Build ``net`` on the meta device and compare ``sd`` with its state dict (BadInput on a mismatch)."""
    from lodetools import nets
    with torch.device("meta"):
        try:
            model = nets.build(net, **opts)
        except (TypeError, ValueError) as exc:
            raise BadInput(f"cannot build {net} with {opts}: {exc}") from None
    problem = first_mismatch(model.state_dict(), sd, name=lambda k: _official_name(k, net, opts))
    if problem:
        raise BadInput(f"not a checkpoint of {net}: {problem}")


def _official_name(key: str, net: str, opts: dict) -> str:
    if net == "aspdc" and "conv_offset" in key and ".branches.0." not in key:
        key = key.replace("conv_offset.", "conv_offset@p.")        # name the p_conv half
    new = _rename(key, _passes(net, opts), False)
    return new if new is not None else key


def record_from_official(obj, net: str | None = None) -> dict:
    """A lodetools model record (``{'format', 'net', 'spec', 'net_opts', 'model'}``) from a loaded checkpoint.

    Parameters
    ----------
    obj : object
        What ``torch.load`` returned: a lodetools record (returned unchanged,
        after checking ``net``) or an official checkpoint (see the module
        docstring). An ASPDC object holding both ``deblurring_state_dict``
        and ``blurring_state_dict`` gives an ``aspdc-pair``.
    net : str, optional
        The network the file must hold (a key of :data:`NETS` or any
        lodetools network for a lodetools record); needed for a bare state
        dict whose network the keys do not tell.

    Returns
    -------
    dict
        ``source_format`` says which format the object was in.

    Raises
    ------
    BadInput
        Unknown format, a checkpoint of another network than ``net``, or
        missing/unexpected keys (the first one is named).
    """
    fmt = detect_format(obj)
    if fmt is None:
        raise BadInput("not a lodetools or official checkpoint (unknown layout)")
    if fmt == "lodetools":
        if not _is_state_dict(obj.get("model")):
            raise BadInput("lodetools checkpoint without a state dict of tensors under 'model'")
        if not isinstance(obj.get("net_opts", {}), dict):
            raise BadInput("lodetools checkpoint whose 'net_opts' is not a table of options")
        if net is not None and net not in (obj.get("net"), obj.get("spec")):
            raise BadInput(f"checkpoint holds network {obj.get('net')!r}, not {net!r}")
        return {**obj, "source_format": "lodetools"}
    if fmt == "aspdc":
        rec = _single(obj["deblurring_state_dict"], "aspdc", net if net != "aspdc-pair" else "aspdc")
        if "blurring_state_dict" not in obj:
            rec["iteration"] = int(obj.get("epoch", 0))
            return rec
        reb = _single(obj["blurring_state_dict"], "aspdc-reblur", "aspdc-reblur")
        model = OrderedDict([(f"deblur.{k}", v) for k, v in rec["model"].items()]
                            + [(f"reblur.{k}", v) for k, v in reb["model"].items()])
        opts = {**rec["net_opts"], "reblur_width": reb["net_opts"]["width"]}
        return {"format": "lodetools-model-1", "net": "aspdc-pair", "spec": "aspdc", "net_opts": opts,
                "model": model, "source_format": "aspdc"}
    if fmt == "aspdc-reblur":
        return _single(obj["blurring_state_dict"], "aspdc-reblur", net)
    sd = {"lbag": lambda: obj["state_dict"]["model"], "mimo-unet": lambda: obj["model"]}.get(fmt, lambda: obj)()
    rec = _single(sd, fmt, net)
    if fmt == "lbag":
        rec["iteration"] = int(obj.get("global_step", 0))
    return rec


def _single(sd, fmt: str, net: str | None) -> dict:
    if not _is_state_dict(sd):
        raise BadInput(f"{fmt} checkpoint without a state dict of tensors")
    found = identify_network(sd)
    if net is not None and net not in NETS:
        raise BadConfig(f"network {net!r} has no official format; known: {', '.join(NETS)}")
    if found is not None and net is not None and found != net \
            and not {found, net} <= {"mimo-unet", "mimo-unet+"}:
        raise BadInput(f"checkpoint holds an official {found} network, not {net} "
                       f"(first key {next(iter(sd))!r})")
    target = net or found
    if target is None:
        raise BadInput(f"cannot tell the network from the keys (first key {next(iter(sd))!r}); pass --net")
    model, opts = to_lodetools(sd, target)
    _check(target, opts, model)
    spec = {"lbag": "lbag", "bladenet": "bladenet"}.get(target, "")
    return {"format": "lodetools-model-1", "net": target, "spec": spec, "net_opts": opts, "model": model,
            "source_format": fmt}


def _fresh_adam_state(n: int, lr: float) -> dict:
    """``Adam.state_dict()`` of ``n`` parameters with no steps taken (what the official loader restores)."""
    params = [torch.nn.Parameter(torch.zeros(())) for _ in range(n)]
    return torch.optim.Adam(params, lr=lr, weight_decay=0).state_dict()


def official_from_record(record: dict) -> tuple[object, bool]:
    """The object the official code would have saved for a lodetools record, and whether to save it legacy.

    Parameters
    ----------
    record : dict
        A lodetools model record or training checkpoint (``net``, ``net_opts``,
        ``model``; ``iteration`` and ``optimizer`` when present).

    Returns
    -------
    obj : object
        LBAG: ``{'global_step', 'optimizer_states': [Adam state], 'state_dict':
        {'model'}}`` (the training checkpoint's Adam state when it has one
        group of the right size, else a fresh one at lr 1e-4, as ReLoBlur's
        config); MIMO-UNet(+): ``{'model'}``; BladeNet: the ``module.``-prefixed
        state dict; ASPDC: ``{'epoch', 'deblurring_state_dict'}`` (a pair adds
        ``blurring_state_dict``, so one file serves both official loaders).
    legacy : bool
        Save with ``_use_new_zipfile_serialization=False`` (ReLoBlur's format).

    Raises
    ------
    BadConfig
        A network without an official format, or an ASPDC trained on [0, 1]
        data (the official code feeds [-1, 1]).
    """
    net, opts, sd = record.get("net"), dict(record.get("net_opts", {})), record.get("model")
    if net not in NETS:
        raise BadConfig(f"network {net!r} has no official format; known: {', '.join(NETS)}")
    it = int(record.get("iteration", 0) or 0)
    if net == "lbag":
        osd = to_official(sd, net, opts)
        opt = record.get("optimizer")
        groups = opt.get("param_groups", []) if isinstance(opt, dict) else []
        if not (len(groups) == 1 and len(groups[0]["params"]) == len(osd)):
            opt = _fresh_adam_state(len(osd), 1e-4)
        return {"global_step": it, "optimizer_states": [opt], "state_dict": {"model": osd}}, True
    if net in ("mimo-unet", "mimo-unet+"):
        return {"model": to_official(sd, net, opts)}, False
    if net == "bladenet":
        return to_official(sd, net, opts), False
    if not opts.get("signed", False):
        raise BadConfig(f"this {net} works on [0, 1] data; the official ASPDC code feeds [-1, 1] "
                        "(train with --net-opts signed=true, or keep the lodetools format)")
    if net == "aspdc-reblur":
        return {"epoch": it, "blurring_state_dict": to_official(sd, net, opts)}, False
    if net == "aspdc":
        return {"epoch": it, "deblurring_state_dict": to_official(sd, net, opts)}, False
    deb = OrderedDict((k[len("deblur."):], v) for k, v in sd.items() if k.startswith("deblur."))
    reb = OrderedDict((k[len("reblur."):], v) for k, v in sd.items() if k.startswith("reblur."))
    return {"epoch": it, "deblurring_state_dict": to_official(deb, "aspdc", opts),
            "blurring_state_dict": to_official(reb, "aspdc-reblur", opts)}, False
