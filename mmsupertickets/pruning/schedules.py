"""Pruning-ratio schedules: pure functions of the event index.

A schedule maps the k-th prune event (k = 1, 2, ...) out of ``num_events``
planned ones to the sparsity (fraction removed) that event prunes to.
"""


class StepSchedule:
    """r_k = min(k · step, target): the paper's progressive schedule.

    Args:
        target (float): Final sparsity in [0, 1).
        step (float): Sparsity added per event. Defaults to 0.1.
    """

    def __init__(self, target: float, step: float = 0.1):
        check_sparsity(target, 'target')
        if not 0 < step <= 1:
            raise ValueError(f'step={step} must be in (0, 1]')
        self.target = target
        self.step = step

    def __call__(self, k: int, num_events: int) -> float:
        return min(k * self.step, self.target)


class CubicSchedule:
    """r_k = target + (initial − target)(1 − k/n)³ (Zhu & Gupta, 2017).

    Args:
        target (float): Final sparsity in [0, 1), reached at event n.
        initial (float): Sparsity of the (virtual) event 0. Defaults to 0.
    """

    def __init__(self, target: float, initial: float = 0.0):
        check_sparsity(target, 'target')
        check_sparsity(initial, 'initial')
        self.target = target
        self.initial = initial

    def __call__(self, k: int, num_events: int) -> float:
        frac = min(k / max(num_events, 1), 1.0)
        return self.target + (self.initial - self.target) * (1 - frac)**3


SCHEDULES = dict(step=StepSchedule, cubic=CubicSchedule)


def check_sparsity(value: float, key: str) -> None:
    if not 0 <= value < 1:
        raise ValueError(f'{key}={value} is out of range: a sparsity is the '
                         f'fraction of weights removed, in [0, 1)')


def build_schedule(schedule: str, target: float, **kwargs):
    if schedule not in SCHEDULES:
        raise ValueError(f'schedule={schedule!r} is unknown; choose one of '
                         f'{sorted(SCHEDULES)}')
    return SCHEDULES[schedule](target, **kwargs)
