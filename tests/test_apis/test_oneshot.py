"""S+P baselines (tools/prune_oneshot.py) and the trade-off comparison."""
import hashlib
import importlib.util
import json
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner
from tiny_configs import seg_cfg

import mmsupertickets  # noqa: F401
from mmsupertickets.analysis.tradeoff import (
    collect_points,
    compare_tradeoff,
    find_metric,
)
from mmsupertickets.apis.oneshot import (
    OneShotPruningHook,
    check_ratios,
    check_scorers,
    prune_oneshot,
    retrain_loop,
)
from mmsupertickets.pruning.prunable import prunable_weights
from mmsupertickets.structures.arch import apply_arch, check_arch_fits
from mmsupertickets.structures.masks import WeightMasks
from mmsupertickets.structures.state_checks import (
    TicketStateError,
    unmark_masked_state,
)
from mmsupertickets.utils.checkpoint_io import load_checkpoint_file

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOL = 0.005


def load_tool(rel_path):
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(rel_path))[0], osp.join(ROOT, rel_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope='module')
def search_run(cityscapes_root, tmp_path_factory):
    """A tiny search-only run and its config: channels (two whole kernel
    paths among them) are zeroed right before the shrink at iteration 4."""
    import probe_hooks  # noqa: F401  (registers KillChannelsHook)
    work_dir = str(tmp_path_factory.mktemp('search'))
    hooks = [
        dict(type='KillChannelsHook', at_iters=(4, )),
        dict(type='SuperNetSearchHook', rho=1e-3, warmup=2, min_macs=0,
             shrink_interval=4, by_epoch=False),
    ]
    cfg = seg_cfg(cityscapes_root, work_dir, max_iters=4, hooks=hooks)
    cfg['custom_imports']['imports'].append('probe_hooks')
    Runner.from_cfg(Config(cfg)).train()
    config = osp.join(work_dir, 'search_config.py')
    Config(cfg).dump(config)
    with open(osp.join(work_dir, 'supertickets_events.jsonl')) as f:
        events = [json.loads(line) for line in f]
    return dict(config=config, ckpt=osp.join(work_dir, 'iter_4.pth'),
                events=events, cfg=cfg, work_dir=work_dir)


def model_at(cfg, arch):
    init_default_scope(cfg['default_scope'])
    model = MODELS.build(Config(cfg).model)
    check_arch_fits(model, arch)
    apply_arch(model, arch)
    return model.eval()


