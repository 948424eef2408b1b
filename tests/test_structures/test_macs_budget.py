"""SuperNetSearchHook(target_macs=...): a MACs budget instead of ρ."""
import json
import os.path as osp

import pytest
import torch
from demo_runs import demo_runner

from mmsupertickets.apis.export.ticket_export import (
    export_ticket,
    format_summary,
)
from mmsupertickets.structures.macs_budget import (
    estimate_macs,
    fit_to_budget,
    next_rho,
    resolve_budget,
)

BUDGET_DEMO = 'configs/supertickets/demo/' \
    'supertickets-macs50_hrnas_1xb4-demo_cityscapes-128x256.py'


def _units(seed=0):
    g = torch.Generator().manual_seed(seed)
    mag = {f'u{i}': torch.rand(c, generator=g)
           for i, c in enumerate((16, 24, 32, 40))}
    mpc = {f'u{i}': 10.0 * (i + 1) for i in range(4)}
    return mag, mpc


def _macs(masks, mpc, fixed):
    return estimate_macs({n: int(m.sum()) for n, m in masks.items()}, mpc,
                         fixed)


@pytest.mark.parametrize('divisor', [1, 8])
def test_fit_revives_strongest_and_never_crosses_the_budget(divisor):
    mag, mpc = _units()
    fixed = 500.0
    full = _macs({n: torch.ones_like(m, dtype=torch.bool)
                  for n, m in mag.items()}, mpc, fixed)
    budget = 0.4 * full
    dead = {n: torch.zeros_like(m, dtype=torch.bool) for n, m in mag.items()}
    out = fit_to_budget(dead, mag, mpc, fixed, budget, divisor)
    macs = _macs(out, mpc, fixed)
    # At or under the budget by less than one group of the costliest unit.
    assert budget - divisor * max(mpc.values()) < macs <= budget
    for name, mask in out.items():
        assert int(mask.sum()) % divisor == 0
        # The revived channels are the unit's strongest.
        n = int(mask.sum())
        assert set(mask.nonzero().flatten().tolist()) == set(
            torch.argsort(mag[name], descending=True)[:n].tolist())


@pytest.mark.parametrize('divisor', [1, 8])
def test_fit_trims_weakest_only_at_the_last_shrink(divisor):
    mag, mpc = _units(1)
    fixed = 500.0
    live = {n: torch.ones_like(m, dtype=torch.bool) for n, m in mag.items()}
    budget = 0.6 * _macs(live, mpc, fixed)
    # Before the last shrink, live channels stay however far over.
    assert all(torch.equal(a, live[n]) for n, a in fit_to_budget(
        live, mag, mpc, fixed, budget, divisor).items())
    out = fit_to_budget(live, mag, mpc, fixed, budget, divisor, trim=True)
    macs = _macs(out, mpc, fixed)
    assert budget - divisor * max(mpc.values()) < macs <= budget
    # Weakest first: every removed channel is weaker than every kept one
    # of its unit.
    for name, mask in out.items():
        assert int(mask.sum()) % divisor == 0
        if (~mask).any() and mask.any():
            assert mag[name][~mask].max() <= mag[name][mask].min()


def test_budget_bad_values_name_the_value():
    with pytest.raises(ValueError, match='target_macs=0.05 .*below'):
        resolve_budget(0.05, supernet_macs=1e9, fixed_macs=1e8)
    with pytest.raises(ValueError, match='target_macs=2000000000.0 is above'):
        resolve_budget(2e9, supernet_macs=1e9, fixed_macs=1e8)
    from mmsupertickets.engine.hooks import SuperNetSearchHook
    with pytest.raises(ValueError, match='target_macs=0 must be > 0'):
        SuperNetSearchHook(target_macs=0)


def test_rho_rises_over_the_path_and_falls_under_it():
    assert next_rho(1e-3, macs=120, target=100) > 1e-3
    assert next_rho(1e-3, macs=80, target=100) < 1e-3
    # At most 2x per event.
    assert next_rho(1e-3, macs=1e6, target=1) == pytest.approx(2e-3)


def _events(work_dir):
    with open(osp.join(work_dir, 'supertickets_events.jsonl')) as f:
        return [json.loads(line) for line in f]


# 0.3 with every γ under the threshold: each shrink stops at the budget by
# reviving the strongest channels. 0.6 with none under it: nothing dies
# before the end and the last shrink trims the weakest down to the budget.
@pytest.mark.parametrize('fraction,threshold', [
    pytest.param(0.3, 1.0, marks=pytest.mark.slow),
    pytest.param(0.6, 0.0, marks=pytest.mark.slow)])
def test_demo_seg_lands_within_5_percent_of_the_budget(
        fraction, threshold, tmp_path):
    runner, cfg = demo_runner(
        BUDGET_DEMO, tmp_path,
        hook_options=dict(SuperNetSearchHook=dict(target_macs=fraction,
                                                  threshold=threshold)))
    runner.train()
    events = _events(cfg.work_dir)
    supernet = events[0]
    budget = fraction * supernet['macs']
    assert supernet['target_macs'] == pytest.approx(budget)
    shrinks = [e for e in events if e['event'].endswith('shrink')]
    # Trimming happens only at the last shrink; reviving at every one.
    assert shrinks[-1]['event'] == ('final shrink' if threshold == 0 else
                                    'shrink')
    final = shrinks[-1]['macs']
    assert abs(final / budget - 1) <= 0.05
    assert final <= budget  # never over: the budget is a ceiling
    for e in shrinks:
        # ρ, the path and the gap at every event; never under the budget.
        assert e['macs_gap'] == pytest.approx(e['macs'] / budget - 1)
        assert e['macs'] >= budget * 0.95
        assert {'controlled_rho', 'next_rho', 'path_macs'} <= set(e)
    # The export states the budget and what the subnet reached.
    ckpt = osp.join(cfg.work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    summary = export_ticket(cfg, ckpt, str(tmp_path / 'ticket'))
    assert summary['search']['budget_macs'] == pytest.approx(budget)
    assert summary['search']['reached_macs'] == final
    assert summary['subnet']['macs'] == final
    assert 'MACs budget' in format_summary(summary)
