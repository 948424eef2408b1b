"""Building scorers, selections and schedules from config; ratio checks.

The one place that turns a config value into a pruning part and that
checks pruning ratios, scorer names and scopes: the hooks, the S+P API and
the ``prune_oneshot`` tool all call these. A part is given as a registered
name (``'magnitude'``, the form every config so far uses), as a config
dict (``dict(type='magnitude')``, ``dict(type='MyScorer', alpha=2)``) or
as a registered class.

Example:
    >>> build_scorer('magnitude')  # doctest: +ELLIPSIS
    <mmsupertickets.pruning.scorers.MagnitudeScorer object at ...>
    >>> build_schedule('step', 0.5, step=0.2)(2, 10)
    0.4
    >>> build_scorer('taylor')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: scorer='taylor' is unknown; choose one of ['magnitude', ...
"""
from typing import List, Sequence

from mmsupertickets.registry import SCHEDULES, SCORERS, SELECTIONS
from mmsupertickets.structures.value_checks import check_number

__all__ = [
    'part_name', 'build_scorer', 'build_selection', 'build_schedule',
    'check_ratio', 'check_ratios', 'check_scorers', 'check_scope'
]


def part_name(part) -> str:
    """The name a part is known by in logs and file names: the string,
    or the ``type`` of a config dict."""
    kind = part.get('type') if isinstance(part, dict) else part
    return kind if isinstance(kind, str) else getattr(kind, '__name__',
                                                      repr(kind))


def _registry_name(registry) -> str:
    return {id(SCORERS): 'SCORERS', id(SELECTIONS): 'SELECTIONS',
            id(SCHEDULES): 'SCHEDULES'}[id(registry)]


def _part_cfg(part, key: str, registry) -> dict:
    """``part`` as a config dict whose type the registry knows."""
    if isinstance(part, str) or isinstance(part, type):
        cfg = dict(type=part)
    elif isinstance(part, dict) and 'type' in part:
        cfg = dict(part)
    else:
        raise ValueError(f'{key}={part!r} must be a registered name or a '
                         "config dict with a 'type'")
    kind = cfg['type']
    known = isinstance(kind, type) or (isinstance(kind, str) and
                                       registry.get(kind) is not None)
    if not known:
        raise ValueError(
            f'{key}={kind!r} is unknown; choose one of '
            f'{sorted(registry.module_dict)} or register a class in '
            f'mmsupertickets.registry.{_registry_name(registry)}')
    return cfg


def build_scorer(scorer, key: str = 'scorer'):
    """The scorer of ``scorer`` (see :mod:`~mmsupertickets.pruning.
    scorers`)."""
    return SCORERS.build(_part_cfg(scorer, key, SCORERS))


def build_selection(scope, key: str = 'scope'):
    """The selection of ``scope`` (``'global'``, ``'layer'`` or a
    registered one)."""
    return SELECTIONS.build(_part_cfg(scope, key, SELECTIONS))


def build_schedule(schedule, target: float, key: str = 'schedule',
                   **kwargs):
    """The schedule of ``schedule`` ending at ``target``; ``kwargs`` (e.g.
    the hook's ``step``) are its defaults, a config dict's own keys win."""
    cfg = _part_cfg(schedule, key, SCHEDULES)
    return SCHEDULES.build(cfg, default_args=dict(kwargs, target=target))


def check_ratio(value, key: str = 'ratio', positive: bool = False):
    """A sparsity (fraction of weights removed): a number in [0, 1), or in
    (0, 1] with ``positive`` (a step of a schedule)."""
    if positive:
        return float(check_number(value, key, 0, 1, low_open=True))
    return float(check_number(value, key, 0, 1, high_open=True))


def check_ratios(ratios: Sequence[float]) -> List[float]:
    """Every ratio of a sweep checked; at least one."""
    if isinstance(ratios, (str, bytes)):
        raise ValueError(f'ratios={ratios!r} must be a list of numbers')
    out = [check_ratio(r, 'pruning ratio') for r in ratios]
    if not out:
        raise ValueError('no pruning ratio given')
    return out


def check_scorers(scorers: Sequence) -> List:
    """Every scorer of a sweep known to the registry; at least one."""
    if isinstance(scorers, (str, bytes)):
        raise ValueError(f'scorers={scorers!r} must be a list of names')
    for s in scorers:
        _part_cfg(s, 'scorer', SCORERS)
    if not scorers:
        raise ValueError('no scorer given')
    return list(scorers)


def check_scope(scope):
    """``scope`` if the selection registry knows it."""
    _part_cfg(scope, 'scope', SELECTIONS)
    return scope
