"""What SuperNetSearchHook fixes at the start of a search and keeps in
checkpoints, and how earlier checkpoints' state is read."""
from typing import Dict, List

from mmsupertickets.structures.macs_budget import per_channel_cost

__all__ = [
    'SEARCH_STATE_KEYS', 'search_state', 'restore_search_state',
    'per_channel', 'penalty_weights'
]

# Fixed at the start of the search (profiling, budget) or steered during it
# (controlled_rho); the rest of the saved state is the hook's config, kept
# to refuse a resume with another cost.
SEARCH_STATE_KEYS = ('penalty_weights', 'macs_per_channel',
                     'guard_macs_per_channel', 'supernet_cost',
                     'input_shape', 'channel_divisor', 'rho', 'target_macs',
                     'cost', 'target_latency', 'cost_fixed',
                     'controlled_rho')


def per_channel(macs: Dict[str, float], units: List) -> Dict[str, float]:
    """Each unit's MACs per channel, from ``{module name: MACs}``.

    Example:
        >>> from types import SimpleNamespace
        >>> per_channel({'a': 80.0}, [SimpleNamespace(name='a', channels=8)])
        {'a': 10.0}
    """
    return {u.name: macs.get(u.name, 0) / max(u.channels, 1) for u in units}


def penalty_weights(cost, widths: Dict[str, int]) -> Dict[str, float]:
    """The γ penalty weight of each unit: its cost per channel over the
    channel-weighted mean cost per channel (so the mean weight is 1).

    Example:
        >>> from mmsupertickets.structures.macs_budget import LinearCost
        >>> cost = LinearCost({'a': 1.0, 'b': 3.0})
        >>> penalty_weights(cost, {'a': 2, 'b': 2})
        {'a': 0.5, 'b': 1.5}
    """
    per_unit = per_channel_cost(cost, widths)
    mean = sum(per_unit[n] * c for n, c in widths.items()) / max(
        sum(widths.values()), 1)
    return {n: p / mean for n, p in per_unit.items()}


def search_state(hook) -> Dict:
    """The state ``hook`` saves under ``ticket_state['search']``.

    Example:
        >>> from mmsupertickets.engine.hooks import SuperNetSearchHook
        >>> state = search_state(SuperNetSearchHook())
        >>> state['cost'], state['budget_macs'], state['penalty_weights']
        ('macs', None, {})
    """
    state = {key: getattr(hook, key) for key in SEARCH_STATE_KEYS}
    state[f'budget_{hook.cost}'] = hook.budget
    state[f'fixed_{hook.cost}'] = hook.fixed_cost
    return state


def restore_search_state(hook, state: Dict) -> None:
    """Put a checked saved ``state`` back into ``hook``, reading the state
    of earlier checkpoints too.

    Raises:
        ValueError: the checkpoint was searched with another cost.
    """
    if state.get('cost', 'macs') != hook.cost:
        raise ValueError(
            f'the checkpoint was searched with cost='
            f'{state.get("cost", "macs")!r}, this hook has cost='
            f'{hook.cost!r}: resume with the same cost')
    hook.penalty_weights = dict(state['penalty_weights'])
    hook.macs_per_channel = dict(state['macs_per_channel'])
    # Checkpoints from before the guard had its own size counted it at
    # input_shape.
    hook.guard_macs_per_channel = dict(
        state.get('guard_macs_per_channel', state['macs_per_channel']))
    hook.supernet_cost = dict(state['supernet_cost'])
    hook.input_shape = state['input_shape']  # checked on read
    # Checkpoints from before the budget had none.
    hook.budget = state.get(f'budget_{hook.cost}')
    hook.fixed_cost = state.get(f'fixed_{hook.cost}', 0.0)
    # Before it was saved, only the search's fixed MACs were.
    hook.cost_fixed = state.get('cost_fixed', hook.fixed_cost)
    hook.controlled_rho = state.get('controlled_rho', hook.rho)
