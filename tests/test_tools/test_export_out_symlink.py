"""--out a symbolic link: the export goes into the link's target, which
--force replaces; the link keeps pointing at it (#21.9)."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from tiny_configs import seg_cfg

import mmsupertickets  # noqa: F401
from mmsupertickets.apis.export import export_ticket

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def tiny_run(cityscapes_root, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('symlink_run'))
    cfg = seg_cfg(cityscapes_root, work_dir, max_iters=4,
                  hooks=[dict(type='SuperNetSearchHook', rho=1e-3, warmup=2,
                              min_macs=0, shrink_interval=2,
                              by_epoch=False)])
    Runner.from_cfg(Config(cfg)).train()
    return cfg, osp.join(work_dir, 'iter_4.pth')


def export(tiny_run, out, **kwargs):
    cfg, ckpt = tiny_run
    return export_ticket(Config(cfg), ckpt, str(out), shape=(32, 64),
                         **kwargs)


def files(folder):
    return sorted(os.listdir(folder))


def test_link_to_an_empty_folder(tiny_run, tmp_path):
    target = tmp_path / 'store' / 'ticket'
    target.mkdir(parents=True)
    link = tmp_path / 'out'
    link.symlink_to(target)
    export(tiny_run, link)
    assert link.is_symlink() and osp.realpath(link) == str(target)
    assert 'ticket.pth' in files(target)
    assert files(tmp_path) == ['out', 'store']  # no temp folders
    assert files(tmp_path / 'store') == ['ticket']


def test_force_replaces_the_links_target(tiny_run, tmp_path):
    target = tmp_path / 'store' / 'ticket'
    export(tiny_run, target)
    reference = torch.load(target / 'ticket.pth', weights_only=True)
    (target / 'ticket.pth').write_bytes(b'stale')
    link = tmp_path / 'out'
    link.symlink_to(target)
    with pytest.raises(FileExistsError, match='--force'):
        export(tiny_run, link)
    export(tiny_run, link, force=True)
    assert link.is_symlink() and osp.realpath(link) == str(target)
    got = torch.load(target / 'ticket.pth', weights_only=True)
    assert got['state_dict'].keys() == reference['state_dict'].keys()
    assert all(torch.equal(got['state_dict'][k], v)
               for k, v in reference['state_dict'].items())
    # No stray .old-* or temp entries beside the link or the target.
    assert files(tmp_path) == ['out', 'store']
    assert files(tmp_path / 'store') == ['ticket']


def test_cli_follows_a_dangling_link_and_says_so(tiny_run, tmp_path):
    cfg, ckpt = tiny_run
    cfg_file = tmp_path / 'cfg.py'
    Config(cfg).dump(str(cfg_file))
    target = tmp_path / 'store' / 'a' / 'ticket'  # parents missing too
    link = tmp_path / 'out'
    link.symlink_to(target)
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'export_ticket.py'),
         str(cfg_file), ckpt, '--out', str(link), '--shape', '32', '64'],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr
    assert f'Wrote {link} (-> {target})' in proc.stdout
    assert link.is_symlink() and osp.realpath(link) == str(target)
    assert 'ticket.pth' in files(target)
    assert files(tmp_path) == ['cfg.py', 'out', 'store']
    assert files(tmp_path / 'store' / 'a') == ['ticket']
