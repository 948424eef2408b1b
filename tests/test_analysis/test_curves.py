"""Matched-MACs comparison on hand-made curves with known answers."""
import math

import numpy as np
import pytest

from mmsupertickets.analysis.curves import (
    compare_at_matched_macs,
    curve_area,
    interp_log,
    seed_curves,
    verdict,
)


def st(x):  # SuperTickets: linear in log MACs
    return 20 + 5 * math.log(x / 1e6)


def records():
    out = []

    def add(method, seed, xs, f):
        for i, x in enumerate(xs):
            out.append(dict(method=method, seed=seed, retrain=0,
                            ratio=0.1 * (i + 1), status='ok', macs=x,
                            macs_global=x, metrics=dict(mIoU=f(x))))

    for seed, off in ((0, 0.5), (1, -0.5)):
        add('supertickets', seed, [1e6, 1e7, 1e8], lambda x: st(x) + off)
        # Dominated, by 2 (seed 0) and 4 (seed 1), over a narrower range
        # sampled at other MACs: interpolation must be exact (linear).
        gap = 2 if seed == 0 else 4
        add('sp-magnitude', seed, [2e6, 7e6, 5e7],
            lambda x: st(x) + off - gap)
        # Crossing at 1e7: behind below, ahead above.
        add('sp-snip', seed, [1e6, 3e6, 1e8],
            lambda x: st(x) + off + math.log(x / 1e7))
    out.append(dict(method='sp-snip', seed=0, retrain=0, ratio=0.9,
                    status='failed', error='boom'))
    return out


def test_interp_log_is_linear_in_log_macs():
    assert interp_log([1e6, 1e8], [10.0, 30.0], [1e7, 1e6]).tolist() == \
        pytest.approx([20.0, 10.0])
    with pytest.raises(ValueError, match='outside'):
        interp_log([1e6, 1e8], [10.0, 30.0], [1e9])


def test_matched_table_dominating_and_crossing_curves():
    curves = seed_curves(records(), 'mIoU')
    comp = compare_at_matched_macs(curves, num=5)
    # Every curve of every seed covers [2e6, 5e7] (sp-magnitude's range).
    assert comp['range'] == pytest.approx([2e6, 5e7])
    points = np.geomspace(2e6, 5e7, 5)
    assert comp['points'] == pytest.approx(points.tolist())
    ref = comp['rows']['SuperTickets']
    assert ref['delta'] is None
    assert [v['mean'] for v in ref['values']] == pytest.approx(
        [st(p) for p in points])
    # Seed offsets ±0.5: std over seeds sqrt(0.5).
    assert ref['values'][0]['std'] == pytest.approx(math.sqrt(0.5))
    mag = comp['rows']['S+P magnitude']
    assert [d['mean'] for d in mag['delta']] == pytest.approx([-3.0] * 5)
    assert [d['std'] for d in mag['delta']] == pytest.approx(
        [math.sqrt(2)] * 5)
    snip = comp['rows']['S+P SNIP']
    assert [d['mean'] for d in snip['delta']] == pytest.approx(
        [math.log(p / 1e7) for p in points])
    assert [d['std'] for d in snip['delta']] == pytest.approx([0.0] * 5)
    # Areas: a line's mean over a log range is its value at the log
    # midpoint, sqrt(2e6 * 5e7) = 1e7, where SNIP crosses SuperTickets.
    assert ref['area']['mean'] == pytest.approx(st(1e7))
    assert snip['area']['mean'] == pytest.approx(st(1e7))
    assert mag['area']['mean'] == pytest.approx(st(1e7) - 3)
    line = verdict('seg', comp, 'mIoU')
    assert 'SuperTickets is ahead of S+P magnitude (Δ -3.00 mIoU' in line
    assert 'beyond the seed spread at 5/5 points' in line
    assert 'cross for S+P SNIP (ahead at 2/5 points' in line


def test_curve_area_of_a_line():
    assert curve_area([1e6, 1e8], [0.0, 2.0], 1e6, 1e8) == \
        pytest.approx(1.0)


def test_no_common_range():
    recs = [dict(method=m, seed=0, retrain=0, ratio=r, status='ok',
                 macs=x, macs_global=x, metrics=dict(mIoU=1.0))
            for m, xs in (('supertickets', (1e6, 2e6)),
                          ('sp-random', (3e6, 4e6)))
            for r, x in zip((0.5, 0.9), xs)]
    comp = compare_at_matched_macs(seed_curves(recs, 'mIoU'))
    assert comp is None
    assert 'no comparison yet' in verdict('seg', comp, 'mIoU')


def test_report_of_some_seeds_leaves_the_others_out(tmp_path):
    from mmsupertickets.analysis.report import write_report
    from mmsupertickets.analysis.sweep_store import RunStore, run_key
    store = RunStore(str(tmp_path))
    for r in records():
        r['key'] = run_key(r['method'], r['ratio'], r['seed'], r['retrain'])
        store.put(r)
    both = write_report(str(tmp_path), 'seg')
    one = write_report(str(tmp_path), 'seg', seeds=[1])
    assert both['seeds'] == [0, 1] and one['seeds'] == [1]
    # Seed 0 held the one failed run.
    assert both['runs']['failed'] and not one['runs']['failed']
    assert one['runs']['ok'] == both['runs']['ok'] // 2
    assert '(seeds 1).' in open(tmp_path / 'claims.md').read()
