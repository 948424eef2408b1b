"""Checked values: hook arguments and the ticket state read back from files.

Every number, input shape, name list and mask that a config, a command-line
override or a checkpoint hands to the project passes one of these checks
where it enters, so a bad value is refused there with its key, the value
and what is allowed: not ten iterations later as a ``TypeError``, and not
as a NaN that compares False with every bound (``nan < 0`` is False, so a
check written ``if x < 0: raise`` lets it through). Each check is written
so that NaN fails it.

Example:
    >>> check_number(1e-3, 'rho', low=0)
    0.001
    >>> check_number('1e-3', 'rho', low=0)
    Traceback (most recent call last):
    ...
    ValueError: rho='1e-3' must be a finite number >= 0, got a str
    >>> check_input_shape([512, 1024], 'input_shape')
    [512, 1024]
"""
import math
import numbers
import re
from typing import Dict, Iterable, List, Optional, Sequence

import torch

__all__ = [
    'MAX_INPUT_SIDE', 'check_number', 'check_input_shape', 'check_choice',
    'check_flag', 'check_cost', 'batch_image_shape', 'check_patterns',
    'check_mask', 'check_masks', 'check_ticket_section', 'first_non_finite'
]

# The largest image side the project counts costs at or profiles with:
# 8192 x 8192 already takes minutes to count on a CPU; a side read from a
# file beyond it is a corrupt or hostile value, not an image size.
MAX_INPUT_SIDE = 8192


def _bounds_text(low, high, low_open, high_open) -> str:
    if low is not None and high is not None:
        return (f'in {"(" if low_open else "["}{low:g}, '
                f'{high:g}{")" if high_open else "]"}')
    if low is not None:
        return f'{">" if low_open else ">="} {low:g}'
    if high is not None:
        return f'{"<" if high_open else "<="} {high:g}'
    return ''


def check_number(value, key: str, low: Optional[float] = None,
                 high: Optional[float] = None, *, low_open: bool = False,
                 high_open: bool = False, integer: bool = False,
                 allow_none: bool = False):
    """``value`` as an int or float after checking it is a finite number in
    the range; bools and strings are refused, not converted.

    Args:
        value: The value to check.
        key (str): Its config key or field name, for the message.
        low, high (float, optional): Bounds; None for none.
        low_open, high_open (bool): Exclude the bound itself.
        integer (bool): Whole numbers only (``4.0`` is taken as 4).
        allow_none (bool): Let None through (an optional setting).

    Raises:
        ValueError: naming ``key``, the value and the allowed range.

    Example:
        >>> check_number(0, 'target_macs', 0, low_open=True)
        Traceback (most recent call last):
        ...
        ValueError: target_macs=0 must be > 0: out of range
    """
    if value is None and allow_none:
        return None
    bounds = _bounds_text(low, high, low_open, high_open)
    kind = 'a whole number' if integer else 'a finite number'
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f'{key}={value!r} must be {kind} {bounds}, got a '
                         f'{type(value).__name__}'.replace('  ', ' '))
    if not math.isfinite(value) or (integer and
                                    not float(value).is_integer()):
        raise ValueError(f'{key}={value!r} must be {kind} {bounds}'.strip())
    value = int(value) if integer or isinstance(value, int) else float(
        value)
    # Written so that a NaN could not pass either (it is refused above).
    ok = ((low is None or (value > low if low_open else value >= low))
          and (high is None or (value < high if high_open else value <= high)))
    if not ok:
        raise ValueError(f'{key}={value!r} must be {bounds}: out of range')
    return value


def check_input_shape(value, key: str,
                      allow_none: bool = False) -> Optional[List[int]]:
    """``(H, W)`` as a list of two ints in ``[1, MAX_INPUT_SIDE]``.

    Raises:
        ValueError: naming ``key``, the value and the allowed sides.

    Example:
        >>> check_input_shape([60000, 60000], 'search.input_shape')
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: search.input_shape=[60000, 60000] must be (H, W): ...
    """
    if value is None and allow_none:
        return None
    what = (f'{key}={value!r} must be (H, W): two whole numbers in [1, '
            f'{MAX_INPUT_SIDE}] (a larger side is refused, not counted)')
    if isinstance(value, (str, bytes)) or not isinstance(
            value, (Sequence, torch.Size)) or len(value) != 2:
        raise ValueError(what)
    try:
        return [check_number(v, key, 1, MAX_INPUT_SIDE, integer=True)
                for v in value]
    except ValueError:
        raise ValueError(what) from None


