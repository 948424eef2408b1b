"""A checkpoint with one flipped byte is refused wherever it is read: the
loader, mmengine's load_from / --resume PATH / tools/test.py path, the
export tool and tools/train.py --resume PATH (#21.3)."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from damage import flip_tensor_byte
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader
from tiny_configs import seg_cfg

import mmsupertickets  # noqa: F401
from mmsupertickets.utils.checkpoint_io import (
    CorruptCheckpointError,
    load_checkpoint_file,
    safe_checkpoint_loading,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture
def damaged(tmp_path):
    good = tmp_path / 'good.pth'
    weight = torch.arange(4096.)
    torch.save({'state_dict': {'w': weight}, 'meta': {'iter': 4}}, good)
    bad = tmp_path / 'bad.pth'
    flip_tensor_byte(good, bad)
    return good, bad, weight


def test_torch_alone_reads_the_flipped_byte_as_a_wrong_weight(damaged):
    good, bad, weight = damaged
    # Why the check is needed: torch loads the damaged file silently.
    loaded = torch.load(bad, weights_only=True)['state_dict']['w']
    assert int((loaded != weight).sum()) == 1
    assert torch.equal(load_checkpoint_file(good)['state_dict']['w'], weight)


def test_loader_refuses_a_failed_crc_naming_file_and_member(damaged):
    _, bad, _ = damaged
    with pytest.raises(CorruptCheckpointError, match='CRC') as info:
        load_checkpoint_file(bad)
    assert str(bad) in str(info.value) and '/data/' in str(info.value)


def test_mmengine_loading_refuses_a_failed_crc(damaged):
    # The path of load_from, --resume PATH and tools/test.py.
    _, bad, _ = damaged
    with safe_checkpoint_loading():
        with pytest.raises(CorruptCheckpointError, match='CRC'):
            CheckpointLoader.load_checkpoint(str(bad))


@pytest.fixture(scope='module')
def tiny_run(cityscapes_root, tmp_path_factory):
    """A 4-iteration search run; its checkpoint and its config file."""
    work_dir = tmp_path_factory.mktemp('crc_run')
    cfg = seg_cfg(cityscapes_root, str(work_dir / 'run'), max_iters=4,
                  hooks=[dict(type='SuperNetSearchHook', rho=1e-3, warmup=2,
                              min_macs=0, shrink_interval=2,
                              by_epoch=False)])
    Runner.from_cfg(Config(cfg)).train()
    # tools/test.py tests on the validation split.
    cfg.update(test_dataloader=cfg['val_dataloader'],
               test_evaluator=cfg['val_evaluator'],
               test_cfg=dict(type='TestLoop'))
    cfg_file = str(work_dir / 'run_cfg.py')
    Config(cfg).dump(cfg_file)
    bad = str(work_dir / 'iter_4_flipped.pth')
    flip_tensor_byte(str(work_dir / 'run' / 'iter_4.pth'), bad)
    return dict(cfg_file=cfg_file, bad=bad, root=work_dir)


def run_tool(*args):
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=REPO,
        timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
    return proc.returncode, proc.stdout + proc.stderr


def test_export_tool_refuses_a_failed_crc(tiny_run, tmp_path):
    out = tmp_path / 'ticket'
    code, log = run_tool(
        osp.join(REPO, 'tools', 'export_ticket.py'), tiny_run['cfg_file'],
        tiny_run['bad'], '--out', str(out))
    assert code != 0
    assert 'CRC' in log and tiny_run['bad'] in log
    assert 'Traceback' not in log
    assert not out.exists() and os.listdir(tmp_path) == []


def test_train_resume_path_refuses_a_failed_crc(tiny_run, tmp_path):
    """The resumed run must not write a new checkpoint from the damaged
    one."""
    work_dir = tmp_path / 'resumed'
    code, log = run_tool(
        osp.join(REPO, 'tools', 'train.py'), tiny_run['cfg_file'],
        '--work-dir', str(work_dir), '--resume', tiny_run['bad'],
        '--cfg-options', 'train_cfg.max_iters=8')
    assert code != 0
    assert 'CRC' in log and tiny_run['bad'] in log
    assert not [n for n in os.listdir(work_dir) if n.endswith('.pth')]


def test_test_tool_refuses_a_failed_crc(tiny_run, tmp_path):
    code, log = run_tool(
        osp.join(REPO, 'tools', 'test.py'), tiny_run['cfg_file'],
        tiny_run['bad'], '--work-dir', str(tmp_path / 'test'))
    assert code != 0
    assert 'CRC' in log and tiny_run['bad'] in log


def test_train_resume_path_may_name_another_runs_file(tiny_run, tmp_path):
    """Only a bare --resume is kept inside the work dir (#21.6): a path
    given explicitly is taken, and the run continues from its step."""
    work_dir = tmp_path / 'resumed'
    good = str(tiny_run['root'] / 'run' / 'iter_4.pth')
    code, log = run_tool(
        osp.join(REPO, 'tools', 'train.py'), tiny_run['cfg_file'],
        '--work-dir', str(work_dir), '--resume', good,
        '--cfg-options', 'train_cfg.max_iters=6')
    assert code == 0, log[-2000:]
    # (the config logs at WARNING: mmengine's skip of the trained steps)
    assert good in log and 'Advance dataloader 4 steps' in log
    steps = sorted(int(n[5:-4]) for n in os.listdir(work_dir)
                   if n.startswith('iter_') and n.endswith('.pth'))
    assert steps and steps[0] > 4 and steps[-1] == 6
