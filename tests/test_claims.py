"""tools/analysis/claims.py end to end in --quick mode (tiny data, a few
iterations): every method runs for every seed through the real tools and
the table holds mean ± std per method."""
import json
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
import claims  # noqa: E402


def test_quick_claims_table(tmp_path):
    table = claims.main(['--quick', '--seeds', '0', '1', '--out',
                         str(tmp_path)])
    by = {r['method']: r for r in table}
    assert [r['method'] for r in table[:3]] == [
        'SuperTickets (reactivation: all)',
        'SuperTickets (reactivation: rebuilt)',
        'SuperTickets (reactivation: none)']
    assert set(by) - set(r['method'] for r in table[:3]) == {
        f'S+P {s}{r}' for s in ('random', 'magnitude', 'snip')
        for r in ('', ' + retrain')}
    target = 0.9
    for r in table:
        assert r['seeds'] == 2
        assert r['sparsity'] == pytest.approx(target, abs=5e-3)
        assert r['macs'] > 0 and r['params'] > 0
    # The same total iterations: SuperTickets = search + retrain of S+P.
    st_iters = table[0]['iters']
    assert by['S+P snip + retrain']['iters'] == st_iters
    assert by['S+P snip']['iters'][0] < st_iters[0]
    runs = json.load(open(tmp_path / 'claims.json'))['runs']
    assert len(runs) == 2 * 9
    assert {r['seed'] for r in runs} == {0, 1}
    text = (tmp_path / 'claims.md').read_text()
    assert '± ' in text and 'S+P snip + retrain' in text
    assert (tmp_path / 'claims.png').stat().st_size > 1000


def test_bad_arguments_are_named():
    with pytest.raises(SystemExit):
        claims.parse_args(['--out', 'x', '--sp-split', '1.5'])
    with pytest.raises(SystemExit):
        claims.parse_args(['--out', 'x', '--seeds', '0', '0'])
