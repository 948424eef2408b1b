"""BNRecalibrationHook before the evaluation of an S+P one-shot ticket: the
BN statistics become those of the pruned network on training batches."""
import copy

import torch
from mmengine.config import Config
from mmengine.runner import Runner
from tiny_configs import seg_cfg

from mmsupertickets.engine.hooks import BNRecalibrationHook, OneShotPruningHook
from mmsupertickets.engine.hooks.oneshot_pruning_hook import build_train_loader
from mmsupertickets.engine.runner_surgery import unwrap

BN = 'backbone.stem.0.bn'  # the first BN: its input is conv(image)


def search_checkpoint(root, work_dir):
    cfg = seg_cfg(root, str(work_dir), max_iters=4, hooks=[
        dict(type='SuperNetSearchHook', rho=1e-3, warmup=0, min_macs=0,
             shrink_interval=4, by_epoch=False)])
    Runner.from_cfg(Config(cfg)).train()
    return str(work_dir / 'iter_4.pth'), cfg


def oneshot_val(cfg, ckpt, work_dir, recalibrate):
    cfg = Config(dict(copy.deepcopy(cfg), work_dir=str(work_dir),
                      load_from=ckpt, custom_hooks=[]))
    runner = Runner.from_cfg(cfg)
    runner.register_hook(OneShotPruningHook(0.9, scorer='magnitude'))
    if recalibrate:
        runner.register_hook(BNRecalibrationHook(num_samples=4))
    runner.val()
    return runner


def test_recalibration_changes_oneshot_bn_statistics(cityscapes_root,
                                                     tmp_path):
    ckpt, cfg = search_checkpoint(cityscapes_root, tmp_path / 'search')
    stored = torch.load(ckpt, map_location='cpu', weights_only=False)[
        'state_dict'][BN + '.running_mean']
    bare = oneshot_val(cfg, ckpt, tmp_path / 'bare', False)
    model = unwrap(bare.model)
    # Without it the pruned network is evaluated with the search's stats.
    assert torch.equal(model.get_buffer(BN + '.running_mean'), stored)
    runner = oneshot_val(cfg, ckpt, tmp_path / 'recal', True)
    model = unwrap(runner.model)
    mean = model.get_buffer(BN + '.running_mean')
    assert not torch.allclose(mean, stored)
    # They are the average of the batch means of the pruned (masked)
    # stem conv's output over the same 2 batches of 2 training images.
    bn = model.get_submodule(BN)
    seen = []
    handle = bn.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].mean((0, 2, 3))))
    loader = build_train_loader(runner)
    model.eval()
    with torch.no_grad():
        for batch, _ in zip(loader, range(2)):
            model(**model.data_preprocessor(batch, False))
    handle.remove()
    assert torch.allclose(mean, torch.stack(seen).mean(0), atol=1e-5)
