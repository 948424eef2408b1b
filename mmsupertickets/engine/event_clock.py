"""The event clock: on which iterations interval-driven events fall.

Pure arithmetic on the runner's counters, so events land on the same
iterations after a resume. With ``by_epoch=True`` an interval counts epochs
(one pass over the data per rank, also in an iteration-based loop);
otherwise it counts optimizer steps, which differ from iterations under
gradient accumulation.
"""
import math
from typing import Optional

__all__ = ['EventClock', 'check_interval', 'iters_per_epoch']


def check_interval(value, key: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f'{key}={value!r} must be a positive number')


def iters_per_epoch(dataset_size: int, batch_size: int, world_size: int = 1,
                    drop_last: bool = False) -> int:
    """Iterations of one pass over the data on each rank.

    Counted from the dataset, batch size and world size rather than
    ``len(dataloader)``: an ``InfiniteSampler`` reports the whole dataset on
    every rank, which would stretch epochs by the world size.

    Example:
        >>> iters_per_epoch(10, 4), iters_per_epoch(10, 4, drop_last=True)
        (3, 2)
    """
    per_rank = math.ceil(dataset_size / world_size)
    if drop_last:
        return max(per_rank // batch_size, 1)
    return math.ceil(per_rank / batch_size)


class EventClock:
    """Event arithmetic of one run.

    Iterations are 0-based as ``runner.iter``; an event is checked once the
    iteration ``it`` has ended.

    Args:
        by_epoch (bool): Intervals count epochs (True) or optimizer steps.
        iters_per_epoch (int): Iterations of one epoch on each rank.
        accumulation (int): Iterations per optimizer step. Defaults to 1.
        max_iters (int, optional): Length of the run; its last iteration
            always steps the optimizer. Defaults to None.

    Example:
        >>> clock = EventClock(by_epoch=False, iters_per_epoch=5,
        ...                    accumulation=2, max_iters=12)
        >>> [it for it in range(12) if clock.event_index(it, 2)]
        [3, 7, 11]
        >>> clock.planned_events(2)
        3
    """

    def __init__(self, by_epoch: bool, iters_per_epoch: int,
                 accumulation: int = 1, max_iters: Optional[int] = None):
        self.by_epoch = by_epoch
        self.iters_per_epoch = max(int(iters_per_epoch), 1)
        self.accumulation = max(int(accumulation), 1)
        self.max_iters = max_iters

    def is_last(self, it: int) -> bool:
        return self.max_iters is not None and it + 1 == self.max_iters

    def stepped(self, it: int) -> bool:
        """Whether iteration ``it`` stepped the optimizer."""
        return (it + 1) % self.accumulation == 0 or self.is_last(it)

    def elapsed_before(self, it: int) -> float:
        """Time done before iteration ``it``, in epochs or steps."""
        if self.by_epoch:
            return it / self.iters_per_epoch
        return it // self.accumulation

    def _period(self, interval) -> int:
        if self.by_epoch:
            return int(round(interval * self.iters_per_epoch))
        return int(interval)

    def event_index(self, it: int, interval) -> Optional[int]:
        """k if the k-th event of ``interval`` falls on iteration ``it``."""
        if interval is None:
            return None
        if self.by_epoch:
            # Epoch ends are events whether or not an accumulated step
            # falls on them.
            done = it + 1
        elif not self.stepped(it):
            return None
        else:
            done = (it + 1) // self.accumulation
        period = self._period(interval)
        if period > 0 and done % period == 0:
            return done // period
        return None

    def planned_events(self, interval) -> int:
        """How many events of ``interval`` the whole run holds."""
        if interval is None or self.max_iters is None:
            return 0
        if self.by_epoch:
            return self.max_iters // max(self._period(interval), 1)
        return (self.max_iters // self.accumulation) // int(interval)
