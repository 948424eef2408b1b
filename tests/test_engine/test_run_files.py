"""Files a run leaves in its work dir: temporary files of killed writes and
the events file, across kills and resumes."""
import json
import os
import signal
import subprocess
import sys

import pytest
from mmengine.logging import MessageHub
from tiny_configs import ticket_run_cfg
from train_runs import start_training, train

from mmsupertickets.engine.event_log import report_event
from mmsupertickets.utils.atomic_write import (
    remove_stale_temp_files,
    save_checkpoint_atomically,
)

EVENTS = 'supertickets_events.jsonl'


def _dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def _events(work_dir):
    with open(os.path.join(work_dir, EVENTS)) as f:
        return [json.loads(line) for line in f]


def test_next_write_removes_stale_temp_files_of_its_target(tmp_path):
    dead = _dead_pid()
    stale = [f'.iter_4.pth.{dead}.0123abcd.tmp',
             # Our own pid, but no write of ours is going on: a restarted
             # container may hand the killed run's pid out again.
             f'.iter_4.pth.{os.getpid()}.89abcdef.tmp']
    keep = [
        f'.iter_8.pth.{dead}.0123abcd.tmp',  # another target
        f'.iter_4.pth.{os.getppid()}.0123abcd.tmp',  # writer still alive
        '.iter_4.pth.tmp', 'iter_4.pth.tmp', 'notes.tmp',  # other patterns
        f'.iter_4.pth.{dead}.0123ABCD.tmp', f'.iter_4.pth.{dead}.tmp',
    ]
    for name in stale + keep:
        (tmp_path / name).write_bytes(b'half a checkpoint')
    save_checkpoint_atomically({'x': 1}, tmp_path / 'iter_4.pth')
    assert sorted(os.listdir(tmp_path)) == sorted(keep + ['iter_4.pth'])

    # The whole folder at once: only the dead writer's file goes.
    assert remove_stale_temp_files(tmp_path) == [
        str(tmp_path / f'.iter_8.pth.{dead}.0123abcd.tmp')]
    assert len(os.listdir(tmp_path)) == len(keep)


class _Runner:
    """What report_event reads of a runner."""

    def __init__(self, work_dir, name):
        self.work_dir, self.iter, self.epoch = str(work_dir), 0, 0
        self.visualizer = None
        self.message_hub = MessageHub.get_instance(name)
        self._resume = self._has_loaded = False


def test_an_event_reported_twice_is_written_once(tmp_path):
    runner = _Runner(tmp_path, 'events_twice')
    runner.iter = 2
    report_event(runner, 'prune', dict(sparsity=0.2))
    report_event(runner, 'prune', dict(sparsity=0.2))
    runner.iter = 5
    report_event(runner, 'prune', dict(sparsity=0.4))
    assert [(e['event'], e['iter']) for e in _events(tmp_path)] == [
        ('prune', 3), ('prune', 6)]
    assert runner.message_hub.get_info('supertickets/event_lines') == 2


@pytest.mark.slow
def test_killed_and_resumed_run_logs_each_event_once(cityscapes_root,
                                                     tmp_path):
    cfg = ticket_run_cfg(cityscapes_root, max_iters=8,
                         extra_hooks=[dict(type='CrashHook')])
    cfg['default_hooks']['checkpoint'].update(
        interval=4, backend_args=dict(backend='atomic_local'))
    clean_dir, crash_dir = tmp_path / 'clean', tmp_path / 'crashed'
    clean = start_training(cfg, clean_dir)

    # Killed halfway through writing step 8's checkpoint: the events of
    # steps 6 and 8 are in the file, only step 4's checkpoint is complete.
    code, out = train(cfg, crash_dir, crash='save:8')
    assert code == -signal.SIGKILL, out[-3000:]
    steps = [e['iter'] for e in _events(crash_dir)]
    assert max(steps) == 8 and 6 in steps
    temp = [n for n in os.listdir(crash_dir) if n.endswith('.tmp')]
    assert len(temp) == 1 and temp[0].startswith('.iter_8.pth.')
    (crash_dir / 'notes.tmp').write_text('not a temporary file of ours')

    code, out = train(cfg, crash_dir, resume=True)
    assert code == 0, out[-3000:]
    assert 'iter_4.pth' in out
    out = clean.communicate(timeout=600)[0]
    assert clean.returncode == 0, out[-3000:]

    # The killed write's file went at the resume; nothing else did.
    assert [n for n in os.listdir(crash_dir) if n.endswith('.tmp')] == [
        'notes.tmp']
    got, want = _events(crash_dir), _events(clean_dir)
    keys = [(e['event'], e['iter']) for e in got]
    assert len(keys) == len(set(keys))
    assert got == want
    assert [e['event'] for e in want][0] == 'supernet' and len(want) >= 4