@pytest.mark.slow
def test_sweep_reaches_every_ratio_and_keeps_ckpt(search_run, tmp_path):
    ckpt = search_run['ckpt']
    digest = sha256(ckpt)
    tool = load_tool('tools/prune_oneshot.py')
    out = str(tmp_path / 'sp')
    results = tool.main([
        search_run['config'], ckpt, '--scorers', 'random', 'magnitude',
        'snip', '--ratios', '0.5', '0.93', '--work-dir', out
    ])
    assert len(results) == 6
    shrink = [e for e in search_run['events']
              if e['event'].endswith('shrink')][-1]
    supernet = search_run['events'][0]
    for res in results:
        path = osp.join(out, f'{res["scorer"]}_{res["ratio"]:g}.json')
        with open(path) as f:
            saved = json.load(f)
        assert saved == json.loads(json.dumps(res))
        assert abs(saved['sparsity'] - saved['ratio']) < TOL
        assert saved['metrics']['oneshot']['mIoU'] >= 0
        assert saved['metrics']['retrained'] is None
        cost = saved['complexity']
        # The searched subnet was rebuilt from the checkpoint.
        assert cost['dense_subnet']['macs'] == shrink['macs']
        assert cost['dense_subnet']['macs'] < supernet['macs']
        assert cost['input_shape'] == saved['input_shape'] == [32, 64]
        assert 0 < cost['sparse']['macs'] < cost['dense_subnet']['macs']
        assert 0 < cost['sparse']['params'] < cost['dense_subnet']['params']
        expected = cost['dense_subnet']['macs'] * (1 - saved['sparsity'])
        assert cost['macs_x_global_density'] == pytest.approx(expected,
                                                              rel=1e-3)
        # The one-shot ticket holds the same masks and the source weights.
        ticket = load_checkpoint_file(saved['ticket'])
        masks = ticket['supertickets']['pruning']['masks']
        kept = sum(int(m.sum()) for m in masks.values())
        assert 1 - kept / saved['prunable_weights'] == pytest.approx(
            saved['sparsity'])
    # Different scores, different masks.
    by = {(r['scorer'], r['ratio']): r for r in results}
    masks = {k: load_checkpoint_file(r['ticket'])['supertickets']
             ['pruning']['masks'] for k, r in by.items()}
    name = next(iter(masks[('magnitude', 0.5)]))
    assert not torch.equal(masks[('magnitude', 0.5)][name],
                           masks[('random', 0.5)][name])
    # Iterative by default: 0.93 is scored on the 0.5 ticket and keeps
    # every weight it removed pruned (random too, which alone would not).
    for scorer in ('random', 'magnitude', 'snip'):
        assert by[(scorer, 0.93)]['iterative']
        assert by[(scorer, 0.93)]['checkpoint'] == by[(scorer, 0.5)][
            'ticket']
        low, high = masks[(scorer, 0.5)], masks[(scorer, 0.93)]
        for n in low:
            assert not (high[n] & ~low[n]).any(), (scorer, n)
    # Without, 0.93 prunes the dense subnet: SNIP of the dense network
    # ranks other weights than SNIP of the 0.5-masked one.
    dense = tool.main([
        search_run['config'], ckpt, '--scorers', 'snip', '--ratios', '0.93',
        '--no-iterative', '--work-dir', str(tmp_path / 'dense')
    ])[0]
    assert not dense['iterative'] and dense['checkpoint'] == ckpt
    dense_masks = load_checkpoint_file(
        dense['ticket'])['supertickets']['pruning']['masks']
    assert any(not torch.equal(dense_masks[n], masks[('snip', 0.93)][n])
               for n in dense_masks)
    assert sha256(ckpt) == digest


@pytest.mark.parametrize('resume', [True, False])
def test_retrain_keeps_masks_fixed(search_run, tmp_path, resume):
    ckpt = search_run['ckpt']
    digest = sha256(ckpt)
    res = prune_oneshot(search_run['config'], ckpt, 'magnitude', 0.7,
                        str(tmp_path), retrain=True, retrain_iters=2,
                        retrain_resume=resume)
    with open(tmp_path / 'magnitude_0.7.json') as f:
        saved = json.load(f)
    assert saved['metrics']['oneshot'] and saved['metrics']['retrained']
    assert 'mIoU' in saved['metrics']['retrained']
    # Resumed, the search's 4 steps go on for 2 more; fresh, 2 from 0.
    end = 4 + 2 if resume else 2
    assert saved['retrain']['iters'] == end
    assert saved['retrain']['resumed'] is resume
    assert saved['masks_fixed'] is True
    assert abs(saved['sparsity_after_retrain'] - 0.7) < TOL
    assert abs(res['sparsity'] - 0.7) < TOL

    ticket = load_checkpoint_file(res['ticket'])
    retrained = load_checkpoint_file(
        osp.join(res['work_dirs']['retrain'], f'iter_{end}.pth'))
    # AdamW's step count: the search's optimizer state went on, or began
    # anew.
    steps = {int(v['step']) for v in
             retrained['optimizer']['state'].values()}
    assert steps == {end}
    before = ticket['supertickets']['pruning']['masks']
    after = retrained['supertickets']['pruning']['masks']
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # Fine-tuning moved the kept weights.
    assert any(not torch.equal(ticket['state_dict'][k],
                               retrained['state_dict'][k])
               for k in before)
    # The retrained checkpoint names the whole searched architecture, so
    # it loads into the config's supernet like the search checkpoint.
    arch = retrained['supertickets']['arch']
    assert arch == ticket['supertickets']['arch']
    assert any(c == 0 for c in arch.values())
    model = model_at(search_run['cfg'], arch)
    # A plain load of a masked checkpoint is refused; this test applies
    # the masks itself.
    with pytest.raises(TicketStateError, match='export_ticket'):
        model.load_state_dict(retrained['state_dict'])
    unmark_masked_state(retrained['state_dict'])
    model.load_state_dict(retrained['state_dict'])
    # Masked weights have no effect: zeroing them changes nothing.
    masks = WeightMasks()
    for k, m in after.items():
        masks.set(model, k, m)
    assert set(after) == set(prunable_weights(model))
    x = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        y_masked = model(x, mode='tensor')
        masks.detach_all()
        masks.bake(model)
        y_baked = model(x, mode='tensor')
    assert torch.allclose(y_masked, y_baked, atol=1e-5)
    assert sha256(ckpt) == digest


