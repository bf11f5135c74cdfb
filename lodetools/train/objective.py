"""The training loss of each network, for the trainer and for loops written by hand."""

from __future__ import annotations

from lodetools.errors import BadConfig


def training_loss(net: str, model, batch: dict, weights: dict | None = None, *, phase: str | None = None):
    """The loss ``lodetools train <net>`` minimises, on one batch.

    Each network's default equals its authors' training code on the same
    tensors (where the paper differs, ``weights={'variant': 'paper'}``
    selects the paper's form; see each spec module:
    :mod:`lodetools.train.spec_lbag`, :mod:`~lodetools.train.spec_bladenet`,
    :mod:`~lodetools.train.spec_aspdc`, :mod:`~lodetools.train.spec_simplenet`).
    Official is the default so that a model trained here is the model the
    authors' code trains, whose numbers the papers report.

    Parameters
    ----------
    net : str
        ``'lbag'``, ``'bladenet'``, ``'simplenet'`` or ``'aspdc'``.
    model : callable
        The network, called on ``batch['blur']`` (as built by
        :func:`lodetools.train.registry.build_model`; ASPDC's model also has
        ``deblur`` and ``reblur`` parts).
    batch : dict
        ``'blur'``, ``'sharp'`` (B, 3, H, W) and ``'mask'`` (B, 1, H, W)
        tensors in [0, 1].
    weights : dict, optional
        Overrides of the network's loss weights and options
        (``TrainSpec.loss_defaults``), e.g. ``{'gate': 0.01}``.
    phase : str, optional
        ``"stage/phase"`` or a phase name, for networks trained in stages
        (e.g. ``'lbp'`` for BladeNet's LBP pretraining). Default: the last
        stage's last phase, the network's full objective (LBAG's loss,
        BladeNet's joint local-blur loss, ASPDC's consistency loss,
        SimpleNet's L1).

    Returns
    -------
    total : scalar tensor
    terms : dict of str -> scalar tensor
        The loss's terms, detached (for logging).

    Raises
    ------
    BadConfig
        An unknown network, loss weight or phase.
    """
    from lodetools.train.registry import get_spec
    spec = get_spec(net)
    w = dict(spec.loss_defaults)
    unknown = set(weights or {}) - set(w)
    if unknown:
        raise BadConfig(f"unknown loss weight(s) {', '.join(sorted(unknown))} for {net}; known: {', '.join(w)}")
    w.update(weights or {})
    phases = [(f"{s.name}/{p.name}", p) for s in spec.stages(w) for p in s.phases]
    if phase is None:
        chosen = phases[-1][1]
    else:
        hits = [p for full, p in phases if phase in (full, full.split("/")[1])]
        if not hits:
            raise BadConfig(f"unknown phase {phase!r} for {net}; phases: {', '.join(f for f, _ in phases)}")
        chosen = hits[-1]
    return chosen.loss(model, batch, w)
