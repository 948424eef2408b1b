"""SuperNetSearchHook's min-MACs guard: the reference's (channels dead in
the EMA alone are counted; a pass rebuilds the blocks, resetting the masks,
though no channel goes) against the project's ('removed')."""
import pytest
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from tiny_configs import seg_cfg

from mmsupertickets.engine.run_state import TicketRunState
from mmsupertickets.engine.runner_surgery import ema_models, unwrap
from mmsupertickets.structures.searchable import find_searchable_units

SHRINK_AT = 4


class EMADeadUnit(Hook):
    """Before the shrink at SHRINK_AT: every channel of one unit is dead
    in the EMA weights only; put back right after it."""

    priority = 39  # before SuperNetSearchHook (40)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == SHRINK_AT:
            unit = find_searchable_units(ema_models(runner)[0].module)[0]
            self.saved = unit.norm.weight.detach().clone()
            unit.norm.weight.data.zero_()
            self.unit = unit


class Observe(Hook):
    priority = 47  # after the shrink (40), prune (45), reactivation (46)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 != SHRINK_AT:
            return
        model = unwrap(runner.model)
        self.channels = [u.channels for u in find_searchable_units(model)]
        masks = TicketRunState.of(runner).mask_owner.masks.masks
        units = tuple(u.name + '.' for u in find_searchable_units(model))
        # Weights of the blocks' kernel paths masked out now (a reset
        # mask is dropped: the weight is dense).
        self.pruned = int(sum((~m).sum() for n, m in masks.items()
                              if n.startswith(units)))
        probe = [h for h in runner.hooks if isinstance(h, EMADeadUnit)][0]
        probe.unit.norm.weight.data.copy_(probe.saved)


def run(cityscapes_root, work_dir, guard):
    hooks = [
        dict(type='SuperNetSearchHook', rho=0.0, warmup=0, min_macs=1,
             shrink_interval=SHRINK_AT, by_epoch=False, guard=guard),
        dict(type='ProgressivePruningHook', target_sparsity=0.5,
             prune_interval=3, step=0.5, by_epoch=False),
        dict(type='IterativeReactivationHook'),
        dict(type='EMAHook'),
    ]
    runner = Runner.from_cfg(Config(seg_cfg(
        cityscapes_root, str(work_dir), max_iters=SHRINK_AT + 1,
        hooks=hooks)))
    runner.register_hook(EMADeadUnit())
    observe = Observe()
    runner.register_hook(observe)
    before = [u.channels for u in find_searchable_units(unwrap(
        runner.model))]
    runner.train()
    return before, observe


@pytest.mark.parametrize('guard', ['reference', 'removed'])
def test_guard_counts_ema_dead_and_rebuilds(cityscapes_root, tmp_path,
                                            guard):
    before, seen = run(cityscapes_root, tmp_path, guard)
    # No channel is dead in the live weights: none is removed either way.
    assert seen.channels == before
    if guard == 'reference':
        # The pass rebuilt the blocks: their masks are dense again.
        assert seen.pruned == 0
    else:
        # Skipped: the masks of the prune at step 3 stay.
        assert seen.pruned > 0


def test_guard_choice_is_checked():
    from mmsupertickets.engine.hooks import SuperNetSearchHook
    with pytest.raises(ValueError, match='guard'):
        SuperNetSearchHook(guard='ema')
    assert SuperNetSearchHook().guard == 'reference'
