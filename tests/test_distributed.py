"""Two gloo processes on CPU through torchrun and tools/train.py."""
import os
import os.path as osp
import subprocess
import sys

import torch
from mmengine.config import Config

from tiny_configs import seg_cfg

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_two_ranks_end_with_identical_tickets(cityscapes_root, tmp_path):
    hooks = [
        dict(type='KillChannelsHook', at_iters=(4, )),
        dict(type='SuperNetSearchHook', rho=1e-3, warmup=2, min_macs=0,
             shrink_interval=4, by_epoch=False),
        # Random scores would differ per rank unless broadcast from rank 0.
        dict(type='ProgressivePruningHook', target_sparsity=0.5,
             prune_interval=3, step=0.2, by_epoch=False, scorer='random',
             seed=0),
        dict(type='IterativeReactivationHook'),
        dict(type='DumpTicketHook'),
    ]
    cfg = seg_cfg(cityscapes_root, str(tmp_path / 'work'), max_iters=9,
                  hooks=hooks)
    cfg['custom_imports']['imports'].append('probe_hooks')
    cfg['default_hooks']['checkpoint']['interval'] = 100
    cfg_path = str(tmp_path / 'dist_cfg.py')
    Config(cfg).dump(cfg_path)
    env = dict(os.environ, PYTHONPATH=osp.join(ROOT, 'tests'),
               OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run',
           '--nproc_per_node=2', '--master_port=29613',
           osp.join(ROOT, 'tools', 'train.py'), cfg_path,
           '--launcher', 'pytorch', '--work-dir', str(tmp_path / 'work')]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(str(tmp_path / 'work' / 'rank0.pth'), weights_only=True)
    r1 = torch.load(str(tmp_path / 'work' / 'rank1.pth'), weights_only=True)
    assert r0['arch'] == r1['arch']
    assert sum(r0['arch'].values()) < 4464  # the supernet's channels
    assert r0['masks'].keys() == r1['masks'].keys() and r0['masks']
    for k in r0['masks']:
        assert torch.equal(r0['masks'][k], r1['masks'][k]), k
    for k in r0['weights']:
        assert torch.allclose(r0['weights'][k].float(),
                              r1['weights'][k].float(), atol=1e-6), k
    kept = sum(int(m.sum()) for m in r0['masks'].values())
    total = sum(m.numel() for m in r0['masks'].values())
    assert abs(1 - kept / total - 0.5) < 0.005
