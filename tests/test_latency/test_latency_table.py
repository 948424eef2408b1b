"""Latency tables: layout, grids and a real (tiny) measurement."""
import weakref

import pytest
import torch

from mmsupertickets.latency import LatencyTable, width_grid
from mmsupertickets.latency.build import (
    describe_units,
    measure_table,
    sliced_unit,
)
from mmsupertickets.models.backbones import SuperTicketHRNet
from mmsupertickets.structures.searchable import find_searchable_units

TINY = dict(stem_channels=8, stage_channels=((8, ), (8, 16)),
            stage_blocks=((1, ), (1, 1)), kernel_sizes=(3, 5),
            expand_ratio=2, out_indices=(0, 1))
SHAPE = (32, 48)


def _tiny():
    torch.manual_seed(0)
    return SuperTicketHRNet(**TINY).eval()


@pytest.mark.parametrize('channels,divisor', [(96, 1), (96, 8), (72, 16),
                                              (37, 8), (5, 8), (1, 1)])
def test_width_grid_is_deterministic_and_on_the_divisor(channels, divisor):
    grid = width_grid(channels, divisor)
    assert grid == width_grid(channels, divisor)
    assert grid == sorted(set(grid)) and grid[-1] == channels
    if divisor > channels:
        assert grid == [channels]
        return
    assert grid[0] == divisor
    inner = grid[:-1]
    if divisor == 1:
        # Free widths: odd inside, so that no aligned speed is promised.
        assert all(w % 2 == 1 for w in inner)
    else:
        assert all(w % divisor == 0 for w in inner)


def test_width_grid_refuses_bad_values():
    with pytest.raises(ValueError, match='divisor=0'):
        width_grid(8, 0)


def test_layout_is_deterministic_and_lists_every_unit():
    model = _tiny()
    first = describe_units(model, SHAPE, divisors=(1, 8))
    again = describe_units(_tiny(), SHAPE, divisors=(1, 8))
    assert first == again
    units = find_searchable_units(model)
    assert set(first) == {u.name for u in units}
    for u in units:
        entry = first[u.name]
        assert entry['channels'] == u.channels
        for d in (1, 8):
            assert entry['grids'][str(d)]['widths'] == width_grid(
                u.channels, d)
        # The input the unit gets inside the model (batch 1).
        assert entry['input'][:2] == [1, u.module.expand.conv.in_channels]


def test_sliced_unit_keeps_the_width_and_runs():
    unit = find_searchable_units(_tiny())[0]
    x = torch.randn(1, unit.module.expand.conv.in_channels, 8, 8)
    part = sliced_unit(unit.module, 3)
    assert part.channels == 3 and unit.channels == 16
    assert part(x).shape == unit.module(x).shape


@pytest.mark.parametrize('runtime', ['pytorch', 'onnxruntime'])
def test_measured_table_has_every_unit_and_states_its_setting(
        runtime, tmp_path):
    if runtime == 'onnxruntime':
        pytest.importorskip('onnxruntime')
    model = _tiny()
    table = measure_table(model, SHAPE, runtime=runtime, threads=1,
                          divisors=(1, 8), points=3, rounds=1, warmup=0,
                          log=lambda line: None)
    data = table.data
    assert (data['runtime'], data['device'], data['threads'],
            data['shape']) == (runtime, 'cpu', 1, list(SHAPE))
    assert 'torch' in data['measurement']['versions']
    if runtime == 'onnxruntime':
        assert 'onnxruntime' in data['measurement']['versions']
    assert set(table.units) == {u.name for u in
                                find_searchable_units(model)}
    for name, unit in table.units.items():
        for d in ('1', '8'):
            grid = unit['grids'][d]
            assert grid['widths'] == width_grid(unit['channels'], int(d), 3)
            assert len(grid['ms']) == len(grid['iqr']) == len(
                grid['widths'])
            assert all(v >= 0 for v in grid['ms'])
    assert data['fixed_ms'] > 0 and data['supernet_ms'] > 0
    assert table.default_divisor in (1, 8)
    # Written and read back unchanged.
    table.save(str(tmp_path / 't.json'))
    assert LatencyTable.load(str(tmp_path / 't.json')).data == data


def test_a_file_that_is_not_a_table_is_refused(tmp_path):
    path = tmp_path / 'x.json'
    path.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match='not a latency table'):
        LatencyTable.load(str(path))


def test_fit_line_recovers_a_line_and_keeps_its_signs():
    from mmsupertickets.latency.build import fit_line
    offset, scale = fit_line([100, 200, 400], [60, 110, 210])
    assert offset == pytest.approx(10) and scale == pytest.approx(0.5)
    # A line through the points would need a negative offset: none.
    offset, scale = fit_line([100, 200], [50, 150])
    assert offset == 0 and scale > 0
    # One point: through it.
    assert fit_line([200], [100]) == (0.0, 0.5)
    with pytest.raises(ValueError, match='y > 0'):
        fit_line([1], [0])


def test_measured_table_calibrates_each_divisor_on_uniform_subnets():
    from mmsupertickets.latency.build import (
        CALIBRATION_SHARES,
        uniform_widths,
    )
    from mmsupertickets.latency.predictor import LatencyCost
    model = _tiny()
    table = measure_table(model, SHAPE, divisors=(1, 8), points=3,
                          rounds=1, warmup=0, log=lambda line: None)
    for d in (1, 8):
        entry = table.data['divisors'][str(d)]
        points = entry['calibration']
        assert [p['share'] for p in points] == \
            list(CALIBRATION_SHARES) + [1.0]
        assert all(p['measured_ms'] > 0 for p in points)
        cost = LatencyCost(table, d)
        assert cost.fixed == entry['offset_ms'] >= 0
        assert cost.scale == entry['unit_scale'] > 0
        # Each point's units-alone time is the table's own prediction
        # input for that subnet's widths.
        widths = uniform_widths(table.units, CALIBRATION_SHARES[1], d)
        alone = sum(table.unit_ms(n, w, d) for n, w in widths.items())
        assert points[1]['units_alone_ms'] == pytest.approx(alone)
        assert cost.total(widths) == pytest.approx(
            entry['offset_ms'] + entry['unit_scale'] * alone)


def test_tables_hold_at_most_at_once_runners():
    # An ONNX Runtime table builds its ~600 sessions a chunk at a time.
    from mmsupertickets.latency.timing import time_in_chunks
    alive, peak = set(), []

    def factory(key):
        def build():
            alive.add(key)
            peak.append(len(alive))
            run = lambda: None  # noqa: E731
            weakref.finalize(run, alive.discard, key)
            return run
        return build

    times = time_in_chunks({k: factory(k) for k in range(20)}, 8, rounds=2,
                           warmup=1)
    assert sorted(times) == list(range(20))
    assert max(peak) == 8 and not alive
    with pytest.raises(ValueError, match='at_once=0'):
        time_in_chunks({}, 0, rounds=1, warmup=0)
