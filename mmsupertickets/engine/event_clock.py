"""The event clock: on which iterations interval-driven events fall.

Pure arithmetic on the runner's counters, so events land on the same
iterations after a resume. With ``by_epoch=True`` an interval counts epochs
(one pass over the data per rank, also in an iteration-based loop);
otherwise it counts optimizer steps, which differ from iterations under
gradient accumulation.
"""
import math
from typing import Optional

__all__ = [
    'EventClock', 'check_interval', 'check_epoch_interval',
    'check_epoch_not_empty', 'iters_per_epoch'
]


def check_interval(value, key: str, allow_none: bool = False,
                   by_epoch: bool = True):
    """Check the interval ``key=value`` and return it normalised.

    An epoch-counted interval (``by_epoch=True``) is any positive number;
    a fraction of an epoch is rounded to whole iterations by the clock
    (:func:`check_epoch_interval` refuses one shorter than an iteration
    once the epoch length is known). A step-counted interval counts
    optimizer steps, so it must be a whole number >= 1 (``4.0`` is taken
    as 4): half a step does not exist.

    Raises:
        ValueError: Naming ``key`` and the bad value.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not value > 0:
        raise ValueError(f'{key}={value!r} must be a positive number')
    if not by_epoch:
        if not float(value).is_integer():
            raise ValueError(
                f'{key}={value!r} counts optimizer steps (by_epoch=False) '
                'and must be a whole number >= 1; use by_epoch=True for '
                'fractions of an epoch')
        return int(value)
    return value


def check_epoch_interval(value, key: str, epoch_length: int,
                         detail: str = '') -> None:
    """Refuse an epoch-counted interval shorter than one iteration.

    Such an interval would round to 0 iterations, so its events would never
    fire and only the final event would remain.

    Args:
        value (float | None): The interval, in epochs.
        key (str): Its config key, for the message.
        epoch_length (int): Iterations of one epoch on each rank.
        detail (str): How the epoch length was counted, for the message.
    """
    # A hair of tolerance: 1 / 3 * 3 must pass.
    if value is not None and value * epoch_length < 1 - 1e-9:
        raise ValueError(
            f'{key}={value!r} epochs is shorter than one iteration: an epoch '
            f'has {epoch_length} iteration(s){detail}, so the shortest '
            f'interval is 1/{epoch_length} = {1 / epoch_length:.4g} epochs')


def check_epoch_not_empty(dataset_size: int, batch_size: int,
                          world_size: int = 1,
                          drop_last: bool = False) -> None:
    """Refuse a training loader that yields no batch in an epoch.

    With ``drop_last=True`` a dataset smaller than one batch (per rank)
    gives 0 iterations: an epoch-based loop would "train" without a single
    step, an iteration-based one would end in a bare ``StopIteration``.
    """
    per_rank = math.ceil(dataset_size / max(world_size, 1))
    num = per_rank // batch_size if drop_last else math.ceil(
        per_rank / batch_size)
    if num == 0:
        ranks = f' over {world_size} ranks ({per_rank} per rank)' \
            if world_size > 1 else ''
        raise ValueError(
            f'the training dataloader yields no batch: dataset of '
            f'{dataset_size} sample(s){ranks}, batch_size={batch_size}, '
            f'drop_last={drop_last}; use a smaller batch_size or '
            'drop_last=False')


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
        # Hooks pass whole step intervals (check_interval); never divide
        # by a zero period.
        return (self.max_iters // self.accumulation) // max(
            self._period(interval), 1)
