"""The architecture spec: a flat ``{unit name: channels}`` dict.

It lists every searchable unit of the supernet, 0 for a removed one, and is
JSON-serialisable; :func:`apply_arch` builds the same subnet from the
supernet.
"""
import numbers
import re
from typing import Dict, Iterable, Optional, Union

import torch
import torch.nn as nn

from mmsupertickets.utils.json_reader import read_json

from .searchable import find_searchable_units
from .shrink_plan import ShrinkPlan, apply_plan, plan_channel_removal


def export_arch(model: nn.Module,
                supernet_units: Optional[Iterable[str]] = None
                ) -> Dict[str, int]:
    """``{unit name: channels}`` of the model; 0 for removed units.

    Args:
        model: The (shrunk) model.
        supernet_units: Names of every unit of the unshrunk model, so that
            removed ones are listed with 0. Defaults to the present units.
    """
    arch = {u.name: u.channels for u in find_searchable_units(model)}
    for name in supernet_units or ():
        arch.setdefault(name, 0)
    return dict(sorted(arch.items()))


# Module paths only: an arch may come from an untrusted file, and its names
# end up in an exported config.py.
_UNIT_NAME = re.compile(r'^[A-Za-z0-9_.]+$')


def validate_arch(arch, source: str = 'the architecture') -> Dict[str, int]:
    """``arch`` as a plain dict after a strict check of its form.

    Names must be module paths (``^[A-Za-z0-9_.]+$``) and values
    non-negative integers (not bools, not floats such as 3.5).

    Args:
        arch: The spec read from a checkpoint, a JSON file or a config.
        source (str): What it was read from, for the error message.

    Raises:
        ValueError: naming ``source`` and the first offending entry.

    Example:
        >>> validate_arch({'backbone.stage0.paths.k3': 8})
        {'backbone.stage0.paths.k3': 8}
        >>> validate_arch({'a.k3': 3.5}, 'arch.json')
        Traceback (most recent call last):
        ...
        ValueError: arch.json: channels of 'a.k3' must be a non-negative ...
    """
    if not isinstance(arch, dict):
        raise ValueError(f'{source}: an architecture must be a dict '
                         f'{{unit name: channels}}, got '
                         f'{type(arch).__name__}')
    for name, channels in arch.items():
        if not isinstance(name, str) or not _UNIT_NAME.match(name):
            raise ValueError(f'{source}: unit name {name!r} is not a module '
                             'path (letters, digits, "_" and "." only)')
        if (isinstance(channels, bool)
                or not isinstance(channels, numbers.Integral)
                or channels < 0):
            raise ValueError(f'{source}: channels of {name!r} must be a '
                             f'non-negative integer, got {channels!r}')
    return {name: int(c) for name, c in arch.items()}


def check_arch_fits(model: nn.Module, arch: Dict[str, int],
                    source: str = 'the architecture',
                    removed: Iterable[str] = ()) -> None:
    """Raise a ValueError saying how ``arch`` and ``model`` differ.

    Args:
        model: The model to narrow.
        arch: The spec; every unit of ``model`` must be in it, and every
            name in it must be a unit of ``model`` or in ``removed``.
        source (str): What ``arch`` was read from, for the message.
        removed: Units the model had and lost to a shrink; listing them
            with 0 is fine.
    """
    validate_arch(arch, source)
    present = {u.name: u.channels for u in find_searchable_units(model)}
    removed = set(removed) - set(present)
    problems = []
    missing = sorted(set(present) - set(arch))
    if missing:
        problems.append(f'{len(missing)} units of the model are not in the '
                        f'architecture (e.g. {missing[:3]})')
    unknown = sorted(n for n in arch if n not in present and n not in removed)
    if unknown:
        problems.append(f'{len(unknown)} units of the architecture are not '
                        f'in the model (e.g. {unknown[:3]})')
    regrown = sorted(n for n in arch if n in removed and arch[n] > 0)
    if regrown:
        problems.append(f'{len(regrown)} units were removed and cannot grow '
                        f'back (e.g. {regrown[0]}: {arch[regrown[0]]})')
    wider = sorted(n for n, c in arch.items()
                   if n in present and c > present[n])
    if wider:
        problems.append(
            f'{len(wider)} units are wider than the model allows (e.g. '
            f'{wider[0]}: {arch[wider[0]]} > {present[wider[0]]})')
    if problems:
        raise ValueError(f'{source} does not fit this model: ' +
                         '; '.join(problems) +
                         '. Was it searched with another config?')


def plan_for_arch(model: nn.Module, arch: Dict[str, int],
                  source: str = 'the architecture',
                  removed: Iterable[str] = ()) -> ShrinkPlan:
    """Plan that narrows ``model`` to ``arch`` (first channels kept).

    Used to rebuild a searched subnet before its weights are loaded, so
    which channels are kept does not matter. ``source`` and ``removed`` as
    in :func:`check_arch_fits`.
    """
    check_arch_fits(model, arch, source, removed)
    present = {u.name: u.channels for u in find_searchable_units(model)}
    keep = {n: torch.arange(arch[n]) for n in present if arch[n] != present[n]}
    return plan_channel_removal(model, keep)


def apply_arch(model: nn.Module, arch: Union[Dict[str, int],
                                             str]) -> ShrinkPlan:
    """Narrow ``model`` in place to ``arch`` (a dict or a JSON file)."""
    source = 'the architecture'
    if isinstance(arch, str):
        source = f'architecture file {arch!r}'
        try:
            arch = read_json(arch)  # a key given twice is refused
        except ValueError as e:
            raise ValueError(f'{source} cannot be read: {e}') from e
    plan = plan_for_arch(model, arch, source)
    apply_plan(model, plan)
    return plan


def prefixed_arch(arch: Dict[str, int], prefix: str) -> Dict[str, int]:
    """The part of a model-level arch under ``prefix``, names made local."""
    p = prefix + '.'
    return {k[len(p):]: v for k, v in arch.items() if k.startswith(p)}
