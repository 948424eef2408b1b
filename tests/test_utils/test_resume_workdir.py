"""Bare --resume continues only from files inside the work dir; a
last_checkpoint naming another run's file is refused, naming both files
(#21.6)."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmsupertickets.utils.resume import find_resumable_checkpoint

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def save(path, step, run):
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save({'meta': {'iter': step, 'experiment_name': run},
                'state_dict': {'w': torch.full((2, ), float(step))}}, path)
    return str(path)


def point(work_dir, target):
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(str(target))


@pytest.fixture
def two_runs(tmp_path):
    """This run saved iter 8; last_checkpoint names another run's older
    file (e.g. a work dir copied from it, then trained on)."""
    mine = save(tmp_path / 'mine' / 'iter_8.pth', 8, 'mine')
    other = save(tmp_path / 'other' / 'iter_4.pth', 4, 'other')
    point(tmp_path / 'mine', other)
    return str(tmp_path / 'mine'), mine, other


def test_a_last_checkpoint_outside_the_work_dir_is_refused(two_runs):
    work_dir, mine, other = two_runs
    with pytest.raises(RuntimeError) as info:
        find_resumable_checkpoint(work_dir)
    message = str(info.value)
    assert other in message and mine in message
    assert 'outside the work dir' in message and '--resume PATH' in message


def test_refused_also_without_own_checkpoints(tmp_path):
    other = save(tmp_path / 'other' / 'iter_4.pth', 4, 'other')
    os.makedirs(tmp_path / 'mine')
    point(tmp_path / 'mine', other)
    with pytest.raises(RuntimeError, match='no complete checkpoint') as info:
        find_resumable_checkpoint(str(tmp_path / 'mine'))
    assert other in str(info.value)


def test_a_moved_work_dir_resumes_its_own_file_of_that_name(tmp_path):
    # last_checkpoint still names the old place of the folder.
    old = save(tmp_path / 'old' / 'iter_8.pth', 8, 'run')
    point(tmp_path / 'old', old)
    os.rename(tmp_path / 'old', tmp_path / 'new')
    save(tmp_path / 'new' / 'iter_4.pth', 4, 'run')
    chosen = find_resumable_checkpoint(str(tmp_path / 'new'))
    assert chosen == str(tmp_path / 'new' / 'iter_8.pth')


def test_checkpoint_hook_out_dir_is_the_runs_own(tmp_path):
    # CheckpointHook(out_dir=X) saves into X/<work dir name> and records it.
    work_dir = str(tmp_path / 'runs' / 'exp')
    os.makedirs(work_dir)
    saved = save(tmp_path / 'ckpts' / 'exp' / 'iter_8.pth', 8, 'run')
    point(work_dir, saved)
    cfg = Config(dict(default_hooks=dict(checkpoint=dict(
        type='CheckpointHook', out_dir=str(tmp_path / 'ckpts')))))
    assert find_resumable_checkpoint(work_dir, cfg) == saved
    with pytest.raises(RuntimeError, match='outside the work dir'):
        find_resumable_checkpoint(work_dir)  # without the config: not known


def test_train_tool_refuses_before_writing_anything(two_runs, tmp_path):
    work_dir, mine, other = two_runs
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(f'work_dir = {work_dir!r}\n')
    before = sorted(os.listdir(work_dir))
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'), str(cfg_file),
         '--resume'], capture_output=True, text=True, cwd=REPO, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode != 0
    assert other in proc.stderr and mine in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert sorted(os.listdir(work_dir)) == before
