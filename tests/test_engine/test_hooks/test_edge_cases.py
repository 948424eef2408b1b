"""Settings that used to fail late or silently are refused up front, and
frozen parameters stay out of the search and the pruning."""
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from tiny_configs import cls_cfg, seg_cfg
from train_runs import train

import mmsupertickets  # noqa: F401
from mmsupertickets.engine.hooks import (
    ProgressivePruningHook,
    SuperNetSearchHook,
)
from mmsupertickets.pruning.prunable import prunable_weights
from mmsupertickets.pruning.scorers import gradient_scores
from mmsupertickets.structures.searchable import find_searchable_units


def _hooks(by_epoch, shrink=4, prune=3, **search):
    return [
        dict(type='SuperNetSearchHook', rho=1e-3, warmup=2, min_macs=0,
             shrink_interval=shrink, by_epoch=by_epoch, **search),
        dict(type='ProgressivePruningHook', target_sparsity=0.5,
             prune_interval=prune, step=0.2, by_epoch=by_epoch),
    ]


def _checkpoints(work_dir):
    if not os.path.isdir(work_dir):
        return []
    return [f for f in os.listdir(work_dir) if f.endswith('.pth')]


# -- intervals -------------------------------------------------------------
@pytest.mark.parametrize('hook,key', [(SuperNetSearchHook, 'shrink_interval'),
                                      (ProgressivePruningHook,
                                       'prune_interval')])
def test_step_intervals_must_be_whole_steps(hook, key):
    # 0.5 steps used to end in ZeroDivisionError (prune) or never fire
    # (shrink); the hooks are built with the runner, before training.
    with pytest.raises(ValueError, match=rf'{key}=0\.5 counts optimizer '
                       r'steps \(by_epoch=False\) and must be a whole'):
        hook(**{key: 0.5, 'by_epoch': False})
    with pytest.raises(ValueError, match=rf'{key}=True'):
        hook(**{key: True, 'by_epoch': False})
    assert getattr(hook(**{key: 4.0, 'by_epoch': False}), key) == 4
    # Fractions of an epoch are fine.
    assert getattr(hook(**{key: 0.5, 'by_epoch': True}), key) == 0.5


def test_step_fraction_fails_before_training(cityscapes_root, tmp_path):
    cfg = seg_cfg(cityscapes_root, None, max_iters=4,
                  hooks=_hooks(False, prune=0.5))
    code, out = train(cfg, tmp_path / 'run')
    assert code != 0
    assert 'prune_interval=0.5 counts optimizer steps' in out, out[-3000:]
    assert _checkpoints(tmp_path / 'run') == []


@pytest.mark.parametrize('key', ['prune_interval', 'shrink_interval'])
def test_epoch_interval_shorter_than_an_iteration_is_refused(
        imagenet_root, tmp_path, key):
    # 20 images, batch 8: 3 iterations an epoch; 0.01 epochs would round
    # to 0 iterations, so only the final event would remain.
    intervals = dict(prune=1, shrink=1)
    intervals[key.split('_')[0]] = 0.01
    cfg = cls_cfg(imagenet_root, None, max_epochs=2,
                  hooks=_hooks(True, **intervals))
    code, out = train(cfg, tmp_path / 'run')
    assert code != 0
    assert (f'{key}=0.01 epochs is shorter than one iteration: an epoch has '
            '3 iteration(s) (dataset of 20, batch_size=8, drop_last=False), '
            'so the shortest interval is 1/3') in out, out[-3000:]
    assert _checkpoints(tmp_path / 'run') == []


# -- empty epochs ----------------------------------------------------------
@pytest.mark.parametrize('kind', ['epoch_based', 'iter_based'])
def test_dataset_smaller_than_a_batch_with_drop_last_is_refused(
        cityscapes_root, imagenet_root, tmp_path, kind):
    if kind == 'epoch_based':  # used to exit 0 without a single step
        cfg = cls_cfg(imagenet_root, None, max_epochs=2,
                      hooks=_hooks(True, prune=1, shrink=1))
        size, batch = 20, 32
    else:  # used to end in a bare StopIteration
        cfg = seg_cfg(cityscapes_root, None, max_iters=4,
                      hooks=_hooks(False))
        cfg['train_dataloader']['sampler']['type'] = 'DefaultSampler'
        size, batch = 8, 16
    cfg['train_dataloader'].update(batch_size=batch, drop_last=True)
    code, out = train(cfg, tmp_path / 'run')
    assert code != 0
    assert (f'the training dataloader yields no batch: dataset of {size} '
            f'sample(s), batch_size={batch}, drop_last=True') in out, \
        out[-3000:]
    assert _checkpoints(tmp_path / 'run') == []


# -- frozen parameters -----------------------------------------------------
def _frozen(name):
    return name.startswith(('backbone.stem.', 'backbone.stage0.'))


@pytest.mark.parametrize('scorer', ['snip', 'magnitude'])
def test_frozen_parameters_stay_out_of_search_and_pruning(
        cityscapes_root, tmp_path, scorer):
    """``frozen_stages=1`` freezes the stem and stage 0 (their γ stay 1.0);
    one more conv is frozen by hand. ``threshold=1.0`` would call every
    frozen γ dead, and a trainable γ dies once the penalty moved it."""
    hooks = _hooks(False, shrink=4, prune=3, threshold=1.0)
    hooks[1]['scorer'] = scorer
    cfg = seg_cfg(cityscapes_root, str(tmp_path), max_iters=6, hooks=hooks)
    cfg['model']['backbone']['frozen_stages'] = 1
    runner = Runner.from_cfg(Config(cfg))
    model = runner.model
    by_hand = 'backbone.stage3.fuse.blocks.out1_in0.shortcut.weight'
    dict(model.named_parameters())[by_hand].requires_grad = False
    frozen_units = {u.name: u.channels for u in find_searchable_units(model)
                    if _frozen(u.name)}
    assert frozen_units
    supernet = sum(u.channels for u in find_searchable_units(model))

    runner.train()

    frozen = {n: p for n, p in model.named_parameters()
              if not p.requires_grad}
    assert by_hand in frozen and len(frozen) > 10
    units = find_searchable_units(model)
    # Frozen γ got no penalty (no grad, still exactly 1) and their units
    # kept every channel; trainable units did shrink.
    for u in units:
        if u.name in frozen_units:
            assert u.norm.weight.grad is None
            assert torch.equal(u.norm.weight, torch.ones_like(
                u.norm.weight)), u.name
            assert u.channels == frozen_units[u.name]
    assert {u.name for u in units} >= set(frozen_units)
    assert sum(u.channels for u in units) < supernet
    # No frozen weight is scored or masked; the trainable ones reach the
    # target.
    pruning = next(h for h in runner.hooks
                   if isinstance(h, ProgressivePruningHook))
    masked = set(pruning.masks.masks)
    assert masked and not masked & set(frozen)
    assert abs(pruning.sparsity(runner) - 0.5) < 0.005
    assert set(prunable_weights(model)) - set(pruning.prunable(runner)) == \
        {n for n in prunable_weights(model) if n in frozen}


def test_snip_scorer_names_a_weight_without_gradient():
    w = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match=r"no gradient for 1 weight\(s\), "
                       r"e\.g\. 'frozen\.weight'"):
        gradient_scores({'frozen.weight': w, 'live.weight': w},
                        grads={'live.weight': torch.ones(2)})
