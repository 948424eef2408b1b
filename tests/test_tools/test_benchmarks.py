"""The benchmark scripts run end to end and print their ratio line.

Each script runs as a user would start it, in its ``--smoke`` mode (a small
supernet, tiny inputs, one round); the timings are not checked, only that
every part of the script runs and reports. The channel-divisor pair of the
deployment benchmark is also built directly and its widths and MACs checked.
"""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

BENCHMARKS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
    'benchmarks')
RATIO_LINE = re.compile(r'^ratio \S.*\d\.\d{3}')
DIVISOR_RATIO = re.compile(
    r'div8/div1 wall (\S+), CPU (\S+), least CPU (\S+);')


@pytest.mark.slow
@pytest.mark.parametrize(
    'script', ['hook_overhead.py', 'shrink_speedup.py', 'deployment.py',
               'latency_ticket.py'])
def test_smoke_run_prints_ratio(script, tmp_path):
    # One thread per process, as the scripts default to; the cwd is a
    # scratch folder so that a stray output file would not land in the repo.
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, osp.join(BENCHMARKS, script), '--smoke'],
        cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.strip().splitlines()
    assert lines and RATIO_LINE.match(lines[-1]), proc.stdout[-4000:]
    assert list(tmp_path.iterdir()) == []
    if script == 'deployment.py':
        found = DIVISOR_RATIO.search(lines[-1])
        assert found, lines[-1]
        assert all(float(r) > 0 for r in found.groups()), lines[-1]
        rows = {line.split()[0] for line in lines if line.strip()}
        assert {'div1', 'div8'} <= rows, proc.stdout[-4000:]
        assert 'widths a multiple of 8: yes' in proc.stdout


def test_divisor_pair_widths_and_macs():
    from mmsupertickets.structures.searchable import find_searchable_units
    from mmsupertickets.testing.benchmarks import build_seg_model, setup
    from mmsupertickets.testing.subnets import divisor_pair, randomise_gammas
    setup(threads=1)
    supernet = build_seg_model(tiny=True)
    randomise_gammas(supernet)
    gammas = [u.norm.weight.clone() for u in find_searchable_units(supernet)]
    free, rounded, free_cost, rounded_cost = divisor_pair(
        supernet, (64, 128), 0.5)
    # The supernet is left as it was.
    assert all(torch.equal(g, u.norm.weight) for g, u in zip(
        gammas, find_searchable_units(supernet)))
    free_widths = [u.channels for u in find_searchable_units(free)]
    widths = [u.channels for u in find_searchable_units(rounded)]
    # Removed units are absent: every remaining width is a nonzero
    # multiple of 8, and some free width is not (else the test is moot).
    assert widths and all(c > 0 and c % 8 == 0 for c in widths), widths
    assert any(c % 8 for c in free_widths), free_widths
    assert abs(rounded_cost['macs'] / free_cost['macs'] - 1) < 0.01
