"""One writer per work dir and per export target: the second process is
refused with an error naming the first (#21.8). Each holder is a real
second process."""
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmengine.runner import Runner
from tiny_configs import seg_cfg

import mmsupertickets  # noqa: F401
from mmsupertickets.utils.file_lock import (
    FolderLock,
    FolderLockedError,
    lock_file_of,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The lock module alone, without the package's model imports: fast.
HOLD = ('import importlib.util, sys\n'
        'spec = importlib.util.spec_from_file_location("file_lock", '
        f'{osp.join(REPO, "mmsupertickets", "utils", "file_lock.py")!r})\n'
        'module = importlib.util.module_from_spec(spec)\n'
        'spec.loader.exec_module(module)\n'
        'with module.FolderLock(sys.argv[1], sys.argv[2]):\n'
        '    print("locked", flush=True)\n'
        '    sys.stdin.read()\n')


@pytest.fixture
def holder():
    """Start a process that holds the lock of a folder until stopped."""
    procs = []

    def start(folder, what='folder'):
        proc = subprocess.Popen(
            [sys.executable, '-c', HOLD, str(folder), what], cwd=REPO,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=dict(os.environ, OMP_NUM_THREADS='1'))
        procs.append(proc)
        assert proc.stdout.readline().strip() == 'locked'
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def run_tool(*args):
    proc = subprocess.run([sys.executable, *map(str, args)],
                          capture_output=True, text=True, cwd=REPO,
                          timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    return proc.returncode, proc.stdout + proc.stderr


def test_second_process_is_refused_naming_the_first(holder, tmp_path):
    folder = tmp_path / 'run'
    first = holder(folder, 'work dir')
    with pytest.raises(FolderLockedError) as info:
        with FolderLock(folder, 'work dir'):
            pass
    message = str(info.value)
    assert f'pid {first.pid}' in message and str(folder) in message
    assert 'work dir' in message and lock_file_of(folder) in message
    # Released on exit: the lock file goes, the next writer gets in.
    first.stdin.close()
    assert first.wait(timeout=60) == 0
    assert not osp.exists(lock_file_of(folder))
    with FolderLock(folder):
        with FolderLock(folder):  # the same process may nest it
            assert osp.exists(lock_file_of(folder))
    assert os.listdir(tmp_path) == []  # parents it made are gone too


def test_a_killed_holders_lock_is_taken_over(holder, tmp_path):
    folder = tmp_path / 'run'
    first = holder(folder)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert osp.exists(lock_file_of(folder))  # left behind by the kill
    with FolderLock(folder):
        with open(lock_file_of(folder)) as f:
            assert f'"pid": {os.getpid()}' in f.read()


def test_training_on_a_locked_work_dir_is_refused(holder, cityscapes_root,
                                                  tmp_path):
    """The SuperTickets hooks take the lock: mmseg's own tools/train.py
    gets it too."""
    work_dir = tmp_path / 'run'
    cfg = seg_cfg(cityscapes_root, str(work_dir), max_iters=4,
                  hooks=[dict(type='SuperNetSearchHook', rho=1e-3, warmup=2,
                              min_macs=0, shrink_interval=2,
                              by_epoch=False)])
    first = holder(work_dir, 'work dir')
    runner = Runner.from_cfg(Config(cfg))
    # Validating beside a running training is fine: only training locks.
    runner.val()
    with pytest.raises(FolderLockedError, match=f'pid {first.pid}'):
        runner.train()
    assert not [n for n in os.listdir(work_dir) if n.endswith('.pth')]


def test_train_tool_refuses_a_locked_work_dir(holder, tmp_path):
    work_dir = tmp_path / 'run'
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(f'work_dir = {str(work_dir)!r}\n')
    first = holder(work_dir, 'work dir')
    code, log = run_tool(osp.join(REPO, 'tools', 'train.py'), cfg_file)
    assert code != 0
    assert f'pid {first.pid}' in log and str(work_dir) in log
    assert 'Traceback' not in log
    assert not work_dir.exists()


def test_export_tool_refuses_a_locked_out(holder, tmp_path):
    out = tmp_path / 'tickets' / 'ticket'
    first = holder(out, '--out')
    code, log = run_tool(osp.join(REPO, 'tools', 'export_ticket.py'),
                         tmp_path / 'cfg.py', tmp_path / 'ckpt.pth',
                         '--out', out)
    assert code != 0
    assert f'pid {first.pid}' in log and str(out) in log
    assert 'Traceback' not in log
    assert not out.exists()
