"""Subnets of a supernet that benchmarks time and count: shrunk to a MACs
share, fitted to a cost budget, rounded to a channel divisor, pruned with
the masks baked in.

Each keeps, per searchable unit, its largest-|γ| channels, the ranking the
search hook uses; :func:`randomise_gammas` gives an untrained supernet a
ranking that is not the init's tie.
"""
import copy
from typing import Dict, Sequence, Tuple

import torch
import torch.nn as nn

__all__ = [
    'randomise_gammas', 'unit_macs', 'top_gamma', 'shrink_to_counts',
    'shrink_to_macs', 'divisor_pair', 'prune_and_bake', 'fit_subnet',
    'macs_cost_model'
]


def randomise_gammas(model: nn.Module, seed: int = 0) -> None:
    """|γ| ~ U(0.01, 1) for every searchable channel: a stand-in for a
    trained supernet's scales, so that ranking channels by |γ| is not a
    tie-break of the init (γ = 1)."""
    from mmsupertickets.structures.searchable import find_searchable_units
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for u in find_searchable_units(model):
            w = u.norm.weight
            w.copy_(torch.rand(w.shape, generator=g) * 0.99 + 0.01)


def unit_macs(estimator, model: nn.Module) -> Dict[str, int]:
    """MACs of each searchable unit of ``model``, by unit name.

    Summed over the unit's conv layers, the convention complexity() counts
    by (a module-level count would add its BNs). Each unit's MACs are
    linear in its channels (1×1 expand, depthwise, 1×1 project).

    Args:
        estimator (ResourceEstimator): Counts at the benchmark's shape.
        model (nn.Module): The model holding the units.
    """
    from mmsupertickets.structures.searchable import find_searchable_units
    macs = dict.fromkeys((u.name for u in find_searchable_units(model)), 0)
    for layer, n in estimator.layer_macs(model).items():
        # '<unit>.project' or '<unit>.expand.conv' / '<unit>.depthwise.conv'
        parts = layer.split('.')
        for owner in ('.'.join(parts[:-1]), '.'.join(parts[:-2])):
            if owner in macs:
                macs[owner] += n
                break
    return macs


def top_gamma(unit, num: int) -> torch.Tensor:
    """Sorted indices of the ``num`` largest-|γ| channels of a unit."""
    order = unit.norm.weight.detach().abs().argsort(descending=True)
    return order[:num].sort().values


def shrink_to_counts(model: nn.Module, counts: Dict[str, int]) -> None:
    """Keep the ``counts[unit]`` largest-|γ| channels of each listed unit
    (0 removes the unit), in place."""
    from mmsupertickets.structures.searchable import find_searchable_units
    from mmsupertickets.structures.shrink_plan import (
        apply_plan,
        plan_channel_removal,
    )
    keep = {u.name: top_gamma(u, counts[u.name])
            for u in find_searchable_units(model)
            if counts.get(u.name, u.channels) < u.channels}
    apply_plan(model, plan_channel_removal(model, keep))


def shrink_to_macs(model: nn.Module, shape: Sequence[int],
                   fraction: float) -> Tuple[dict, dict]:
    """Remove the lowest-|γ| channels of every unit until MACs ≈ fraction.

    Each unit's MACs are linear in its channels, so one count of the
    supernet gives the share ``f`` of every unit's channels to keep:
    fixed + f · searchable = fraction · total. Every unit keeps its
    ``round(f · channels)`` (at least 1) largest-|γ| channels.

    Returns:
        tuple: complexity of the model before and after (from
        :func:`mmsupertickets.flops.complexity`, at ``shape``).
    """
    from mmsupertickets.flops import ResourceEstimator
    from mmsupertickets.structures.searchable import find_searchable_units
    estimator = ResourceEstimator(shape)
    before = estimator.complexity(model)
    searchable = sum(unit_macs(estimator, model).values())
    fixed = before['macs'] - searchable
    keep_share = (fraction * before['macs'] - fixed) / max(searchable, 1)
    if not 0 < keep_share <= 1:
        raise ValueError(f'MACs fraction {fraction} is out of reach: the '
                         f'unsearchable layers alone hold '
                         f'{fixed / before["macs"]:.2f} of the MACs')
    shrink_to_counts(model, {
        u.name: max(1, int(round(keep_share * u.channels)))
        for u in find_searchable_units(model)})
    return before, estimator.complexity(model)


