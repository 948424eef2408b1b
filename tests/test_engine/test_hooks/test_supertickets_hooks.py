"""The three SuperTickets hooks driven by the stock mmengine runners."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from tiny_configs import TINY_BACKBONE, cls_cfg, seg_cfg

import mmsupertickets  # noqa: F401
from mmsupertickets.engine.gamma_penalty import GammaPenalty
from mmsupertickets.engine.hooks import (
    ProgressivePruningHook,
    SuperNetSearchHook,
)
from mmsupertickets.models import SuperTicketHRNet
from mmsupertickets.structures.masks import WeightMasks
from mmsupertickets.structures.searchable import find_searchable_units
from mmsupertickets.structures.shrink_plan import (
    apply_plan,
    follow_plan_in_optimizer,
    plan_channel_removal,
)

TARGET = 0.5


def three_hooks(by_epoch=False, shrink=4, prune=3, target=TARGET,
                kill_at=(4, ), **prune_kw):
    return [
        dict(type='KillChannelsHook', at_iters=kill_at),
        dict(type='SuperNetSearchHook', rho=1e-3, warmup=2, min_macs=0,
             shrink_interval=shrink, by_epoch=by_epoch),
        dict(type='ProgressivePruningHook', target_sparsity=target,
             prune_interval=prune, step=0.2, by_epoch=by_epoch, **prune_kw),
        dict(type='IterativeReactivationHook'),
        dict(type='ShrinkProbeHook'),
    ]


def events(work_dir):
    with open(osp.join(work_dir, 'supertickets_events.jsonl')) as f:
        return [json.loads(line) for line in f]


def build_runner(cfg_dict):
    import probe_hooks  # noqa: F401  (registers the probe hooks)
    return Runner.from_cfg(Config(cfg_dict))


def hook_of(runner, hook_type):
    return next(h for h in runner.hooks if isinstance(h, hook_type))


def ticket_state(runner):
    model = runner.model
    pruning = hook_of(runner, ProgressivePruningHook)
    arch = {u.name: u.channels for u in find_searchable_units(model)}
    return arch, pruning.masks.state_dict(), {
        k: v.clone() for k, v in model.state_dict().items()}


def test_seg_two_in_one_iter_based(cityscapes_root, tmp_path):
    """mmseg IterBasedTrainLoop with search, pruning and reactivation."""
    runner = build_runner(seg_cfg(cityscapes_root, str(tmp_path),
                                  max_iters=12, hooks=three_hooks()))
    runner.train()
    ev = events(str(tmp_path))
    kinds = [e['event'] for e in ev]
    assert kinds[0] == 'supernet'
    assert 'shrink' in kinds and 'final prune' in kinds
    supernet = ev[0]
    final = [e for e in ev if e['event'] == 'final prune'][-1]
    # Channels really disappeared and MACs dropped.
    assert final['live_channels'] < supernet['live_channels']
    assert final['kernel_paths'] < supernet['kernel_paths']
    assert final['macs'] < supernet['macs']
    assert final['sparse_macs'] < final['macs']
    # The ticket reaches the target sparsity.
    pruning = hook_of(runner, ProgressivePruningHook)
    assert abs(pruning.sparsity(runner) - TARGET) < 0.005
    assert abs(final['sparsity'] - TARGET) < 0.005
    # Step schedule: 0.2, 0.4, then capped at the target.
    ratios = [e['target_sparsity'] for e in ev if e['event'].startswith(
        'prune')]
    assert ratios[:3] == pytest.approx([0.2, 0.4, 0.5])
    probe = next(h for h in runner.hooks
                 if type(h).__name__ == 'ShrinkProbeHook')
    # Later shrinks find nothing dead: with guard='reference' they rebuild
    # the blocks without a plan (tests/test_engine/test_hooks/
    # test_shrink_guard.py covers those).
    assert probe.records[0]['rebuilt'] > 0, 'the first shrink removed nothing'
    for rec in probe.records:
        # Reactivation: the rebuilt layers are dense right after a shrink.
        assert rec['rebuilt_dense']
        # Every live parameter is one the optimizer updates ...
        assert rec['all_in_optimizer']
        assert rec['optimizer_size'] == rec['live_params']
        # ... and the next step changed every one of them.
        if 'unchanged_after_step' in rec:
            assert rec['unchanged_after_step'] == []
    # PP re-pruned after the shrink: the event after a shrink is at ratio.
    after = [e for e in ev if e['event'].startswith(('prune', 'final prune'))
             and e['iter'] > probe.records[0]['iter']]
    assert after and abs(after[0]['sparsity'] -
                         after[0]['target_sparsity']) < 0.005
    # Masked weights do not contribute: zero them and the output is equal.
    model = runner.model.eval()
    x = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        y_masked = model(x, mode='tensor')
        pruning.masks.detach_all()
        saved = {n: model.get_parameter(n).clone()
                 for n in pruning.masks.masks}
        pruning.masks.bake(model)
        y_baked = model(x, mode='tensor')
        for n, v in saved.items():
            model.get_parameter(n).copy_(v)
    assert torch.allclose(y_masked, y_baked, atol=1e-5)


def test_without_reactivation_masks_follow_the_shrink(cityscapes_root,
                                                      tmp_path):
    hooks = [h for h in three_hooks()
             if h['type'] != 'IterativeReactivationHook']
    runner = build_runner(seg_cfg(cityscapes_root, str(tmp_path),
                                  max_iters=8, hooks=hooks))
    runner.train()
    probe = next(h for h in runner.hooks
                 if type(h).__name__ == 'ShrinkProbeHook')
    assert probe.records and not probe.records[0]['rebuilt_dense']


@pytest.mark.parametrize('scope', [
    'all', pytest.param('rebuilt', marks=pytest.mark.slow),
    pytest.param(None, marks=pytest.mark.slow)])
def test_which_masks_are_dense_after_a_shrink(scope, cityscapes_root,
                                              tmp_path):
    """'all': every kernel-path conv of the surviving blocks; 'rebuilt':
    the tensors the shrink sliced; None: no mask is reset."""
    # Channels die in three units only: the shrink leaves the others be.
    hooks = [dict(h, whole_units=0, share=0.5, max_units=3)
             if h['type'] == 'KillChannelsHook' else h for h in three_hooks()
             if h['type'] != 'IterativeReactivationHook']
    if scope is not None:
        hooks.append(dict(type='IterativeReactivationHook', scope=scope))
    runner = build_runner(seg_cfg(cityscapes_root, str(tmp_path),
                                  max_iters=8, hooks=hooks))
    runner.train()
    probe = next(h for h in runner.hooks
                 if type(h).__name__ == 'ShrinkProbeHook')
    assert probe.records, 'no shrink happened'
    rec = probe.records[0]
    in_units = [n for n in rec['still_masked']
                if n.startswith(tuple(rec['unit_prefixes']))]
    outside = [n for n in rec['still_masked'] if n not in in_units]
    sliced_masked = [n for n in rec['sliced'] if n in rec['still_masked']]
    # Stem and shortcut convs keep their masks under every scope.
    assert any('stem' in n for n in outside)
    assert any('shortcut' in n for n in outside)
    if scope == 'all':
        assert in_units == []
    elif scope == 'rebuilt':
        assert sliced_masked == [] and in_units
    else:
        assert sliced_masked and in_units


def test_final_shrink_is_unconditional_and_guard_counts_at_224(
        cityscapes_root, tmp_path):
    """A min_macs no dead set can reach skips every shrink but the last;
    the guard's MACs are counted at 224x224, not at the 32x64 input."""
    hooks = [dict(h, min_macs=1e15) if h['type'] == 'SuperNetSearchHook'
             else h for h in three_hooks(kill_at=(4, 8))]
    runner = build_runner(seg_cfg(cityscapes_root, str(tmp_path),
                                  max_iters=8, hooks=hooks))
    runner.train()
    kinds = [e['event'] for e in events(str(tmp_path))]
    assert 'shrink' not in kinds  # iteration 4: skipped by the guard
    assert kinds.count('final shrink') == 1  # iteration 8: unconditional
    search = hook_of(runner, SuperNetSearchHook)
    assert search.input_shape == [32, 64]
    assert search.min_macs_shape == [224, 224]
    ratios = [search.guard_macs_per_channel[n] / m
              for n, m in search.macs_per_channel.items() if m > 0]
    # About (224 * 224) / (32 * 64) = 24.5, up to the strides' rounding.
    assert 15 < min(ratios) and max(ratios) < 35, (min(ratios),
                                                   max(ratios))