@pytest.mark.parametrize('bad', [1.0, -0.1, 1.5])
def test_bad_ratio_is_named(bad, capsys):
    with pytest.raises(ValueError, match=f'{bad}'):
        check_ratios([0.5, bad])
    with pytest.raises(ValueError, match=f'{bad}'):
        OneShotPruningHook(bad)
    tool = load_tool('tools/prune_oneshot.py')
    with pytest.raises(SystemExit):
        tool.parse_args(['c.py', 'k.pth', '--ratios', str(bad)])
    assert str(bad) in capsys.readouterr().err


def test_bad_scorer_and_retrain_length_are_named(search_run):
    with pytest.raises(ValueError, match="'taylor'"):
        check_scorers(['magnitude', 'taylor'])
    cfg = Config(search_run['cfg'])
    with pytest.raises(ValueError, match='epochs=3'):
        retrain_loop(cfg, epochs=3)  # the tiny config trains by iterations
    with pytest.raises(ValueError, match='iters=0'):
        retrain_loop(cfg, iters=0)
    assert retrain_loop(cfg, iters=5)['max_iters'] == 5
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        prune_oneshot(search_run['config'], 'missing.pth', 'random', 0.5,
                      'unused')


# -- trade-off comparison on fixture folders ---------------------------------
def write_jsonl(path, records):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        for r in records:
            f.write(json.dumps(r) + '\n')


def fake_supertickets_dir(root, name, sparsity, macs, miou,
                          log_json_only=False):
    work_dir = osp.join(root, name)
    write_jsonl(osp.join(work_dir, 'supertickets_events.jsonl'), [
        dict(event='supernet', iter=1, params=300, macs=1000),
        dict(event='shrink', iter=10, params=200, macs=600),
        dict(event='prune 1', iter=20, sparsity=sparsity / 2,
             params=200, macs=600, sparse_params=150, sparse_macs=450,
             macs_x_global_density=450),
        dict(event='final prune', iter=40, sparsity=sparsity, params=200,
             macs=600, sparse_params=round(200 * (1 - sparsity)),
             sparse_macs=macs, macs_x_global_density=macs + 10),
    ])
    stamp = '20260101_000000'
    val = [dict(lr=0.1, loss=1.0, step=10), dict(mIoU=1.0, aAcc=50, step=20),
           dict(mIoU=miou, aAcc=60, step=40)]
    log = osp.join(work_dir, stamp, 'vis_data',
                   f'{stamp}.json' if log_json_only else 'scalars.json')
    write_jsonl(log, val)
    return work_dir


def fake_sp_dir(root):
    sp = osp.join(root, 'sp')
    os.makedirs(sp)

    def result(scorer, ratio, oneshot, retrained):
        return dict(
            method='S+P', scorer=scorer, scope='global', ratio=ratio,
            sparsity=ratio, input_shape=[32, 64],
            complexity=dict(
                input_shape=[32, 64], dense_subnet=dict(params=200, macs=600),
                sparse=dict(params=round(200 * (1 - ratio)),
                            macs=round(600 * (1 - ratio))),
                macs_x_global_density=round(600 * (1 - ratio))),
            metrics=dict(oneshot=dict(mIoU=oneshot),
                         retrained=None if retrained is None else
                         dict(mIoU=retrained)))

    for r in (result('magnitude', 0.5, 20.0, 30.0),
              result('magnitude', 0.9, 5.0, 25.0),
              result('snip', 0.5, 22.0, None)):
        with open(osp.join(sp, f'{r["scorer"]}_{r["ratio"]:g}.json'),
                  'w') as f:
            json.dump(r, f)
    # Not a result: ignored.
    with open(osp.join(sp, 'notes.json'), 'w') as f:
        json.dump(dict(hello=1), f)
    return sp


