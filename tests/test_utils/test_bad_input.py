"""Bad input fails early with an error naming the problem; nothing written
before is touched."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmengine.runner import Runner
from tiny_configs import seg_cfg

import mmsupertickets  # noqa: F401
from mmsupertickets.utils.checkpoint_io import (
    CorruptCheckpointError,
    safe_checkpoint_loading,
)
from mmsupertickets.utils.preflight import check_datasets

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_missing_dataset_folder_is_named(tmp_path):
    cfg = Config(seg_cfg(str(tmp_path / 'nowhere'), str(tmp_path / 'w')))
    with pytest.raises(FileNotFoundError,
                       match='train_dataloader.dataset .*nowhere'):
        check_datasets(cfg)


def test_empty_dataset_folder_is_named(tmp_path):
    for sub in ('leftImg8bit/train', 'gtFine/train'):
        os.makedirs(tmp_path / 'empty' / sub)
    cfg = Config(seg_cfg(str(tmp_path / 'empty'), str(tmp_path / 'w')))
    with pytest.raises(ValueError, match='CityscapesDataset.* is empty'):
        check_datasets(cfg)


@pytest.mark.slow
def test_train_tool_reports_missing_data(tmp_path):
    cfg_path = str(tmp_path / 'cfg.py')
    Config(seg_cfg(str(tmp_path / 'nowhere'), str(tmp_path / 'w'))).dump(
        cfg_path)
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'train.py'), cfg_path],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode != 0
    assert 'nowhere' in proc.stderr and 'does not exist' in proc.stderr
    assert not osp.exists(tmp_path / 'w')


def test_corrupted_checkpoint_is_refused_and_left_alone(cityscapes_root,
                                                        tmp_path):
    bad = tmp_path / 'iter_4.pth'
    bad.write_bytes(b'PK\x03\x04 not really a checkpoint')
    before = bad.read_bytes()
    cfg = seg_cfg(cityscapes_root, str(tmp_path / 'w'), max_iters=1)
    cfg['load_from'] = str(bad)
    # The project's safe loading, as tools/train.py and the hooks use it.
    runner = Runner.from_cfg(Config(cfg))
    with pytest.raises(CorruptCheckpointError, match='iter_4.pth'), \
            safe_checkpoint_loading():
        runner.train()
    assert bad.read_bytes() == before