@pytest.mark.slow
def test_channel_divisor_keeps_every_width_a_multiple(cityscapes_root,
                                                     tmp_path):
    hooks = [dict(h, channel_divisor=8) if h['type'] == 'SuperNetSearchHook'
             else h for h in three_hooks()]
    runner = build_runner(seg_cfg(cityscapes_root, str(tmp_path),
                                  max_iters=8, hooks=hooks))
    runner.train()
    from mmsupertickets.apis.export import export_ticket
    from mmsupertickets.structures.arch import export_arch
    arch = export_arch(runner.model)
    assert any(0 < c < 64 for c in arch.values())  # some units shrank
    assert all(c % 8 == 0 for c in arch.values()), arch
    summary = export_ticket(Config(seg_cfg(cityscapes_root, str(tmp_path),
                                           hooks=hooks)),
                            str(tmp_path / 'iter_8.pth'),
                            str(tmp_path / 'ticket'))
    assert summary['units']['channel_divisor'] == 8
    with pytest.raises(ValueError, match='channel_divisor=0'):
        SuperNetSearchHook(channel_divisor=0)


def test_reactivation_scope_is_checked():
    from mmsupertickets.engine.hooks import IterativeReactivationHook
    with pytest.raises(ValueError, match="scope='some'"):
        IterativeReactivationHook(scope='some')
    with pytest.raises(ValueError, match="reactivation='some'"):
        ProgressivePruningHook(reactivation='some')


