"""The benchmark scripts run end to end and print their ratio line.

Each script runs as a user would start it, in its ``--smoke`` mode (a small
supernet, tiny inputs, one round); the numbers are not checked, only that
every part of the script runs and reports.
"""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

BENCHMARKS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                      'tools', 'benchmarks')
RATIO_LINE = re.compile(r'^ratio \S.*\d\.\d{3}')


@pytest.mark.parametrize(
    'script', ['hook_overhead.py', 'shrink_speedup.py', 'deployment.py'])
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
