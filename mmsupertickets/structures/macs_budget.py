"""A cost budget for the search: the target, the ρ controller and the fit.

The search weighs channels by a *cost model*: an object with ``key`` (the
name of its quantity in logs and saved state, e.g. ``'macs'``),
``unit_name`` (e.g. ``'MACs'``, for messages), ``fixed``
(the cost no shrink can remove: stem, fusions, shortcuts, head),
``unit(name, n)`` (the cost of unit ``name`` with ``n`` live channels) and
``total(counts)`` (``fixed`` plus every unit's cost). MACs are one such
model (:class:`LinearCost`): a searchable unit is a kernel path whose
expand, depthwise and project conv all scale with its hidden channels, so
its MACs are linear in them. Measured latency is another
(:class:`mmsupertickets.latency.LatencyCost`), not linear in the widths.
"""
import math
from typing import Dict, Optional

import torch

__all__ = ['LinearCost', 'per_channel_cost', 'resolve_budget', 'steer_rho',
           'estimate_macs', 'fit_cost', 'fit_to_budget', 'next_rho',
           'budget_path']


class LinearCost:
    """``fixed + Σ n · per_channel[unit]``: the MACs cost model.

    Args:
        per_channel (dict): ``{unit: cost per live channel}``.
        fixed (float): Cost outside the units. Defaults to 0.
        key (str): Name of the quantity. Defaults to ``'macs'``.
        unit (str): Its unit, for messages. Defaults to ``'MACs'``.

    Example:
        >>> LinearCost({'a': 10.0}, fixed=5.0).total({'a': 3})
        35.0
    """

    def __init__(self, per_channel: Dict[str, float], fixed: float = 0.0,
                 key: str = 'macs', unit: str = 'MACs'):
        self.per_channel = dict(per_channel)
        self.fixed = float(fixed)
        self.key = key
        self.unit_name = unit

    def unit(self, name: str, n: float) -> float:
        return n * self.per_channel.get(name, 0.0)

    def total(self, counts: Dict[str, float]) -> float:
        return self.fixed + sum(self.unit(name, n)
                                for name, n in counts.items())


def per_channel_cost(cost, widths: Dict[str, int]) -> Dict[str, float]:
    """Each unit's cost per channel at ``widths`` (its whole cost shared
    by its channels): what the γ penalty weighs a channel by.

    Example:
        >>> per_channel_cost(LinearCost({'a': 10.0}), {'a': 4})
        {'a': 10.0}
    """
    return {name: cost.unit(name, c) / max(c, 1)
            for name, c in widths.items()}


def resolve_budget(target: float, supernet_macs: float, fixed_macs: float,
                   key: str = 'target_macs', unit: str = 'MACs') -> float:
    """The budget: ``target`` ≤ 1 is a fraction of the supernet's cost,
    larger values are absolute (MACs, or milliseconds for latency).

    Args:
        target: The config's value (``target_macs``/``target_latency``).
        supernet_macs: The supernet's cost (MACs, or the cost's unit).
        fixed_macs: The cost that no shrink can remove (same unit).
        key: The config key, for messages. Defaults to ``'target_macs'``.
        unit: The cost's unit, for messages. Defaults to ``'MACs'``.

    Raises:
        ValueError: a budget above the supernet or below what no shrink
            can remove.

    Example:
        >>> resolve_budget(0.3, supernet_macs=1e9, fixed_macs=1e8)
        300000000.0
    """
    supernet, fixed = supernet_macs, fixed_macs
    budget = float(target) * supernet if target <= 1 else float(target)
    if budget > supernet:
        raise ValueError(f'{key}={target} is above the supernet\'s '
                         f'{supernet:.4g} {unit}')
    if budget < fixed:
        raise ValueError(
            f'{key}={target} ({budget:.4g} {unit}) is below the '
            f'{fixed:.4g} {unit} ({fixed / supernet:.1%} of the '
            'supernet) held outside the searchable units (stem, fusions, '
            'head), which no shrink removes')
    return budget


def estimate_macs(counts: Dict[str, int], macs_per_channel: Dict[str, float],
                  fixed_macs: float) -> float:
    """MACs of a subnet with ``counts[unit]`` live channels per unit."""
    return LinearCost(macs_per_channel, fixed_macs).total(counts)