def test_resume_reproduces_arch_masks_and_weights(imagenet_root, tmp_path):
    """Epoch-based mmpretrain run, killed after epoch 2 and resumed."""
    hooks = three_hooks(by_epoch=True, shrink=1, prune=1, kill_at=(3, ))
    full = build_runner(cls_cfg(imagenet_root, str(tmp_path / 'full'),
                                max_epochs=4, hooks=hooks))
    full.train()
    ckpt = str(tmp_path / 'full' / 'epoch_2.pth')
    resumed = build_runner(cls_cfg(imagenet_root, str(tmp_path / 'resumed'),
                                   max_epochs=4, hooks=hooks))
    resumed._resume = True
    resumed._load_from = ckpt
    resumed.train()
    arch_a, masks_a, weights_a = ticket_state(full)
    arch_b, masks_b, weights_b = ticket_state(resumed)
    assert arch_a == arch_b
    assert masks_a.keys() == masks_b.keys()
    assert all(torch.equal(masks_a[k], masks_b[k]) for k in masks_a)
    for k in weights_a:
        assert torch.allclose(weights_a[k].float(), weights_b[k].float(),
                              atol=1e-5), k
    assert abs(hook_of(resumed, ProgressivePruningHook).sparsity(resumed) -
               TARGET) < 0.005


def test_checkpoint_of_shrunk_subnet_loads_for_testing(imagenet_root,
                                                       tmp_path):
    hooks = three_hooks(by_epoch=True, shrink=1, prune=1, kill_at=(3, ))
    cfg = cls_cfg(imagenet_root, str(tmp_path / 'train'), max_epochs=2,
                  hooks=hooks)
    runner = build_runner(cfg)
    runner.train()
    arch, masks, _ = ticket_state(runner)
    cfg['work_dir'] = str(tmp_path / 'test')
    cfg['load_from'] = str(tmp_path / 'train' / 'epoch_2.pth')
    cfg['test_dataloader'] = cfg['val_dataloader']
    cfg['test_evaluator'] = cfg['val_evaluator']
    cfg['test_cfg'] = dict()
    tester = build_runner(cfg)
    metrics = tester.test()
    assert 'accuracy/top1' in metrics
    arch_t, masks_t, _ = ticket_state(tester)
    assert arch_t == arch
    assert all(torch.equal(masks[k], masks_t[k]) for k in masks)


def test_checkpoint_of_other_architecture_is_refused(imagenet_root,
                                                     tmp_path):
    hooks = three_hooks(by_epoch=True, shrink=1, prune=1, kill_at=(3, ))
    runner = build_runner(cls_cfg(imagenet_root, str(tmp_path / 'a'),
                                  max_epochs=2, hooks=hooks))
    runner.train()
    ckpt = str(tmp_path / 'a' / 'epoch_2.pth')
    before = open(ckpt, 'rb').read()
    cfg = cls_cfg(imagenet_root, str(tmp_path / 'b'), max_epochs=2,
                  hooks=hooks)
    cfg['model']['backbone']['stage_blocks'] = ((1, ), (1, 1), (1, 1, 1),
                                                (1, 1, 1, 1), (1, 1, 1, 2))
    cfg['load_from'] = ckpt
    other = build_runner(cfg)
    with pytest.raises(ValueError, match='does not fit'):
        other.train()
    assert open(ckpt, 'rb').read() == before


