"""Predicted latency = fixed + Σ table entries; tables checked vs models."""
import copy

import pytest
import torch

from mmsupertickets.latency import (
    LatencyCost,
    check_table,
    predict_latency,
    unit_widths,
)
from mmsupertickets.latency.build import table_from_function
from mmsupertickets.models.backbones import SuperTicketHRNet
from mmsupertickets.structures.macs_budget import fit_cost
from mmsupertickets.structures.searchable import find_searchable_units
from mmsupertickets.structures.shrink_plan import (
    apply_plan,
    plan_channel_removal,
)

TINY = dict(stem_channels=8, stage_channels=((8, ), (8, 16)),
            stage_blocks=((1, ), (1, 1)), kernel_sizes=(3, 5),
            expand_ratio=2, out_indices=(0, 1))
SHAPE = (32, 48)


def _tiny(**kw):
    torch.manual_seed(0)
    return SuperTicketHRNet(**dict(TINY, **kw)).eval()


def _ms(name, unit, w):
    # A made-up device: a launch cost, a part in the MACs, and a penalty
    # for widths off a multiple of 8.
    return 0.05 + 1e-6 * unit['macs_per_channel'] * w + 0.01 * (w % 8 != 0)


def test_prediction_is_the_sum_of_the_entries_at_grid_widths():
    model = _tiny()
    table = table_from_function(model, SHAPE, _ms, fixed_ms=2.0,
                                divisors=(1, 8))
    units = table.units
    # The supernet: every unit at its own width, a grid point of each grid.
    expected = 2.0 + sum(_ms(n, u, u['channels']) for n, u in units.items())
    for d in (1, 8):
        assert predict_latency(model, table, d) == pytest.approx(expected)
    # A subnet at grid widths of divisor 8 (one unit removed).
    names = sorted(units)
    counts = {n: units[n]['grids']['8']['widths'][0] for n in names[1:]}
    counts[names[0]] = 0
    cost = LatencyCost(table, 8)
    assert cost.total(counts) == pytest.approx(
        2.0 + sum(_ms(n, units[n], w) for n, w in counts.items() if w))
    # The model itself, shrunk to those widths.
    sub = copy.deepcopy(model)
    apply_plan(sub, plan_channel_removal(
        sub, {n: torch.arange(w) for n, w in counts.items()}))
    assert unit_widths(sub) == {n: w for n, w in counts.items() if w}
    assert predict_latency(sub, table, 8) == pytest.approx(
        cost.total(counts))


def test_between_grid_widths_the_prediction_interpolates():
    model = _tiny()
    table = table_from_function(model, SHAPE, _ms, fixed_ms=0.0,
                                divisors=(8, ))
    name, unit = next((n, u) for n, u in table.units.items()
                      if len(u['grids']['8']['widths']) > 1)
    w0, w1 = unit['grids']['8']['widths'][:2]
    mid = table.unit_ms(name, (w0 + w1) / 2, 8)
    assert mid == pytest.approx((_ms(name, unit, w0) +
                                 _ms(name, unit, w1)) / 2)


def test_the_fit_keeps_a_latency_budget():
    model = _tiny()
    table = table_from_function(model, SHAPE, _ms, fixed_ms=1.0,
                                divisors=(8, ))
    cost = LatencyCost(table, 8)
    g = torch.Generator().manual_seed(0)
    units = find_searchable_units(model)
    magnitude = {u.name: torch.rand(u.channels, generator=g) for u in units}
    live = {u.name: torch.ones(u.channels, dtype=torch.bool) for u in units}
    budget = 0.6 * cost.total(unit_widths(model))
    out = fit_cost(live, magnitude, cost, budget, 8, trim=True)
    reached = cost.total({n: int(m.sum()) for n, m in out.items()})
    assert reached <= budget
    # Under it by less than the costliest group of 8 channels.
    step = max(cost.unit(u.name, u.channels) for u in units)
    assert reached > budget - step


def test_a_table_of_another_model_is_refused_naming_the_unit():
    table = table_from_function(_tiny(), SHAPE, _ms, fixed_ms=1.0,
                                divisors=(8, ))
    check_table(table, _tiny(), SHAPE)
    # Other widths: the unit and both widths are named.
    wider = _tiny(expand_ratio=3)
    unit = find_searchable_units(wider)[0]
    with pytest.raises(ValueError, match=rf'unit {unit.name} has '
                       rf'{unit.channels} channels but .* at 16'):
        check_table(table, wider, SHAPE)
    # Another kernel size: a unit the table does not know.
    with pytest.raises(ValueError,
                       match=r'unit \S+\.paths\.k7 of the model is not in'):
        check_table(table, _tiny(kernel_sizes=(3, 7)), SHAPE)
    # Another input size.
    with pytest.raises(ValueError, match='measured at input 32x48'):
        check_table(table, _tiny(), (64, 64))
    # A shrunk subnet passes unless exact.
    sub = _tiny()
    name = find_searchable_units(sub)[0].name
    apply_plan(sub, plan_channel_removal(sub, {name: torch.arange(4)}))
    check_table(table, sub, exact=False)
    with pytest.raises(ValueError, match=f'unit {name} has 4 channels'):
        check_table(table, sub)


def test_a_divisor_without_a_grid_is_refused():
    table = table_from_function(_tiny(), SHAPE, _ms, fixed_ms=1.0,
                                divisors=(1, 8))
    with pytest.raises(ValueError, match='channel_divisor=16 has no grid'):
        LatencyCost(table, 16)
    assert LatencyCost(table).divisor == table.default_divisor == 1
