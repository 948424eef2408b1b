"""Pruning-ratio schedules: pure functions of the event index.

A schedule maps the k-th prune event (k = 1, 2, ...) out of ``num_events``
planned ones to the sparsity (fraction removed) that event prunes to. The
schedules are registered in :data:`mmsupertickets.registry.SCHEDULES` as
``'step'`` and ``'cubic'``; ``target`` is given by the pruning hook.
"""
from mmsupertickets.registry import SCHEDULES

from .builder import build_schedule, check_ratio

__all__ = ['StepSchedule', 'CubicSchedule', 'build_schedule']


@SCHEDULES.register_module('step')
class StepSchedule:
    """r_k = min(k · step, target): the paper's progressive schedule.

    Args:
        target (float): Final sparsity in [0, 1).
        step (float): Sparsity added per event, in (0, 1]. Defaults to 0.1.
    """

    def __init__(self, target: float, step: float = 0.1):
        self.target = check_ratio(target, 'target_sparsity')
        self.step = check_ratio(step, 'step', positive=True)

    def __call__(self, k: int, num_events: int) -> float:
        return min(k * self.step, self.target)


@SCHEDULES.register_module('cubic')
class CubicSchedule:
    """r_k = target + (initial − target)(1 − k/n)³ (Zhu & Gupta, 2017).

    Args:
        target (float): Final sparsity in [0, 1), reached at event n.
        initial (float): Sparsity of the (virtual) event 0. Defaults to 0.
    """

    def __init__(self, target: float, initial: float = 0.0):
        self.target = check_ratio(target, 'target_sparsity')
        self.initial = check_ratio(initial, 'initial')

    def __call__(self, k: int, num_events: int) -> float:
        frac = min(k / max(num_events, 1), 1.0)
        return self.target + (self.initial - self.target) * (1 - frac)**3

