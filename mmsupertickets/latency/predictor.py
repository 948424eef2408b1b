"""Predicted latency of a subnet from a latency table: the search's cost.

``predicted = offset_ms + unit_scale · Σ unit_ms(unit, live channels)``:
every unit's time alone at its width (interpolated in the grid of the
search's channel divisor), mapped to whole-model time by the line the table
fitted for that divisor over the measured supernet and uniform subnets (a
hand-built table: the model outside the units plus the plain sum).
"""
from typing import Dict, Optional, Sequence

import torch.nn as nn

from mmsupertickets.structures.searchable import find_searchable_units

from .table import LatencyTable

__all__ = ['LatencyCost', 'unit_signature', 'check_table',
           'predict_latency', 'unit_widths']


def unit_widths(model: nn.Module) -> Dict[str, int]:
    """``{unit name: live channels}`` of every searchable unit."""
    return {u.name: u.channels for u in find_searchable_units(model)}


def unit_signature(module: nn.Module) -> Dict[str, list]:
    """What a unit's table entry was measured for: the shape of each of
    its parameters and the stride of each strided layer.

    Example:
        >>> unit_signature(nn.Conv2d(2, 4, 3, stride=2))
        {'weight': [4, 2, 3, 3], 'bias': [4], 'stride': [2, 2]}
    """
    out = {n: list(p.shape) for n, p in module.named_parameters()}
    for name, m in module.named_modules():
        if hasattr(m, 'stride') and isinstance(m, nn.modules.conv._ConvNd):
            out[f'{name}.stride' if name else 'stride'] = list(m.stride)
    return out


class LatencyCost:
    """Predicted milliseconds from a :class:`LatencyTable`, as a cost model
    of :mod:`mmsupertickets.structures.macs_budget` (``key='latency'``).

    Args:
        table (LatencyTable): The measured table.
        divisor (int, optional): The search's channel divisor, whose grid
            is read. Defaults to None (the table's ``default_divisor``, the
            one measured fastest).

    Example:
        >>> cost = LatencyCost(LatencyTable.load('t.json'))  # doctest: +SKIP
        >>> cost.total({'backbone.stage1.branch0.block0.paths.k3': 32}
        ...            )  # doctest: +SKIP
    """

    key = 'latency'
    unit_name = 'ms'

    def __init__(self, table: LatencyTable, divisor: Optional[int] = None):
        self.table = table
        self.divisor = table.check_divisor(divisor)
        self.scale = table.unit_scale(self.divisor)
        self.fixed = table.offset_ms(self.divisor)

    def unit(self, name: str, n: float) -> float:
        return self.scale * self.table.unit_ms(name, n, self.divisor)

    def total(self, counts: Dict[str, float]) -> float:
        return self.fixed + sum(self.unit(name, n)
                                for name, n in counts.items())


def check_table(table: LatencyTable, model: nn.Module,
                shape: Optional[Sequence[int]] = None,
                exact: bool = True) -> None:
    """Refuse a table measured for another model or input size.

    Every searchable unit of ``model`` must be in the table; with ``exact``
    (a supernet, before any shrink) every unit of the table must be in the
    model too, at the width and with the signature it was measured at;
    otherwise (a shrunk subnet) a unit may be narrower than in the table.

    Raises:
        ValueError: naming the unit (or the shape) and what differs.
    """
    source = table.source
    if shape is not None and [int(s) for s in shape] != table.shape:
        raise ValueError(
            f'{source} was measured at input {table.shape[0]}x'
            f'{table.shape[1]}, the search profiles at {shape[0]}x{shape[1]}'
            ': set input_shape to the table\'s shape or build a table at '
            'this one')
    units = find_searchable_units(model)
    names = {u.name for u in units}
    for u in units:
        entry = table.units.get(u.name)
        if entry is None:
            raise ValueError(
                f'unit {u.name} of the model is not in {source} ('
                f'{len(table.units)} units): the table was measured for '
                'another model; build one for this config')
        if exact and entry.get('channels') != u.channels:
            raise ValueError(
                f'unit {u.name} has {u.channels} channels but {source} '
                f'measured it at {entry.get("channels")}')
        if not exact and u.channels > entry.get('channels', 0):
            raise ValueError(
                f'unit {u.name} has {u.channels} channels, more than the '
                f'{entry.get("channels")} that {source} measured')
        if exact and 'signature' in entry:
            own = unit_signature(u.module)
            diff = sorted(k for k in set(own) | set(entry['signature'])
                          if own.get(k) != entry['signature'].get(k))
            if diff:
                k = diff[0]
                raise ValueError(
                    f'unit {u.name} differs from {source} in {k}: '
                    f'{own.get(k)} in the model, '
                    f'{entry["signature"].get(k)} in the table')
    extra = sorted(set(table.units) - names)
    if exact and extra:
        raise ValueError(
            f'unit {extra[0]} of {source} is not in the model ('
            f'{len(extra)} such units): the table was measured for another '
            'model; build one for this config')


def predict_latency(model: nn.Module, table: LatencyTable,
                    divisor: Optional[int] = None) -> float:
    """Predicted milliseconds of ``model`` (a subnet of the table's
    supernet) in the table's runtime."""
    return LatencyCost(table, divisor).total(unit_widths(model))
