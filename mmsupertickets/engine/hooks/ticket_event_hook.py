"""Base of the SuperTickets hooks that act at events of a training run."""
from contextlib import ExitStack
from typing import Optional

from mmengine.dist import get_world_size
from mmengine.hooks import Hook

from mmsupertickets.utils.checkpoint_io import safe_checkpoint_loading
from ..event_clock import EventClock, iters_per_epoch
from ..runner_surgery import ensure_arch, full_arch
from ..ticket_meta import META_KEY, ticket_meta, write_section


class TicketEventHook(Hook):
    """Base of hooks that act at regular events of a training run.

    Events come from an :class:`~mmsupertickets.engine.event_clock.
    EventClock` over the runner's counters. They are checked in
    ``after_train_iter``, after the optimizer update, before validation
    and checkpointing of that iteration: the metrics and the checkpoint of
    that epoch/iteration are those of the model *after* the event.

    From ``before_run`` to ``after_run`` mmengine loads local checkpoints
    through the project's safe loader
    (:func:`~mmsupertickets.utils.checkpoint_io.safe_checkpoint_loading`),
    so ``resume`` and ``load_from`` work under torch's ``weights_only``
    default; outside a run with these hooks nothing is changed.
    """

    def __init__(self, by_epoch: bool = True):
        self.by_epoch = by_epoch
        self._loading_scope = ExitStack()

    def before_run(self, runner) -> None:
        self._loading_scope.enter_context(safe_checkpoint_loading())

    def after_run(self, runner) -> None:
        self._loading_scope.close()

    def clock(self, runner) -> EventClock:
        """The event clock of ``runner``'s training run."""
        epoch = 1
        if self.by_epoch:  # optimizer steps need no data loader
            loader = runner.train_dataloader
            epoch = iters_per_epoch(len(loader.dataset), loader.batch_size,
                                    get_world_size(),
                                    getattr(loader, 'drop_last', False))
        wrapper = getattr(runner, 'optim_wrapper', None)
        return EventClock(
            self.by_epoch, epoch,
            accumulation=getattr(wrapper, '_accumulative_counts', 1),
            max_iters=getattr(runner, 'max_iters', None))

    def event_index(self, runner, interval) -> Optional[int]:
        """k if the k-th event of ``interval`` falls on this iteration."""
        return self.clock(runner).event_index(runner.iter, interval)

    def planned_events(self, runner, interval) -> int:
        return self.clock(runner).planned_events(interval)

    @staticmethod
    def save_ticket_state(runner, checkpoint: dict, key: str,
                          state: dict) -> None:
        """Put the searched architecture and this hook's ``state`` into
        the checkpoint's ticket meta."""
        write_section(checkpoint, key, state, arch=full_arch(runner))

    @staticmethod
    def load_ticket_state(runner, checkpoint: dict,
                          key: str) -> Optional[dict]:
        """Rebuild the checkpoint's subnet (before its weights are loaded)
        and return the state saved under ``key``, if any."""
        meta = ticket_meta(checkpoint) or {}
        if 'arch' in meta:
            ensure_arch(runner, meta['arch'],
                        f'meta.{META_KEY}.arch of the loaded checkpoint')
        return meta.get(key)
