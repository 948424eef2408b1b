"""Scorers, selections and schedules are registered classes built from
config (issue 19, item 5)."""
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from tiny_configs import seg_cfg

import mmsupertickets  # noqa: F401
from mmsupertickets.engine.hooks import (
    OneShotPruningHook,
    ProgressivePruningHook,
)
from mmsupertickets.pruning.builder import (
    build_schedule,
    build_scorer,
    build_selection,
    check_scorers,
)
from mmsupertickets.pruning.schedules import CubicSchedule, StepSchedule
from mmsupertickets.pruning.scorers import (
    BaseScorer,
    GradientScorer,
    MagnitudeScorer,
    RandomScorer,
)
from mmsupertickets.pruning.selection import GlobalSelection, LayerSelection
from mmsupertickets.registry import SCHEDULES, SCORERS, SELECTIONS


@pytest.mark.parametrize('name,cls', [('magnitude', MagnitudeScorer),
                                      ('random', RandomScorer),
                                      ('snip', GradientScorer)])
def test_a_scorer_name_and_its_config_dict_build_the_same_class(name, cls):
    assert type(build_scorer(name)) is cls
    assert type(build_scorer(dict(type=name))) is cls
    hook = ProgressivePruningHook(scorer=name)
    assert type(hook._scorer) is cls and hook.scorer == name


def test_scopes_and_schedules_are_registered():
    assert type(build_selection('global')) is GlobalSelection
    assert type(build_selection(dict(type='layer'))) is LayerSelection
    step = build_schedule('step', 0.5, step=0.2)
    assert type(step) is StepSchedule and step(2, 10) == pytest.approx(0.4)
    cubic = build_schedule(dict(type='cubic', initial=0.1), 0.9)
    assert type(cubic) is CubicSchedule and cubic(0, 5) == pytest.approx(0.1)
    # A dict's own step wins over the hook's.
    hook = ProgressivePruningHook(schedule=dict(type='step', step=0.3),
                                  step=0.1, target_sparsity=0.9)
    assert hook.schedule(2, 10) == pytest.approx(0.6)


@pytest.mark.parametrize('kwargs,named', [
    (dict(scorer='taylor'), r"scorer='taylor' is unknown; choose one of "
     r"\['magnitude', 'random', 'snip'\].*SCORERS"),
    (dict(scope='block'), "scope='block' is unknown.*SELECTIONS"),
    (dict(schedule='linear'), "schedule='linear' is unknown.*SCHEDULES"),
    (dict(scorer=dict(kind='magnitude')), "must be a registered name or a "
     "config dict with a 'type'"),
])
def test_unknown_parts_name_the_registry(kwargs, named):
    with pytest.raises(ValueError, match=named):
        ProgressivePruningHook(**kwargs)


def test_the_sweep_checks_scorers_through_the_registry():
    assert check_scorers(['magnitude', dict(type='snip')])
    with pytest.raises(ValueError, match="'taylor'"):
        check_scorers(['magnitude', 'taylor'])
    with pytest.raises(ValueError, match="scorers='magnitude'"):
        check_scorers('magnitude')


@pytest.fixture
def smallest_first():
    """A user scorer that keeps the *smallest* weights, registered for
    the test only."""
    calls = []

    @SCORERS.register_module()
    class SmallestFirstForTest(BaseScorer):

        def __init__(self, tag='x'):
            self.tag = tag

        def __call__(self, weights, **context):
            calls.append((self.tag, sorted(context)))
            return {n: -w.detach().abs() for n, w in weights.items()}

    yield calls
    SCORERS.module_dict.pop('SmallestFirstForTest')


def test_a_user_registered_scorer_is_used_by_the_stock_runner(
        cityscapes_root, tmp_path, smallest_first):
    hooks = [dict(type='ProgressivePruningHook', target_sparsity=0.5,
                  prune_interval=2, by_epoch=False,
                  scorer=dict(type='SmallestFirstForTest', tag='mine'))]
    cfg = seg_cfg(cityscapes_root, str(tmp_path), max_iters=2, hooks=hooks)
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    # Called once, at the final prune, with the seeded generator.
    assert smallest_first == [('mine', ['generator'])]
    hook = next(h for h in runner.hooks
                if isinstance(h, ProgressivePruningHook))
    assert hook.scorer == 'SmallestFirstForTest'
    assert hook.sparsity(runner) == pytest.approx(0.5, abs=1e-3)
    # Global ranking by -|w|: every kept weight is at most as large as
    # every pruned one (no training step after the last prune).
    weights = hook.prunable(runner)
    kept = torch.cat([weights[n].detach().abs()[m].flatten()
                      for n, m in hook.masks.masks.items()])
    pruned = torch.cat([weights[n].detach().abs()[~m].flatten()
                        for n, m in hook.masks.masks.items()])
    assert kept.numel() and pruned.numel()
    assert float(kept.max()) <= float(pruned.min())


def test_user_parts_reach_the_oneshot_hook_too(smallest_first):
    hook = OneShotPruningHook(0.5, scorer='SmallestFirstForTest')
    assert type(hook._scorer).__name__ == 'SmallestFirstForTest'
    assert 'SmallestFirstForTest' in SCORERS.module_dict
    assert set(SELECTIONS.module_dict) >= {'global', 'layer'}
    assert set(SCHEDULES.module_dict) >= {'step', 'cubic'}
