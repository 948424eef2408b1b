"""A MACs budget for the search: the target, the ρ controller and the fit.

The searched subnet's MACs are linear in the live channels of the
searchable units (each unit is a kernel path: expand, depthwise and project
conv all scale with its hidden channels), so ``fixed + Σ live · MACs per
channel`` is its cost, with ``fixed`` the MACs no shrink can remove (stem,
fusions, shortcuts, head).
"""
import math
from typing import Dict, Optional

import torch

__all__ = ['resolve_budget', 'estimate_macs', 'fit_to_budget',
           'next_rho', 'budget_path']


def resolve_budget(target_macs: float, supernet_macs: float,
                   fixed_macs: float) -> float:
    """The budget in MACs: ``target_macs`` ≤ 1 is a fraction of the
    supernet's MACs, larger values are absolute MACs.

    Raises:
        ValueError: a budget above the supernet or below what no shrink
            can remove.

    Example:
        >>> resolve_budget(0.3, supernet_macs=1e9, fixed_macs=1e8)
        300000000.0
    """
    budget = float(target_macs) * supernet_macs if target_macs <= 1 \
        else float(target_macs)
    if budget > supernet_macs:
        raise ValueError(f'target_macs={target_macs} is above the supernet\'s '
                         f'{supernet_macs:.4g} MACs')
    if budget < fixed_macs:
        raise ValueError(
            f'target_macs={target_macs} ({budget:.4g} MACs) is below the '
            f'{fixed_macs:.4g} MACs ({fixed_macs / supernet_macs:.1%} of the '
            'supernet) held outside the searchable units (stem, fusions, '
            'head), which no shrink removes')
    return budget


def estimate_macs(counts: Dict[str, int], macs_per_channel: Dict[str, float],
                  fixed_macs: float) -> float:
    """MACs of a subnet with ``counts[unit]`` live channels per unit."""
    return fixed_macs + sum(n * macs_per_channel.get(name, 0.0)
                            for name, n in counts.items())


def fit_to_budget(live: Dict[str, torch.Tensor],
                  magnitude: Dict[str, torch.Tensor],
                  macs_per_channel: Dict[str, float],
                  fixed_macs: float,
                  budget: float,
                  divisor: int = 1,
                  trim: bool = False) -> Dict[str, torch.Tensor]:
    """The live masks adjusted so that the subnet's MACs stay at or under
    ``budget`` and never fall under it by more than one group of
    ``divisor`` channels.

    Dead channels are revived, largest magnitude first over all units,
    while they fit under the budget: a shrink never removes more than the
    budget asks. With ``trim`` (the last shrink) live channels are also
    removed, smallest magnitude first, until the subnet fits. Channels move
    in groups of ``divisor`` per unit, so widths that are multiples of it
    stay so.

    Args:
        live: ``{unit: bool mask of live channels}`` (multiples of
            ``divisor`` or zero when ``divisor > 1``).
        magnitude: ``{unit: |γ| per channel}``, the ranking.
        macs_per_channel: ``{unit: MACs per channel}``.
        fixed_macs: MACs outside the units (see :func:`estimate_macs`).
        budget: The budget in MACs.
        divisor: Channels per group.
        trim: Also remove live channels when over the budget.

    Returns:
        dict: ``{unit: bool mask}`` for every unit of ``live``.

    Example:
        >>> live = {'a': torch.tensor([True, False, False, False])}
        >>> mag = {'a': torch.tensor([4., 3., 2., 1.])}
        >>> fit_to_budget(live, mag, {'a': 10.}, 0., budget=30.)['a']
        tensor([ True,  True,  True, False])
    """
    out = {name: mask.clone() for name, mask in live.items()}
    order = {name: torch.argsort(magnitude[name].float(), descending=True)
             for name in live}
    counts = {name: int(mask.sum()) for name, mask in out.items()}
    macs = estimate_macs(counts, macs_per_channel, fixed_macs)

    if macs < budget:
        # Dead groups of every unit, each ranked by its weakest channel
        # (so a unit's groups come in its own order).
        candidates = []
        for name, mask in out.items():
            dead = order[name][~mask[order[name]]].tolist()
            for start in range(0, len(dead) - divisor + 1, divisor):
                chunk = dead[start:start + divisor]
                candidates.append(
                    (float(magnitude[name][chunk[-1]]), name, chunk))
        candidates.sort(key=lambda c: -c[0])
        for _, name, chunk in candidates:
            # A unit's groups all cost the same, so once one does not fit
            # none of its weaker ones does: they revive in order.
            cost = len(chunk) * macs_per_channel.get(name, 0.0)
            if macs + cost <= budget:
                out[name][chunk] = True
                macs += cost
    elif trim and macs > budget:
        # Live groups from each unit's weakest end, weakest first.
        candidates = []
        for name, mask in out.items():
            alive = order[name][mask[order[name]]].tolist()
            for end in range(len(alive), 0, -divisor):
                chunk = alive[max(end - divisor, 0):end]
                candidates.append(
                    (float(magnitude[name][chunk[0]]), name, chunk))
        # Stable sort: on ties a unit's weaker group still goes first.
        candidates.sort(key=lambda c: c[0])
        for _, name, chunk in candidates:
            if macs <= budget:
                break
            out[name][chunk] = False
            macs -= len(chunk) * macs_per_channel.get(name, 0.0)
    return out


def budget_path(progress: float, supernet_macs: float,
                budget: float) -> float:
    """Where the subnet's MACs should be at ``progress`` (0 → 1) of the
    run: straight from the supernet to the budget."""
    progress = min(max(progress, 0.0), 1.0)
    return supernet_macs - (supernet_macs - budget) * progress


def next_rho(rho: float, macs: float, target: float,
             max_step: float = 2.0, limits: Optional[tuple] = None) -> float:
    """ρ after one event: scaled by ``macs / target`` (more penalty while
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
