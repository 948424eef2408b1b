"""Iterative reactivation: rebuilt layers rejoin training dense."""
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmsupertickets.registry import HOOKS
from mmsupertickets.shrinking import ShrinkPlan
from ..runner_surgery import find_hook


@HOOKS.register_module()
class IterativeReactivationHook(Hook):
    """Resets the masks of layers rebuilt by a shrink to dense.

    Lifecycle:

    - ``before_train``: checks that a ``ProgressivePruningHook`` holds the
      masks;
    - ``after_shrink`` (called by ``SuperNetSearchHook``): every weight
      sliced by the shrink gets a dense mask, so its previously pruned
      values rejoin training as they were stored; the next prune event
      decides again which weights to drop. Without this hook the masks are
      sliced with the weights and stay: switching IR off for an ablation
      means removing this hook from ``custom_hooks``.

    Example:
        >>> custom_hooks = [
        >>>     dict(type='SuperNetSearchHook'),
        >>>     dict(type='ProgressivePruningHook', target_sparsity=0.9),
        >>>     dict(type='IterativeReactivationHook'),
        >>> ]
    """

    priority = 46  # after the pruning hook has sliced its masks

    def _pruning_hook(self, runner):
        from .progressive_pruning_hook import ProgressivePruningHook
        hook = find_hook(runner, ProgressivePruningHook)
        if hook is None:
            raise RuntimeError(
                'IterativeReactivationHook needs a ProgressivePruningHook in '
                'custom_hooks: it reactivates that hook\'s masks')
        return hook

    def before_train(self, runner) -> None:
        self._pruning_hook(runner)

    def after_shrink(self, runner, plan: ShrinkPlan) -> None:
        masks = self._pruning_hook(runner).masks
        rebuilt = [n for n in plan.slices if n in masks.masks]
        revived = masks.reset(rebuilt)
        print_log(f'[SuperTickets] reactivation: {len(rebuilt)} rebuilt '
                  f'layers dense again, {revived} weights rejoin training',
                  logger='current')
