"""ProgressivePruningHook on stock OpenMMLab models (no supernet).

The stock mmseg ``fcn_hr18`` model, as its config builds it (only BN
instead of SyncBN on CPU and a small input), trains through the stock
runner with the pruning hook; the ticket is exported and evaluated with
``tools/test.py``.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmengine.runner import Runner
from tiny_configs import cls_cfg, seg_cfg

import mmsupertickets  # noqa: F401
from mmsupertickets.apis.export import export_ticket

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
FCN_HR18 = 'mmseg::hrnet/fcn_hr18_4xb2-80k_cityscapes-512x1024.py'
FCN_R50 = 'mmseg::fcn/fcn_r50-d8_4xb2-40k_cityscapes-512x1024.py'


def stock_seg_model(base, tmp_path, size=(32, 64)):
    """The model of a stock mmseg config, with BN and a small input."""
    path = tmp_path / 'stock.py'
    path.write_text(f'_base_ = {base!r}\n')
    model = Config.fromfile(str(path)).model.to_dict()
    model['data_preprocessor']['size'] = size
    for part in ('backbone', 'decode_head', 'auxiliary_head'):
        if 'norm_cfg' in model.get(part, {}):
            model[part]['norm_cfg'] = dict(type='BN', requires_grad=True)
    model['backbone'].pop('init_cfg', None)
    model.pop('pretrained', None)
    return model


@pytest.mark.parametrize(
    'base', [pytest.param(FCN_HR18, marks=pytest.mark.slow),
             pytest.param(FCN_R50, marks=pytest.mark.slow)])
def test_prune_a_stock_seg_model(base, cityscapes_root, tmp_path):
    hooks = [
        dict(type='ProgressivePruningHook', target_sparsity=0.5,
             prune_interval=3, step=0.25, by_epoch=False),
        dict(type='IterativeReactivationHook'),
    ]
    cfg = seg_cfg(cityscapes_root, str(tmp_path / 'work'), max_iters=6,
                  hooks=hooks)
    cfg['model'] = stock_seg_model(base, tmp_path)
    cfg.update(test_dataloader=cfg['val_dataloader'],
               test_evaluator=cfg['val_evaluator'],
               test_cfg=dict(type='TestLoop'))
    Runner.from_cfg(Config(cfg)).train()
    with open(tmp_path / 'work' / 'supertickets_events.jsonl') as f:
        events = [json.loads(line) for line in f]
    prunes = [e for e in events if 'sparsity' in e]
    assert prunes[-1]['sparsity'] == pytest.approx(0.5, abs=2e-3)
    for e in events:
        # Nothing searchable: no channel, path or block counts.
        assert not {'live_channels', 'kernel_paths', 'live_blocks'} & set(e)
    # Costs at the first batch's image size (no search hook gives one).
    assert 0 < prunes[-1]['sparse_macs'] < prunes[-1]['macs']

    cfg_file = str(tmp_path / 'train_cfg.py')
    Config(cfg).dump(cfg_file)
    out = tmp_path / 'ticket'
    summary = export_ticket(cfg_file, str(tmp_path / 'work' / 'iter_6.pth'),
                            str(out), shape=(32, 64))
    assert summary['ticket']['sparsity'] == pytest.approx(0.5, abs=2e-3)
    assert summary['subnet']['macs'] == summary['supernet']['macs']
    assert summary['ticket']['macs'] < summary['subnet']['macs']
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'test.py'),
         str(out / 'config.py'), str(out / 'ticket.pth'), '--work-dir',
         str(tmp_path / 'test')], capture_output=True, text=True, cwd=REPO,
        timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_prune_a_vision_transformer(imagenet_root, tmp_path):
    """mmpretrain's ViT (DeiT-tiny widths): every nn.Linear is prunable,
    the attention's qkv and proj included; the classifier is not."""
    hooks = [dict(type='ProgressivePruningHook', target_sparsity=0.5,
                  prune_interval=1, step=0.25)]
    cfg = cls_cfg(imagenet_root, str(tmp_path / 'work'), max_epochs=2,
                  hooks=hooks)
    cfg['model'].update(
        backbone=dict(type='VisionTransformer', arch='deit-tiny',
                      img_size=32, patch_size=8, drop_path_rate=0.0),
        neck=None,
        head=dict(type='VisionTransformerClsHead', num_classes=10,
                  in_channels=192, loss=dict(type='CrossEntropyLoss')))
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    from mmsupertickets.engine.hooks import ProgressivePruningHook
    hook = next(h for h in runner.hooks
                if isinstance(h, ProgressivePruningHook))
    masked = set(hook.masks.names())
    assert 'backbone.layers.0.attn.qkv.weight' in masked
    assert 'backbone.layers.0.attn.proj.weight' in masked
    assert 'backbone.layers.0.ffn.layers.0.0.weight' in masked
    assert 'head.layers.head.weight' not in masked
    assert hook.sparsity(runner) == pytest.approx(0.5, abs=2e-3)
    with open(tmp_path / 'work' / 'supertickets_events.jsonl') as f:
        final = [json.loads(line) for line in f][-1]
    assert 0 < final['sparse_macs'] < final['macs']
