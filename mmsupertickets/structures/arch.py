"""The architecture spec: a flat ``{unit name: channels}`` dict.

It lists every searchable unit of the supernet, 0 for a removed one, and is
JSON-serialisable; :func:`apply_arch` builds the same subnet from the
supernet.
"""
import json
from typing import Dict, Iterable, Optional, Union

import torch
import torch.nn as nn

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


def check_arch_fits(model: nn.Module, arch: Dict[str, int]) -> None:
    """Raise a ValueError saying how ``arch`` and ``model`` differ."""
    present = {u.name: u.channels for u in find_searchable_units(model)}
    problems = []
    missing = sorted(set(present) - set(arch))
    if missing:
        problems.append(f'{len(missing)} units of the model are not in the '
                        f'architecture (e.g. {missing[:3]})')
    unknown = sorted(n for n, c in arch.items()
                     if n not in present and c > 0)
    if unknown:
        problems.append(f'{len(unknown)} units of the architecture are not '
                        f'in the model (e.g. {unknown[:3]})')
    wider = sorted(n for n, c in arch.items()
                   if n in present and c > present[n])
    if wider:
        problems.append(
            f'{len(wider)} units are wider than the model allows (e.g. '
            f'{wider[0]}: {arch[wider[0]]} > {present[wider[0]]})')
    if problems:
        raise ValueError('the architecture does not fit this model: ' +
                         '; '.join(problems) +
                         '. Was it searched with another config?')


def plan_for_arch(model: nn.Module, arch: Dict[str, int]) -> ShrinkPlan:
    """Plan that narrows ``model`` to ``arch`` (first channels kept).

    Used to rebuild a searched subnet before its weights are loaded, so
    which channels are kept does not matter.
    """
    check_arch_fits(model, arch)
    present = {u.name: u.channels for u in find_searchable_units(model)}
    keep = {n: torch.arange(arch[n]) for n in present if arch[n] != present[n]}
    return plan_channel_removal(model, keep)


def apply_arch(model: nn.Module, arch: Union[Dict[str, int],
                                             str]) -> ShrinkPlan:
    """Narrow ``model`` in place to ``arch`` (a dict or a JSON file)."""
    if isinstance(arch, str):
        with open(arch) as f:
            arch = json.load(f)
    plan = plan_for_arch(model, arch)
    apply_plan(model, plan)
    return plan


def prefixed_arch(arch: Dict[str, int], prefix: str) -> Dict[str, int]:
    """The part of a model-level arch under ``prefix``, names made local."""
    p = prefix + '.'
    return {k[len(p):]: v for k, v in arch.items() if k.startswith(p)}
