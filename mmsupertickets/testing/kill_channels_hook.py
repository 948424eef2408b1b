"""A hook that makes the first shrinks of a few-step run remove channels."""
from typing import Optional, Sequence

import torch
from mmengine.hooks import Hook

from mmsupertickets.engine.runner_surgery import ema_models, unwrap
from mmsupertickets.registry import HOOKS
from mmsupertickets.structures.searchable import find_searchable_units

__all__ = ['KillChannelsHook']


@HOOKS.register_module()
class KillChannelsHook(Hook):
    """Zeroes γ and β of a seeded share of every searchable unit's channels
    (and of the first ``whole_units`` units entirely), in the model and in
    its EMA copies, so that a shrink on the same iteration removes them.

    In a run of a few steps the penalty cannot bring any γ near a real
    threshold, and a threshold near 1 kills whole stages whose γ all
    moved down. Between iterations optimizer momentum would move a zeroed γ
    by about the learning rate, so the channels are zeroed on the
    iteration of the shrink, just before it.

    Args:
        at_iters (Sequence[int], optional): Iterations (1-based) after which
            to zero. None: at every shrink event of the run's
            ``SuperNetSearchHook`` (and its final shrink).
        share (float): Expected share of each unit's channels zeroed.
        whole_units (int): How many units, in model order, lose every
            channel (the first units belong to the first stage, which has
            several).
        seed (int): Seed of the choice (plus the iteration).
        max_units (int, optional): Only the first units lose channels.

    Example:
        >>> custom_hooks = [
        ...     dict(type='KillChannelsHook', share=0.3, whole_units=0),
        ...     dict(type='SuperNetSearchHook', shrink_interval=1),
        ... ]
    """

    priority = 39  # just before SuperNetSearchHook (40)

    def __init__(self, at_iters: Optional[Sequence[int]] = None,
                 share: float = 0.3, whole_units: int = 2, seed: int = 0,
                 max_units: Optional[int] = None):
        self.at_iters = None if at_iters is None else set(at_iters)
        self.share = share
        self.whole_units = whole_units
        self.seed = seed
        self.max_units = max_units

    def _due(self, runner) -> bool:
        if self.at_iters is not None:
            return runner.iter + 1 in self.at_iters
        from mmsupertickets.engine.hooks import SuperNetSearchHook
        search = next((h for h in runner.hooks
                       if isinstance(h, SuperNetSearchHook)), None)
        return search is not None and (
            search.is_last_train_iter(runner)
            or search.event_index(runner, search.shrink_interval) is not None)

    @torch.no_grad()
    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if not self._due(runner):
            return
        g = torch.Generator().manual_seed(self.seed + runner.iter)
        models = [unwrap(runner.model)] + [e.module
                                           for e in ema_models(runner)]
        units = [find_searchable_units(m) for m in models]
        for i, unit_set in enumerate(zip(*units)):
            if self.max_units is not None and i >= self.max_units:
                break
            dead = torch.rand(unit_set[0].channels, generator=g) < self.share
            if i < self.whole_units:
                dead[:] = True
            for u in unit_set:
                u.norm.weight[dead] = 0
                u.norm.bias[dead] = 0