def batch_image_shape(data_batch) -> list:
    """(H, W) of the first image of an mmengine data batch, for the search
    hook's profiling when ``input_shape`` is not set.

    Example:
        >>> import torch
        >>> batch_image_shape(dict(inputs=[torch.zeros(3, 32, 64)]))
        [32, 64]
    """
    inputs = data_batch.get('inputs') if isinstance(data_batch,
                                                    dict) else None
    if inputs is None:
        raise ValueError('input_shape is not set and cannot be read from '
                         'the batch: give input_shape=(H, W)')
    return list(inputs[0].shape[-2:])


# What SuperNetSearchHook can weigh channels by.
COSTS = ('macs', 'latency')


def check_cost(cost, latency_table, target_macs, target_latency) -> str:
    """``cost`` if it is one of :data:`COSTS` and goes with the other
    arguments of the search hook.

    Example:
        >>> check_cost('latency', None, None, None)
        Traceback (most recent call last):
        ...
        ValueError: cost='latency' needs latency_table (a table written by tools/analysis/latency_table.py)
    """  # noqa: E501
    if cost not in COSTS:
        raise ValueError(f'cost={cost!r} is not one of {COSTS}')
    if cost == 'latency' and latency_table is None:
        raise ValueError('cost=\'latency\' needs latency_table (a table '
                         'written by tools/analysis/latency_table.py)')
    wrong, value = ('target_latency', target_latency) if cost == 'macs' \
        else ('target_macs', target_macs)
    if value is not None:
        raise ValueError(f'{wrong}={value} does not go with cost={cost!r}: '
                         f'set target_{cost} instead')
    return cost


def check_choice(value, key: str, choices: Sequence,
                 allow_none: bool = False):
    """``value`` if it is one of ``choices`` (or None when allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool) \
            and value in choices:
        return value
    extra = 'None or ' if allow_none else ''
    raise ValueError(f'{key}={value!r} is unknown; choose {extra}one of '
                     f'{list(choices)}')


def check_flag(value, key: str) -> bool:
    """``value`` if it is True or False (``'false'`` is a true string)."""
    if not isinstance(value, bool):
        raise ValueError(f'{key}={value!r} must be True or False, got a '
                         f'{type(value).__name__}')
    return value


def check_patterns(value, key: str) -> tuple:
    """A sequence of valid regular expressions, as a tuple of strings.

    A bare string is refused: iterated, it would be a list of characters.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(f'{key}={value!r} must be a list of regular '
                         'expressions (a single one goes in a list)')
    patterns = tuple(value)
    for p in patterns:
        if not isinstance(p, str):
            raise ValueError(f'{key}: {p!r} is not a string')
        try:
            re.compile(p)
        except re.error as e:
            raise ValueError(f'{key}: {p!r} is not a regular expression '
                             f'({e})') from None
    return patterns


# -- masks -----------------------------------------------------------------
def check_mask(mask, name: str, shape: Optional[Sequence[int]] = None,
               source: str = 'the masks') -> torch.Tensor:
    """A keep-mask: a bool tensor (of ``shape`` when given).

    Float or integer masks are refused rather than cast: ``0.5`` or ``2``
    is no keep/drop decision.
    """
    if not torch.is_tensor(mask):
        raise ValueError(f'{source}: the mask of {name!r} must be a bool '
                         f'tensor, got a {type(mask).__name__}')
    if mask.dtype != torch.bool:
        raise ValueError(f'{source}: the mask of {name!r} must be a bool '
                         f'tensor, got dtype {mask.dtype}')
    if shape is not None and tuple(mask.shape) != tuple(shape):
        raise ValueError(f'{source}: the mask of {name!r} has shape '
                         f'{tuple(mask.shape)} but the weight has '
                         f'{tuple(shape)}')
    return mask


def check_masks(masks, source: str = 'the masks') -> Dict[str, torch.Tensor]:
    """``{weight name: bool keep-mask}``, refusing masks that keep nothing.

    A single all-False mask is fine (global ranking may empty a small
    layer); masks that keep none of their weights would be a ticket of
    sparsity 1.0, which no sparsity in [0, 1) asks for.
    """
    if not isinstance(masks, dict):
        raise ValueError(f'{source} must be a dict {{weight name: bool '
                         f'mask}}, got a {type(masks).__name__}')
    for name, mask in masks.items():
        if not isinstance(name, str):
            raise ValueError(f'{source}: mask key {name!r} is not a weight '
                             'name')
        check_mask(mask, name, source=source)
    if masks and not any(bool(m.any()) for m in masks.values()):
        total = sum(m.numel() for m in masks.values())
        raise ValueError(
            f'{source}: the {len(masks)} masks keep none of their {total} '
            'weights (sparsity 1.0; a sparsity must be in [0, 1))')
    return dict(masks)


