"""SuperNetSearchHook(cost='latency'): a latency budget through the runner."""
import json
import os.path as osp

import pytest
from demo_runs import REPO, demo_runner
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import mmsupertickets  # noqa: F401
from mmsupertickets.engine.hooks import SuperNetSearchHook
from mmsupertickets.latency.build import table_from_function

BUDGET_DEMO = 'configs/supertickets/demo/' \
    'supertickets-macs50_hrnas_1xb4-demo_cityscapes-128x256.py'
SEARCH_SHAPE = (128, 128)  # the demo's input_shape (its crop)


def _ms(name, unit, w):
    # A made-up device: launch cost, MACs and a penalty off multiples of 8.
    return 0.05 + 2e-7 * unit['macs_per_channel'] * w + 0.02 * (w % 8 != 0)


def _demo_table(path, shape=SEARCH_SHAPE, **cfg_changes):
    cfg = Config.fromfile(osp.join(REPO, BUDGET_DEMO))
    cfg.model.backbone.update(cfg_changes)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    table = table_from_function(model, shape, _ms, fixed_ms=3.0,
                                divisors=(1, 8), default_divisor=8)
    table.save(str(path))
    return table


def _latency_hook(table_path, **kw):
    return dict(SuperNetSearchHook=dict(
        dict(target_macs=None, cost='latency', latency_table=str(table_path)),
        **kw))


@pytest.mark.slow
def test_demo_seg_lands_within_5_percent_of_a_latency_budget(tmp_path):
    path = tmp_path / 'table.json'
    _demo_table(path)
    fraction = 0.5
    runner, cfg = demo_runner(
        BUDGET_DEMO, tmp_path,
        hook_options=_latency_hook(path, target_latency=fraction,
                                   threshold=1.0))
    hook = next(h for h in runner.hooks
                if isinstance(h, SuperNetSearchHook))
    # The table's default divisor (the one it measured fastest).
    assert hook.channel_divisor == 8
    runner.train()
    with open(osp.join(cfg.work_dir, 'supertickets_events.jsonl')) as f:
        events = [json.loads(line) for line in f]
    supernet = events[0]
    budget = fraction * supernet['latency']
    assert supernet['target_latency'] == pytest.approx(budget)
    shrinks = [e for e in events if e['event'].endswith('shrink')]
    assert shrinks
    for e in shrinks:
        # Predicted latency next to MACs, the gap and the controller.
        assert {'macs', 'latency', 'latency_gap', 'path_latency',
                'controlled_rho', 'next_rho'} <= set(e)
        assert e['latency_gap'] == pytest.approx(e['latency'] / budget - 1)
    final = shrinks[-1]['latency']
    assert final <= budget * (1 + 1e-9)
    assert abs(final / budget - 1) <= 0.05
    # Every width a multiple of the divisor (or the unit removed).
    from mmsupertickets.engine.runner_surgery import unwrap
    from mmsupertickets.latency import unit_widths
    assert all(c % 8 == 0 for c in unit_widths(unwrap(runner.model))
               .values())


def test_a_table_of_another_model_is_refused_naming_the_unit(
        cityscapes_root, tmp_path):
    from mmengine.runner import Runner
    from tiny_configs import seg_cfg
    cfg = Config(seg_cfg(cityscapes_root, str(tmp_path / 'w'), max_iters=2))
    wider = Config(cfg.to_dict())
    wider.model.backbone.expand_ratio = 3
    init_default_scope('mmseg')
    table = table_from_function(MODELS.build(wider.model), (32, 64), _ms,
                                fixed_ms=1.0, divisors=(8, ))
    table.save(str(tmp_path / 'table.json'))
    cfg.custom_hooks = [dict(
        type='SuperNetSearchHook', cost='latency', target_latency=0.5,
        latency_table=str(tmp_path / 'table.json'), input_shape=(32, 64))]
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError,
                       match=r'unit backbone\.\S+ has \d+ channels but '):
        runner.train()


def test_latency_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="cost='latency' needs "
                       'latency_table'):
        SuperNetSearchHook(cost='latency')
    with pytest.raises(ValueError, match="cost='flops' is not one of"):
        SuperNetSearchHook(cost='flops')
    with pytest.raises(ValueError, match='target_latency=0.5 does not go '
                       "with cost='macs'"):
        SuperNetSearchHook(target_latency=0.5)
    path = tmp_path / 'table.json'
    _demo_table(path)
    with pytest.raises(ValueError, match='channel_divisor=16 has no grid'):
        SuperNetSearchHook(cost='latency', latency_table=str(path),
                           channel_divisor=16)