def table_rows(md):
    rows = [line.strip('|').split('|') for line in md.splitlines()
            if line.startswith('| ') and not line.startswith('| method')]
    return [[c.strip() for c in r] for r in rows]


def test_compare_tradeoff_plots_and_tabulates(tmp_path):
    st_a = fake_supertickets_dir(str(tmp_path), 'st_80', 0.8, 120, 40.0)
    st_b = fake_supertickets_dir(str(tmp_path), 'st_90', 0.9, 60, 35.0,
                                 log_json_only=True)
    sp = fake_sp_dir(str(tmp_path))
    out = str(tmp_path / 'cmp')
    tool = load_tool('tools/analysis/compare_tradeoff.py')
    res = tool.main([st_a, st_b, sp, '--out', out])
    assert res['metric'] == 'mIoU'
    with open(osp.join(out, 'tradeoff.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert osp.getsize(osp.join(out, 'tradeoff.png')) > 10000
    with open(osp.join(out, 'tradeoff.md')) as f:
        rows = table_rows(f.read())
    assert [(r[0], r[1], r[-1]) for r in rows] == [
        ('SuperTickets', '0.8000', '40.00'),
        ('SuperTickets', '0.9000', '35.00'),
        ('S+P magnitude', '0.5000', '20.00'),
        ('S+P magnitude', '0.9000', '5.00'),
        ('S+P magnitude + retrain', '0.5000', '30.00'),
        ('S+P magnitude + retrain', '0.9000', '25.00'),
        ('S+P snip', '0.5000', '22.00'),
    ]
    # Sparse exact MACs, dense x density, and the ticket's params.
    assert rows[0][2:5] == ['120', '130', '40']
    assert rows[2][2:5] == ['300', '300', '100']


def test_metric_lookup_and_errors(tmp_path):
    assert find_metric({'coco/AP': 0.5, 'coco/AP .5': 0.9}, 'AP') == 0.5
    assert find_metric({'accuracy/top1': 70.0}, 'accuracy/top1') == 70.0
    assert find_metric({'mAcc': 1.0}, 'mIoU') is None
    sp = fake_sp_dir(str(tmp_path))
    with pytest.raises(ValueError, match='no point'):
        collect_points([sp], metric='coco/AP')
    with pytest.raises(FileNotFoundError, match='nowhere'):
        compare_tradeoff([str(tmp_path / 'nowhere')], str(tmp_path / 'o'))


def test_snip_options_change_the_scores_as_documented(search_run, tmp_path):
    """SNIP: the gradient averaged over ``snip_batches`` batches, BN in eval
    mode by default; the model's buffers are left as loaded."""
    from mmsupertickets.engine.runner_surgery import unwrap
    cfg = Config(search_run['cfg'])
    cfg.load_from = search_run['ckpt']
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    hook = OneShotPruningHook(0.5, scorer='snip', snip_batches=2)
    runner.register_hook(hook)
    runner.call_hook('before_run')
    runner.load_or_resume()
    model = unwrap(runner.model)
    weights = hook.prunable(runner)
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    batches = list(hook.score_batches(runner))
    assert len(batches) == 2

    def grads(*chosen, bn='eval'):
        hook.score_batches = lambda runner: iter(chosen)
        hook.snip_bn = bn
        return hook.batch_gradients(runner, weights, None)

    both, first, second = grads(*batches), grads(batches[0]), grads(
        batches[1])
    for n in weights:
        torch.testing.assert_close(both[n], (first[n] + second[n]) / 2)
    assert any(not torch.allclose(first[n], second[n]) for n in weights)
    # Batch statistics give other gradients than running statistics.
    train_bn = grads(batches[0], bn='train')
    assert any(not torch.allclose(first[n], train_bn[n], atol=1e-7)
               for n in weights)
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n]), n
    with pytest.raises(ValueError, match='snip_batches=0'):
        OneShotPruningHook(0.5, scorer='snip', snip_batches=0)
    with pytest.raises(ValueError, match="snip_bn='none'"):
        OneShotPruningHook(0.5, scorer='snip', snip_bn='none')
    tool = load_tool('tools/prune_oneshot.py')
    with pytest.raises(SystemExit):
        tool.parse_args([search_run['config'], search_run['ckpt'],
                         '--snip-batches', '0'])