def test_optimizer_state_is_sliced_not_reset():
    torch.manual_seed(0)
    net = SuperTicketHRNet(**{k: v for k, v in TINY_BACKBONE.items()
                              if k != 'type'})
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    sum(y.sum() for y in net(torch.rand(2, 3, 32, 32))).backward()
    opt.step()
    unit = find_searchable_units(net)[3]
    keep = torch.tensor([0, 2, 5])
    name = f'{unit.name}.depthwise.conv.weight'
    p = net.get_parameter(name)
    before = {k: v.clone() for k, v in opt.state[p].items()}
    removed_unit = find_searchable_units(net)[5]
    removed = net.get_parameter(f'{removed_unit.name}.project.weight')
    plan = plan_channel_removal(net, {unit.name: keep,
                                      removed_unit.name: torch.tensor([])})
    follow_plan_in_optimizer(opt, dict(net.named_parameters()), plan)
    apply_plan(net, plan)
    assert net.get_parameter(name) is p and p.shape[0] == 3
    assert torch.equal(opt.state[p]['exp_avg'], before['exp_avg'][keep])
    assert torch.equal(opt.state[p]['exp_avg_sq'],
                       before['exp_avg_sq'][keep])
    assert removed not in opt.state
    assert all(q is not removed for g in opt.param_groups
               for q in g['params'])
    # And the next step runs on the new shapes.
    sum(y.sum() for y in net(torch.rand(2, 3, 32, 32))).backward()
    opt.step()


def _penalised_step(scaled: bool):
    torch.manual_seed(0)
    net = SuperTicketHRNet(**{k: v for k, v in TINY_BACKBONE.items()
                              if k != 'type'})
    units = find_searchable_units(net)
    penalty = GammaPenalty()
    penalty.collect([u.norm.weight for u in units],
                    [0.5 + i / len(units) for i in range(len(units))])
    penalty.rho = 0.1
    with torch.no_grad():
        for g in penalty.gammas:
            g.uniform_(-1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    penalty.attach([opt])
    loss = sum(y.mean() for y in net(torch.rand(2, 3, 32, 32)))
    before = [g.detach().clone() for g in penalty.gammas]
    if scaled:
        # The AMP path: a scaled loss, unscaled inside scaler.step().
        scaler = torch.amp.GradScaler('cpu', init_scale=1024.0)
        scaler.scale(loss).backward()
        grads = None
        scaler.step(opt)
    else:
        loss.backward()
        grads = [g.grad.clone() for g in penalty.gammas]
        opt.step()
    return before, [g.detach().clone() for g in penalty.gammas], grads, \
        penalty


def test_gamma_penalty_is_exact_and_amp_safe():
    before, after, grads, penalty = _penalised_step(scaled=False)
    for b, a, g, w in zip(before, after, grads, penalty.weights):
        expected = b - 0.1 * (g + 0.1 * w * torch.sign(b))
        assert torch.allclose(a, expected, atol=1e-6)
    if not hasattr(torch.amp, 'GradScaler'):
        pytest.skip('torch < 2.3 has no CPU GradScaler: the unscaled step '
                    'is checked, the AMP path only on newer torch')
    _, after_amp, _, _ = _penalised_step(scaled=True)
    for a, b in zip(after, after_amp):
        assert torch.allclose(a, b, atol=1e-5)


def test_gamma_penalty_once_with_two_optimizers():
    # Each γ gets ρ·p·sign(γ) from the optimizer that steps it, not from
    # every optimizer (OptimWrapperDict).
    torch.manual_seed(0)
    net = SuperTicketHRNet(**{k: v for k, v in TINY_BACKBONE.items()
                              if k != 'type'})
    gammas = [u.norm.weight for u in find_searchable_units(net)]
    penalty = GammaPenalty()
    penalty.collect(gammas, [1.0] * len(gammas))
    penalty.rho = 0.1
    half = len(gammas) // 2
    optimizers = [torch.optim.SGD(gammas[:half], lr=1.0),
                  torch.optim.SGD(gammas[half:], lr=1.0)]
    penalty.attach(optimizers)
    for g in gammas:
        g.grad = torch.zeros_like(g)
    before = [g.detach().clone() for g in gammas]
    for opt in optimizers:
        opt.step()
    for b, g in zip(before, gammas):
        assert torch.allclose(g.detach(), b - 0.1 * torch.sign(b))


def test_masks_multiply_by_a_float_copy_that_follows_the_mask():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 3)
    net = torch.nn.Sequential(conv)
    masks = WeightMasks()
    keep = torch.rand(conv.weight.shape) > 0.5
    masks.set(net, '0.weight', keep)
    x = torch.rand(1, 2, 5, 5)

    def expected():
        return torch.nn.functional.conv2d(
            x, conv.weight * masks.masks['0.weight'], conv.bias)

    assert torch.allclose(net(x), expected())
    # Edited in place, replaced, or the weight changes dtype: the copy the
    # forward multiplies by follows.
    masks.masks['0.weight'][0] = False
    assert torch.allclose(net(x), expected())
    masks.set(net, '0.weight', torch.ones_like(keep))
    assert torch.allclose(net(x), conv(x))
    masks.set(net, '0.weight', keep)
    net.double()
    x = x.double()
    assert net(x).dtype == torch.float64
    assert torch.allclose(net(x), expected())
    # Masked positions get no gradient; the stored values stay.
    stored = conv.weight.detach().clone()
    net(x).sum().backward()
    assert not conv.weight.grad[~keep].any()
    assert torch.equal(conv.weight.detach(), stored)


