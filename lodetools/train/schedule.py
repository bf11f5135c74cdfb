"""Iteration schedules: stages, learning-rate milestones, alternating phases."""

from __future__ import annotations

from lodetools.errors import BadConfig


def stage_bounds(stages: list, iters: int) -> list[tuple[int, int]]:
    """[start, stop) iterations of each stage: ``iters`` split by the stages' fractions.

    Examples
    --------
    >>> from types import SimpleNamespace as S
    >>> stage_bounds([S(fraction=0.2), S(fraction=0.8)], 10)
    [(0, 2), (2, 10)]
    """
    total = sum(s.fraction for s in stages)
    if total <= 0:
        raise BadConfig("stage fractions must add up to more than 0")
    bounds, acc, start = [], 0.0, 0
    for s in stages:
        acc += s.fraction
        stop = int(round(iters * acc / total))
        bounds.append((start, stop))
        start = stop
    return bounds


def lr_milestones(iters: int, milestones=(), step: int = 0) -> list[int]:
    """Absolute iterations at which the learning rate is multiplied by gamma.

    ``milestones`` below 1 are fractions of ``iters``, others iteration
    numbers; ``step > 0`` adds every multiple of ``step`` below ``iters``.

    Examples
    --------
    >>> lr_milestones(1000, (0.5, 900), step=400)
    [400, 500, 800, 900]
    """
    ms = [int(round(f * iters)) if f < 1 else int(f) for f in milestones]
    if step > 0:
        ms += list(range(step, iters, step))
    return sorted(ms)


def lr_factor(t: int, milestones: list, gamma: float) -> float:
    """Multi-step factor ``gamma ** #(milestones <= t)``."""
    return gamma ** sum(1 for m in milestones if m <= t)


def phase_at(lengths, u: int) -> tuple[int, int]:
    """(phase index, count of that phase's earlier steps) at stage step ``u``.

    Phase ``i`` runs ``lengths[i]`` steps, then the next one, cyclically.

    Examples
    --------
    >>> [phase_at((2, 1), u) for u in range(5)]
    [(0, 0), (0, 1), (1, 0), (0, 2), (0, 3)]
    """
    cycle = sum(lengths)
    c, r = divmod(u, cycle)
    for i, n in enumerate(lengths):
        if r < n:
            return i, c * n + r
        r -= n
    raise AssertionError("unreachable")