# -- the ticket state of a checkpoint ---------------------------------------
def _number_map(value, key: str, low: float = 0) -> Dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f'{key} must be a dict {{unit: number}}, got a '
                         f'{type(value).__name__}')
    return {n: check_number(v, f'{key}[{n!r}]', low)
            for n, v in value.items()}


def _search_state(state: dict, where: str) -> dict:
    out = dict(state)
    out['penalty_weights'] = _number_map(state.get('penalty_weights'),
                                         f'{where}.penalty_weights')
    out['macs_per_channel'] = _number_map(state.get('macs_per_channel'),
                                          f'{where}.macs_per_channel')
    if 'guard_macs_per_channel' in state:
        out['guard_macs_per_channel'] = _number_map(
            state['guard_macs_per_channel'],
            f'{where}.guard_macs_per_channel')
    cost = state.get('supernet_cost')
    if not isinstance(cost, dict):
        raise ValueError(f'{where}.supernet_cost must be a dict, got '
                         f'{cost!r}')
    missing = [k for k in ('params', 'macs') if cost and k not in cost]
    if missing:
        raise ValueError(f'{where}.supernet_cost={cost!r} has no '
                         f'{missing[0]!r}')
    out['supernet_cost'] = {k: check_number(v, f'{where}.supernet_cost.{k}',
                                            0)
                            for k, v in cost.items()}
    out['input_shape'] = check_input_shape(state.get('input_shape'),
                                           f'{where}.input_shape',
                                           allow_none=True)
    positive = dict(low=0, low_open=True)
    optional = dict(channel_divisor=dict(low=1, integer=True),
                    rho=dict(low=0), controlled_rho=dict(low=0),
                    target_macs=positive, budget_macs=positive,
                    target_latency=positive, budget_latency=positive,
                    fixed_macs=dict(), fixed_latency=dict(),
                    cost_fixed=dict())
    for key, bounds in optional.items():
        if key in state:
            out[key] = check_number(
                state[key], f'{where}.{key}', **bounds,
                allow_none=key.startswith(('target_', 'budget_')))
    return out


def _pruning_state(state: dict, where: str) -> dict:
    out = dict(state)
    out['masks'] = check_masks(state.get('masks', {}), f'{where}.masks')
    if 'events' in state:
        out['events'] = check_number(state['events'], f'{where}.events', 0,
                                     integer=True)
    if 'last_ratio' in state:
        out['last_ratio'] = check_number(state['last_ratio'],
                                         f'{where}.last_ratio', 0, 1)
    if 'target_sparsity' in state:
        out['target_sparsity'] = check_number(
            state['target_sparsity'], f'{where}.target_sparsity', 0, 1,
            high_open=True, allow_none=True)
    return out


_SECTIONS = dict(search=_search_state, pruning=_pruning_state)


def check_ticket_section(key: str, state, where: str,
                         source: str) -> Optional[dict]:
    """The ``search`` or ``pruning`` section of a checkpoint's ticket state,
    every field checked (None when the checkpoint has none).

    Args:
        key (str): ``'search'`` or ``'pruning'``; other sections are
            returned as they are.
        state: What the checkpoint holds there.
        where (str): The section's path, e.g. ``supertickets.search``,
            which field names extend.
        source (str): The file it was read from, for the message.

    Raises:
        ValueError: naming the file, the field, its value and what is
            allowed.

    Example:
        >>> check_ticket_section('pruning', dict(masks={}, events='abc'),
        ...                      'supertickets.pruning', "'iter_8.pth'")
        Traceback (most recent call last):
        ...
        ValueError: 'iter_8.pth': supertickets.pruning.events='abc' must be a whole number >= 0, got a str
    """  # noqa: E501
    if state is None or key not in _SECTIONS:
        return state
    try:
        if not isinstance(state, dict):
            raise ValueError(f'{where} must be a dict, got a '
                             f'{type(state).__name__}')
        return _SECTIONS[key](state, where)
    except ValueError as e:
        raise ValueError(f'{source}: {e}') from None


# -- tensors ---------------------------------------------------------------
def first_non_finite(tensors: Dict[str, torch.Tensor]) -> Optional[str]:
    """The name of the first floating-point tensor holding NaN or inf.

    Example:
        >>> first_non_finite({'a': torch.ones(2),
        ...                   'b': torch.tensor([1., float('nan')])})
        'b'
    """
    for name, t in tensors.items():
        if torch.is_tensor(t) and (t.is_floating_point() or t.is_complex()) \
                and not bool(torch.isfinite(t).all()):
            return name
    return None