def fit_cost(live: Dict[str, torch.Tensor],
             magnitude: Dict[str, torch.Tensor],
             cost,
             budget: float,
             divisor: int = 1,
             trim: bool = False,
             other: Optional[Dict[str, int]] = None
             ) -> Dict[str, torch.Tensor]:
    """The live masks adjusted so that the subnet's cost stays at or under
    ``budget`` and never falls under it by more than one group of
    ``divisor`` channels.

    Dead channels are revived, largest magnitude first over all units,
    while they fit under the budget: a shrink never removes more than the
    budget asks. With ``trim`` (the last shrink) live channels are also
    removed, smallest magnitude first, until the subnet fits. Channels move
    in groups of ``divisor`` per unit, so widths that are multiples of it
    stay so. A group costs what the unit's cost changes by (a cost need not
    be linear in the channels); once a unit's group does not fit, none of
    its weaker groups is revived, so a unit always keeps its strongest.

    Args:
        live: ``{unit: bool mask of live channels}`` (multiples of
            ``divisor`` or zero when ``divisor > 1``).
        magnitude: ``{unit: |γ| per channel}``, the ranking.
        cost: A cost model (see the module docstring).
        budget: The budget, in the cost's unit.
        divisor: Channels per group.
        trim: Also remove live channels when over the budget.
        other: Live channels of units that are counted but never changed
            (frozen ones). Defaults to None.

    Returns:
        dict: ``{unit: bool mask}`` for every unit of ``live``.
    """
    out = {name: mask.clone() for name, mask in live.items()}
    order = {name: torch.argsort(magnitude[name].float(), descending=True)
             for name in live}
    counts = {name: int(mask.sum()) for name, mask in out.items()}
    total = cost.total({**(other or {}), **counts})

    def step(name, chunk, sign):
        # What the subnet's cost changes by when ``chunk`` comes (+1) or
        # goes (-1).
        after = counts[name] + sign * len(chunk)
        return cost.unit(name, after) - cost.unit(name, counts[name])

    if total < budget:
        full = set()
        for _, name, chunk in _dead_groups(out, order, magnitude, divisor):
            if name in full:
                continue
            delta = step(name, chunk, +1)
            if total + delta <= budget:
                out[name][chunk] = True
                counts[name] += len(chunk)
                total += delta
            else:
                full.add(name)
    elif trim and total > budget:
        for _, name, chunk in _live_groups(out, order, magnitude, divisor):
            if total <= budget:
                break
            total += step(name, chunk, -1)
            out[name][chunk] = False
            counts[name] -= len(chunk)
    return out


def _dead_groups(live, order, magnitude, divisor) -> list:
    """``(rank, unit, channels)`` of the dead groups of every unit,
    strongest first; a group ranks by its weakest channel, so a unit's
    groups come in its own order."""
    groups = []
    for name, mask in live.items():
        dead = order[name][~mask[order[name]]].tolist()
        for start in range(0, len(dead) - divisor + 1, divisor):
            chunk = dead[start:start + divisor]
            groups.append((float(magnitude[name][chunk[-1]]), name, chunk))
    groups.sort(key=lambda c: -c[0])
    return groups


def _live_groups(live, order, magnitude, divisor) -> list:
    """``(rank, unit, channels)`` of the live groups from each unit's
    weakest end, weakest first."""
    groups = []
    for name, mask in live.items():
        alive = order[name][mask[order[name]]].tolist()
        for end in range(len(alive), 0, -divisor):
            chunk = alive[max(end - divisor, 0):end]
            groups.append((float(magnitude[name][chunk[0]]), name, chunk))
    # Stable sort: on ties a unit's weaker group still goes first.
    groups.sort(key=lambda c: c[0])
    return groups


def fit_to_budget(live: Dict[str, torch.Tensor],
                  magnitude: Dict[str, torch.Tensor],
                  macs_per_channel: Dict[str, float],
                  fixed_macs: float,
                  budget: float,
                  divisor: int = 1,
                  trim: bool = False) -> Dict[str, torch.Tensor]:
    """:func:`fit_cost` under a MACs budget (:class:`LinearCost`).

    Example:
        >>> live = {'a': torch.tensor([True, False, False, False])}
        >>> mag = {'a': torch.tensor([4., 3., 2., 1.])}
        >>> fit_to_budget(live, mag, {'a': 10.}, 0., budget=30.)['a']
        tensor([ True,  True,  True, False])
    """
    return fit_cost(live, magnitude, LinearCost(macs_per_channel,
                                                fixed_macs),
                    budget, divisor, trim)


def budget_path(progress: float, supernet: float, budget: float) -> float:
    """Where the subnet's cost should be at ``progress`` (0 → 1) of the
    run: straight from the supernet to the budget."""
    progress = min(max(progress, 0.0), 1.0)
    return supernet - (supernet - budget) * progress


def next_rho(rho: float, macs: float, target: float,
             max_step: float = 2.0, limits: Optional[tuple] = None) -> float:
    """ρ after one event: scaled by ``macs / target`` (the subnet's cost,
    MACs or another, over where it should be: more penalty while
    the subnet is above where it should be, less below), at most by
    ``max_step`` either way and within ``limits``.

    Example:
        >>> next_rho(1e-3, macs=150., target=100.)
        0.0015
        >>> next_rho(1e-3, macs=50., target=100.)
        0.0005
    """
    ratio = macs / max(target, 1e-12)
    step = math.exp(min(max(math.log(max(ratio, 1e-12)),
                            -math.log(max_step)), math.log(max_step)))
    rho = rho * step
    if limits is not None:
        rho = min(max(rho, limits[0]), limits[1])
    return rho


def steer_rho(controlled: float, rho: float, cost: float, progress: float,
              supernet: float, budget: float, key: str = 'macs'):
    """One step of the budget controller: the subnet costs ``cost`` at
    ``progress`` of the run; ρ is scaled towards the budget path, within
    1e-4× and 1e4× of the starting ``rho`` (no run is driven to no penalty
    or to one that kills every channel at once).

    Returns:
        tuple: the next controlled ρ, and what the event log shows.

    Example:
        >>> rho, info = steer_rho(1e-3, 1e-3, cost=80., progress=0.5,
        ...                       supernet=100., budget=40.)
        >>> round(rho, 6), round(info['macs_gap'], 2)
        (0.001143, 1.0)
    """
    path = budget_path(progress, supernet, budget)
    following = next_rho(controlled, cost, path,
                         limits=(rho * 1e-4, rho * 1e4))
    return following, {
        f'target_{key}': budget, f'path_{key}': path,
        f'{key}_gap': cost / budget - 1, 'controlled_rho': controlled,
        'next_rho': following}