def divisor_pair(supernet, shape, fraction, divisor=8):
    """Subnets of ``supernet`` with free widths and with widths a multiple
    of ``divisor``, at about ``fraction`` of its MACs and equal MACs.

    The free one is :func:`shrink_to_macs`'s. The rounded one rounds each
    unit's kept set with
    :func:`~mmsupertickets.structures.channel_rounding.round_live_channels`
    and then moves ``divisor`` channels at a time, greedily, while a move
    brings its MACs (estimated per unit, linear in the channels) closer to
    the free one's. Every unit keeps its largest-|γ| channels.

    Args:
        supernet (nn.Module): The model with its |γ| (not modified).
        shape (Sequence[int]): (H, W) of the MAC counts.
        fraction (float): MACs of the subnets / MACs of the supernet.
        divisor (int): Channel divisor of the rounded subnet.

    Returns:
        tuple: ``(free, rounded, free_cost, rounded_cost)``, the costs
        from :func:`mmsupertickets.flops.complexity` at ``shape``.
    """
    from mmsupertickets.flops import ResourceEstimator
    from mmsupertickets.structures.channel_rounding import round_live_channels
    from mmsupertickets.structures.searchable import find_searchable_units
    free = copy.deepcopy(supernet)
    _, free_cost = shrink_to_macs(free, shape, fraction)
    free_counts = {u.name: u.channels for u in find_searchable_units(free)}
    units = {u.name: u for u in find_searchable_units(supernet)}
    estimator = ResourceEstimator(shape)
    # A unit's MACs are linear in its channels: the free subnet (every
    # unit kept, narrower) gives the same MACs per channel as the supernet
    # at a cheaper trace.
    per_channel = {n: macs / free_counts[n]
                   for n, macs in unit_macs(estimator, free).items()}
    counts = {}
    for name, u in units.items():
        # The free subnet keeps the largest-|γ| channels: the live set the
        # hook would round.
        live = torch.zeros(u.channels, dtype=torch.bool)
        live[top_gamma(u, free_counts.get(name, 0))] = True
        counts[name] = int(round_live_channels(
            live, u.norm.weight.detach().abs(), divisor).sum())
    # MACs still to add (negative: to remove) to match the free subnet.
    gap = sum((free_counts.get(n, 0) - c) * per_channel[n]
              for n, c in counts.items())
    while True:
        moves = [(abs(gap - step * per_channel[n]), n, step)
                 for n, u in units.items() for step in (divisor, -divisor)
                 if 0 <= counts[n] + step <= u.channels]
        best = min(moves, default=None)
        if best is None or best[0] >= abs(gap):
            break
        _, name, step = best
        counts[name] += step
        gap -= step * per_channel[name]
    rounded = copy.deepcopy(supernet)
    shrink_to_counts(rounded, counts)
    return free, rounded, free_cost, estimator.complexity(rounded)


def prune_and_bake(model, sparsity):
    """Global magnitude masks on the prunable weights, baked in.

    Returns:
        dict: ``{weight name: bool keep-mask}``.
    """
    from mmsupertickets.pruning.prunable import prunable_weights
    from mmsupertickets.pruning.scorers import magnitude_scores
    from mmsupertickets.pruning.selection import select_global
    from mmsupertickets.structures.masks import WeightMasks
    weights = prunable_weights(model)
    masks = WeightMasks()
    for name, keep in select_global(magnitude_scores(weights),
                                    sparsity).items():
        masks.set(model, name, keep)
    masks.bake(model)
    # An exported ticket is a plain model: zeros stored, no mask hooks.
    masks.detach_all()
    return masks.state_dict()


def fit_subnet(supernet, cost, budget, divisor):
    """A copy of ``supernet`` shrunk by the search hook's budget fit
    (:func:`~mmsupertickets.structures.macs_budget.fit_cost` with
    ``trim``): every unit keeps its largest-|γ| channels, a multiple of
    ``divisor``, until the cost is at or just under ``budget``."""
    from mmsupertickets.structures.channel_rounding import round_live_channels
    from mmsupertickets.structures.macs_budget import fit_cost
    from mmsupertickets.structures.searchable import find_searchable_units
    units = find_searchable_units(supernet)
    magnitude = {u.name: u.norm.weight.detach().abs() for u in units}
    live = {u.name: round_live_channels(
        torch.ones(u.channels, dtype=torch.bool), magnitude[u.name],
        divisor) for u in units}
    live = fit_cost(live, magnitude, cost, budget, divisor, trim=True)
    net = copy.deepcopy(supernet)
    shrink_to_counts(net, {n: int(m.sum()) for n, m in live.items()})
    return net


def macs_cost_model(estimator, supernet, total_macs):
    """The MACs cost of ``supernet``'s subnets
    (:class:`~mmsupertickets.structures.macs_budget.LinearCost`), what
    ``target_macs`` fits under."""
    from mmsupertickets.latency import unit_widths
    from mmsupertickets.structures.macs_budget import LinearCost
    macs = estimator.module_macs(supernet)
    widths = unit_widths(supernet)
    return LinearCost(
        {n: macs.get(n, 0) / c for n, c in widths.items()},
        total_macs - sum(macs.get(n, 0) for n in widths))