def test_masks_keep_state_dict_vanilla_and_block_updates():
    torch.manual_seed(0)
    net = SuperTicketHRNet(**{k: v for k, v in TINY_BACKBONE.items()
                              if k != 'type'})
    keys = list(net.state_dict())
    name = 'stem.0.conv.weight'
    w = net.get_parameter(name)
    mask = torch.rand(w.shape) > 0.5
    masks = WeightMasks()
    masks.set(net, name, mask)
    stored = w.detach().clone()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sum(y.sum() for y in net(torch.rand(2, 3, 32, 32))).backward()
    assert torch.all(w.grad[~mask] == 0)
    opt.step()
    # Masked values stay stored, untouched by the step.
    assert torch.equal(w.detach()[~mask], stored[~mask])
    assert list(net.state_dict()) == keys
    assert masks.reset([name]) == int((~mask).sum())


@pytest.mark.parametrize('key,value', [
    ('target_sparsity', 1.0), ('target_sparsity', -0.1),
    ('prune_interval', 0), ('scorer', 'taylor'), ('scope', 'block')])
def test_bad_pruning_settings_name_the_value(key, value):
    with pytest.raises(ValueError, match=str(value)):
        ProgressivePruningHook(**{key: value})


def test_bad_search_settings_name_the_value():
    with pytest.raises(ValueError, match='shrink_interval=-1'):
        SuperNetSearchHook(shrink_interval=-1)


def test_hooks_refuse_a_model_without_searchable_units(imagenet_root,
                                                       tmp_path):
    cfg = cls_cfg(imagenet_root, str(tmp_path), max_epochs=1,
                  hooks=[dict(type='SuperNetSearchHook')])
    cfg['model']['backbone'] = dict(type='ResNet', depth=18,
                                    out_indices=(3, ))
    cfg['model']['head']['in_channels'] = 512
    with pytest.raises(TypeError, match='no searchable units'):
        build_runner(cfg).train()


def test_intervals_count_optimizer_steps_under_accumulation(cityscapes_root,
                                                             tmp_path):
    hooks = three_hooks(shrink=3, prune=2, kill_at=(6, ))
    cfg = seg_cfg(cityscapes_root, str(tmp_path), max_iters=12, hooks=hooks)
    cfg['optim_wrapper']['accumulative_counts'] = 2
    build_runner(cfg).train()
    ev = events(str(tmp_path))
    # Prune every 2 optimizer steps = every 4 iterations; shrink every 3
    # steps = every 6 iterations; the last iteration prunes to the target.
    assert [e['iter'] for e in ev if e['event'].startswith('prune')] == [4, 8]
    assert [e['iter'] for e in ev if e['event'] == 'shrink'] == [6]
    assert ev[-1]['event'] == 'final prune' and ev[-1]['iter'] == 12
    assert abs(ev[-1]['sparsity'] - TARGET) < 0.005


def test_ema_copy_follows_the_shrink(imagenet_root, tmp_path):
    from mmengine.hooks import EMAHook
    hooks = three_hooks(by_epoch=True, shrink=1, prune=1, kill_at=(3, ))
    hooks.append(dict(type='EMAHook', momentum=0.5))
    runner = build_runner(cls_cfg(imagenet_root, str(tmp_path), max_epochs=3,
                                  hooks=hooks))
    runner.train()
    assert any(e['event'] == 'shrink' for e in events(str(tmp_path)))
    ema = hook_of(runner, EMAHook).ema_model
    live = dict(runner.model.named_parameters())
    shadow = dict(ema.module.named_parameters())
    assert live.keys() == shadow.keys()
    assert all(live[k].shape == shadow[k].shape for k in live)
    # The averaged tensors are the shadow's own (refreshed after a shrink).
    assert all(ema.avg_parameters[k] is shadow[k] or
               ema.avg_parameters[k].data_ptr() == shadow[k].data_ptr()
               for k in shadow)
