"""Which checkpoint ``tools/train.py --resume`` (no path) continues from.

Real runs leave real checkpoints; each test lays out a work dir from them
(leftovers of another run, damaged files, misleading names) and resumes it
with tools/train.py in a subprocess.
"""
import hashlib
import os
import shutil

import pytest
from damage import flip_tensor_byte
from tiny_configs import seg_cfg
from train_runs import start_training, train

from mmsupertickets.utils.checkpoint_io import load_checkpoint_file
from mmsupertickets.utils.resume import (
    NoResumableCheckpointError,
    find_resumable_checkpoint,
)


def _cfg(root, seed=0):
    cfg = seg_cfg(root, None, max_iters=6)
    cfg['default_hooks']['checkpoint']['interval'] = 2
    cfg['randomness'] = dict(seed=seed)
    return cfg


@pytest.fixture(scope='module')
def runs(cityscapes_root, tmp_path_factory):
    """This run's iter_2/4/6 and another run's (another seed)."""
    base = tmp_path_factory.mktemp('runs')
    procs = [start_training(_cfg(cityscapes_root, seed), base / name)
             for name, seed in (('this', 0), ('other', 1))]
    for proc in procs:
        out = proc.communicate(timeout=600)[0]
        assert proc.returncode == 0, out[-3000:]
    return base / 'this', base / 'other'


def _work_dir(tmp_path, files, last):
    """A work dir holding ``files`` (name -> source) and last_checkpoint."""
    wd = tmp_path / 'work'
    wd.mkdir()
    for name, source in files.items():
        shutil.copy(source, wd / name)
    if last is not None:
        (wd / 'last_checkpoint').write_text(str(wd / last))
    return wd


def _digests(folder):
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in os.listdir(folder)
    }


def _resumed_at(out, step):
    # mmengine's own line: the resumed loop skips the trained batches.
    return f'Advance dataloader {step} steps' in out


def test_last_checkpoint_wins_over_other_runs_leftovers(
        runs, cityscapes_root, tmp_path):
    this, other = runs
    # This run is at step 4; a stale iter_6.pth of another run (stored
    # step 6) and a file named iter_8.pth storing step 2 lie beside it.
    wd = _work_dir(tmp_path, {
        'iter_2.pth': this / 'iter_2.pth',
        'iter_4.pth': this / 'iter_4.pth',
        'iter_6.pth': other / 'iter_6.pth',
        'iter_8.pth': other / 'iter_2.pth',
    }, last='iter_4.pth')
    code, out = train(_cfg(cityscapes_root), wd, resume=True)
    assert code == 0, out[-3000:]
    assert f'Resuming from {wd}/iter_4.pth (named in last_checkpoint' in out
    assert _resumed_at(out, 4)
    # The run went on from 4 and overwrote the stale step-6 file.
    final = load_checkpoint_file(wd / 'iter_6.pth')['meta']
    stale = load_checkpoint_file(other / 'iter_6.pth')['meta']
    assert final['iter'] == 6
    assert final['experiment_name'] != stale['experiment_name']


def test_damaged_last_checkpoint_falls_back_to_stored_step(
        runs, cityscapes_root, tmp_path):
    this, other = runs
    # last_checkpoint names iter_6.pth, cut by a crash. This run's step-4
    # file is misnamed iter_1.pth; another run's step-6 file is here too.
    wd = _work_dir(tmp_path, {
        'iter_1.pth': this / 'iter_4.pth',
        'iter_2.pth': this / 'iter_2.pth',
        'iter_6.pth': this / 'iter_6.pth',
        'epoch_9.pth': other / 'iter_6.pth',
    }, last='iter_6.pth')
    data = (wd / 'iter_6.pth').read_bytes()
    (wd / 'iter_6.pth').write_bytes(data[:len(data) // 2])

    # Without the config the highest stored step wins, whoever wrote it.
    assert find_resumable_checkpoint(wd) == str(wd / 'epoch_9.pth')
    code, out = train(_cfg(cityscapes_root), wd, resume=True)
    assert code == 0, out[-3000:]
    assert f'Skipping checkpoint {wd}/iter_6.pth for resuming' in out
    # With it, this run's own files are preferred: stored step 4.
    assert f'Resuming from {wd}/iter_1.pth: it is the complete ' \
        'checkpoint of the highest stored step (iter 4' in out
    assert 'which is not complete' in out
    assert _resumed_at(out, 4)
    assert load_checkpoint_file(wd / 'iter_6.pth')['meta']['iter'] == 6


def test_all_damaged_refuses_and_changes_nothing(runs, cityscapes_root,
                                                 tmp_path):
    this, _ = runs
    wd = _work_dir(tmp_path, {
        'iter_2.pth': this / 'iter_2.pth',
        'iter_4.pth': this / 'iter_4.pth',
    }, last='iter_6.pth')  # deleted by the checkpoint hook
    data = (wd / 'iter_2.pth').read_bytes()
    (wd / 'iter_2.pth').write_bytes(data[:len(data) // 3])  # truncated
    # One flipped byte inside a tensor's data: a CRC fails.
    flip_tensor_byte(wd / 'iter_4.pth', wd / 'iter_4.pth')
    (wd / 'epoch_3.pth').write_bytes(b'')
    before = _digests(wd)

    code, out = train(_cfg(cityscapes_root), wd, resume=True)
    assert code != 0, out[-3000:]
    assert 'none is complete and readable' in out
    for name, why in (('iter_2.pth', 'zip'), ('iter_4.pth', 'CRC'),
                      ('epoch_3.pth', 'the file is empty'),
                      ('iter_6.pth', 'does not exist')):
        line = next(li for li in out.splitlines()
                    if li.strip().startswith(f'{wd}/{name}:'))
        assert why in line, line
    assert 'Traceback' not in out
    assert _digests(wd) == before  # no log dir, no file touched

    with pytest.raises(NoResumableCheckpointError) as err:
        find_resumable_checkpoint(wd)
    assert len(err.value.rejected) == 4


def test_empty_work_dir_starts_from_scratch(tmp_path):
    assert find_resumable_checkpoint(tmp_path / 'absent') is None
    (tmp_path / 'notes.txt').write_text('not a checkpoint')
    assert find_resumable_checkpoint(tmp_path) is None
