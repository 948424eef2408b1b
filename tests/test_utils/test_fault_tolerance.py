"""Runs killed with SIGKILL and resumed with ``tools/train.py --resume``.

The killed runs are real processes: one dies between checkpoints, one
halfway through writing a checkpoint. Each resumed run must end with the
architecture, masks and weights of the run that was never interrupted, and
the last good checkpoint must survive the crash byte for byte.
"""
import hashlib
import os
import signal
import zipfile

import pytest
import torch
from tiny_configs import ticket_run_cfg
from train_runs import start_training, train

from mmsupertickets.utils.checkpoint_io import load_checkpoint_file
from mmsupertickets.utils.resume import (
    NoResumableCheckpointError,
    find_resumable_checkpoint,
)


def _digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.slow
def test_killed_runs_resume_to_the_uninterrupted_ticket(
        cityscapes_root, tmp_path):
    cfg = ticket_run_cfg(cityscapes_root, max_iters=12, target=0.6,
                         extra_hooks=[dict(type='CrashHook')])
    # Under a MACs budget ρ is state too: the controller's value after the
    # shrink at 8 drives steps 9-12 and the last shrink trims to the budget.
    next(h for h in cfg['custom_hooks']
         if h['type'] == 'SuperNetSearchHook').update(target_macs=0.7)
    # As the shipped configs: atomic writes, and two checkpoints kept
    # (the stock hook deletes the oldest before writing the next).
    cfg['default_hooks']['checkpoint'].update(
        interval=4, max_keep_ckpts=2,
        backend_args=dict(backend='atomic_local'))
    clean_dir, crash_dir = tmp_path / 'clean', tmp_path / 'crashed'
    # The uninterrupted run goes alongside (two cores).
    clean = start_training(cfg, clean_dir)

    # Killed after step 10: past the shrink at 4, the prunes at 3, 6, 9 and
    # the checkpoints at 4 and 8.
    code, out = train(cfg, crash_dir, crash='iter:10')
    assert code == -signal.SIGKILL, out[-3000:]
    assert sorted(n for n in os.listdir(crash_dir) if n.endswith('.pth')) \
        == ['iter_4.pth', 'iter_8.pth']
    good = _digest(crash_dir / 'iter_8.pth')

    # Resumed from step 8, killed halfway through writing step 12's file.
    code, out = train(cfg, crash_dir, crash='save:12', resume=True)
    assert code == -signal.SIGKILL, out[-3000:]
    assert 'iter_8.pth' in out
    leftovers = [n for n in os.listdir(crash_dir) if n.endswith('.tmp')]
    assert len(leftovers) == 1 and leftovers[0].startswith('.iter_12.pth.')
    assert not zipfile.is_zipfile(crash_dir / leftovers[0])  # really cut
    assert not (crash_dir / 'iter_12.pth').exists()
    assert _digest(crash_dir / 'iter_8.pth') == good
    assert find_resumable_checkpoint(crash_dir) == str(crash_dir /
                                                       'iter_8.pth')

    code, out = train(cfg, crash_dir, resume=True)
    assert code == 0, out[-3000:]
    out = clean.communicate(timeout=600)[0]
    assert clean.returncode == 0, out[-3000:]

    want = torch.load(clean_dir / 'rank0.pth', weights_only=True)
    got = torch.load(crash_dir / 'rank0.pth', weights_only=True)
    assert got['arch'] == want['arch']
    assert sum(want['arch'].values()) < 4464  # the search did shrink
    assert got['masks'].keys() == want['masks'].keys() and want['masks']
    for name, mask in want['masks'].items():
        assert torch.equal(got['masks'][name], mask), name
    kept = sum(int(m.sum()) for m in want['masks'].values())
    total = sum(m.numel() for m in want['masks'].values())
    assert abs(1 - kept / total - 0.6) < 0.005
    assert got['weights'].keys() == want['weights'].keys()
    for name, weight in want['weights'].items():
        assert torch.equal(got['weights'][name], weight), name
    final = load_checkpoint_file(crash_dir / 'iter_12.pth')
    assert final['meta']['iter'] == 12
    search = final['supertickets']['search']
    assert search['budget_macs'] > 0 and search['controlled_rho'] != 1e-3


def _save(path, step):
    torch.save(dict(meta=dict(iter=step), state_dict={}), path)


def test_resume_skips_damaged_and_missing_checkpoints(tmp_path):
    assert find_resumable_checkpoint(tmp_path / 'absent') is None
    for step in (4, 8, 12):
        _save(tmp_path / f'iter_{step}.pth', step)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_8.pth'))
    # last_checkpoint lags (a crash right after the save): newest wins.
    assert find_resumable_checkpoint(tmp_path) == str(tmp_path / 'iter_12.pth')

    # The newest was truncated by an in-place write.
    data = (tmp_path / 'iter_12.pth').read_bytes()
    (tmp_path / 'iter_12.pth').write_bytes(data[:len(data) // 2])
    before = _digest(tmp_path / 'iter_12.pth')
    assert find_resumable_checkpoint(tmp_path) == str(tmp_path / 'iter_8.pth')
    assert _digest(tmp_path / 'iter_12.pth') == before  # left for a look

    # last_checkpoint names a deleted file, or is empty.
    (tmp_path / 'iter_8.pth').unlink()
    assert find_resumable_checkpoint(tmp_path) == str(tmp_path / 'iter_4.pth')
    (tmp_path / 'last_checkpoint').write_text('')
    assert find_resumable_checkpoint(tmp_path) == str(tmp_path / 'iter_4.pth')

    # Only damaged files left: refused, never a silent fresh start.
    (tmp_path / 'iter_4.pth').write_bytes(b'')
    with pytest.raises(NoResumableCheckpointError, match='iter_4.pth'):
        find_resumable_checkpoint(tmp_path)
