"""Base of the SuperTickets hooks that act at events of a training run."""
from contextlib import ExitStack
from typing import Optional, Tuple

from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop

from mmsupertickets.utils.checkpoint_io import (
    CONFIG_KEY,
    safe_checkpoint_loading,
)
from mmsupertickets.utils.file_lock import FolderLock

from ..event_clock import (
    EventClock,
    check_epoch_interval,
    check_epoch_not_empty,
    iters_per_epoch,
)
from ..finite_checks import (
    check_finite_losses,
    check_finite_modules,
    non_finite_losses,
)
from ..run_state import TicketRunState
from ..runner_surgery import ema_models, ensure_arch, full_arch, unwrap
from ..ticket_meta import TICKET_KEY, read_section, ticket_meta, write_section


class TicketEventHook(Hook):
    """Base of hooks that act at regular events of a training run.

    Events come from an :class:`~mmsupertickets.engine.event_clock.
    EventClock` over the runner's counters. They are checked in
    ``after_train_iter``, after the optimizer update, before validation
    and checkpointing of that iteration: the metrics and the checkpoint of
    that epoch/iteration are those of the model *after* the event.

    From ``before_run`` to ``after_run`` mmengine loads checkpoints
    through the project's safe loader
    (:func:`~mmsupertickets.utils.checkpoint_io.safe_checkpoint_loading`,
    registered with ``CheckpointLoader.register_scheme``), so ``resume``
    and ``load_from`` work under torch's ``weights_only`` default and no
    pickle payload runs; mmengine's loaders are registered back after the
    run. ``safe_checkpoint_loading = False`` at the top level of the config
    keeps mmengine's loaders for the run.

    Subclasses guard their events (see
    :mod:`~mmsupertickets.engine.finite_checks`): :meth:`check_run` in
    ``before_train`` refuses an empty epoch and intervals shorter than an
    iteration, :meth:`check_finite_step` stops the run on a non-finite
    loss, :meth:`check_finite_state` on a non-finite weight before an
    event, and :meth:`save_ticket_state` before a checkpoint is written.
    """

    def __init__(self, by_epoch: bool = True):
        self.by_epoch = by_epoch
        self._loading_scope = ExitStack()

    def before_run(self, runner) -> None:
        cfg = getattr(runner, 'cfg', None) or {}
        enabled = cfg.get(CONFIG_KEY, True)
        if not isinstance(enabled, bool):
            raise TypeError(f'{CONFIG_KEY} must be True or False, got '
                            f'{enabled!r}')
        state = TicketRunState.of(runner)
        if not state.loader_logged:
            # Said once per run, whichever SuperTickets hook comes first.
            state.loader_logged = True
            print_log(
                'SuperTickets: checkpoints load through the safe loader '
                '(weights_only with an allow-list; pickle payloads refused)'
                if enabled else 'SuperTickets: safe checkpoint loading is '
                f'off ({CONFIG_KEY} = False); mmengine\'s loaders are used',
                logger='current')
        self._loading_scope.enter_context(safe_checkpoint_loading(enabled))
        # One training run per work dir: a second one would interleave its
        # events and replace this run's checkpoints. Runner.train() builds
        # its loop before before_run; test() and val() never do, so testing
        # beside a running training is not refused.
        if get_rank() == 0 and isinstance(
                getattr(runner, '_train_loop', None), BaseLoop):
            self._loading_scope.enter_context(
                FolderLock(runner.work_dir, 'work dir'))

    def before_train(self, runner) -> None:
        # After load_or_resume: a loop past iteration 0 was resumed. The
        # events file reads this instead of the runner's private flags.
        TicketRunState.of(runner).resumed = runner.iter > 0

    def after_run(self, runner) -> None:
        self._loading_scope.close()

    @staticmethod
    def loader_geometry(runner) -> Tuple[int, int, bool]:
        """(dataset size, batch size, drop_last) of the training loader."""
        loader = runner.train_dataloader
        batch_size, drop_last = loader.batch_size, getattr(
            loader, 'drop_last', False)
        if batch_size is None:  # a custom batch_sampler holds them
            sampler = loader.batch_sampler
            batch_size = getattr(sampler, 'batch_size', 1)
            drop_last = getattr(sampler, 'drop_last', False)
        return len(loader.dataset), batch_size, bool(drop_last)

    def clock(self, runner) -> EventClock:
        """The event clock of ``runner``'s training run."""
        epoch = 1
        if self.by_epoch:  # optimizer steps need no data loader
            size, batch_size, drop_last = self.loader_geometry(runner)
            epoch = iters_per_epoch(size, batch_size, get_world_size(),
                                    drop_last)
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

    # -- guards --------------------------------------------------------------
    def check_run(self, runner, **intervals) -> None:
        """Refuse, before training, a loader without a single batch per
        epoch and epoch-counted ``intervals`` (``key=value``) shorter than
        one iteration."""
        size, batch_size, drop_last = self.loader_geometry(runner)
        world = get_world_size()
        check_epoch_not_empty(size, batch_size, world, drop_last)
        if self.by_epoch:
            length = self.clock(runner).iters_per_epoch
            detail = (f' (dataset of {size}, batch_size={batch_size}, '
                      f'drop_last={drop_last}'
                      + (f', {world} ranks' if world > 1 else '') + ')')
            for key, value in intervals.items():
                check_epoch_interval(value, key, length, detail)

    @staticmethod
    def check_finite_state(runner, before: str,
                           iteration: Optional[int] = None) -> None:
        """Stop the run if a weight or buffer of the model or of its EMA
        copy is NaN or inf, before ``before`` acts on it."""
        modules = {'': unwrap(runner.model)}
        for i, ema in enumerate(ema_models(runner)):
            modules[f'EMA{i or ""}'] = ema.module
        check_finite_modules(
            modules, runner.iter + 1 if iteration is None else iteration,
            before)

    def check_finite_step(self, runner, outputs) -> None:
        """Stop the run if this iteration's loss is NaN or inf.

        Under AMP (an optimizer wrapper with a ``loss_scaler``) the scaler
        skips a step whose gradients overflow, so a non-finite loss is
        fatal only if the weights went non-finite too.
        """
        if not non_finite_losses(outputs):
            return
        wrapper = getattr(runner, 'optim_wrapper', None)
        wrappers = wrapper.values() if hasattr(wrapper, 'values') else [
            wrapper]
        if any(hasattr(w, 'loss_scaler') for w in wrappers):
            self.check_finite_state(runner, 'the next step (AMP)')
            return
        check_finite_losses(outputs, runner.iter + 1)

    @staticmethod
    def save_ticket_state(runner, checkpoint: dict, key: str,
                          state: dict) -> None:
        """Put the searched architecture and this hook's ``state`` into
        the checkpoint's ticket meta.

        A model with a NaN or inf weight raises :class:`~mmsupertickets.
        engine.finite_checks.DivergenceError` instead: raised in
        ``before_save_checkpoint`` it stops mmengine before the file is
        written, so the last good checkpoint stays the newest.
        """
        meta = checkpoint.get('meta') or {}
        TicketEventHook.check_finite_state(
            runner, f'its checkpoint (iter {meta.get("iter", "?")}, epoch '
            f'{meta.get("epoch", "?")}) was written',
            meta.get('iter'))
        write_section(checkpoint, key, state, arch=full_arch(runner))

    @staticmethod
    def load_ticket_state(runner, checkpoint: dict,
                          key: str) -> Optional[dict]:
        """Rebuild the checkpoint's subnet (before its weights are loaded)
        and return the state saved under ``key``, if any, every field
        checked (:func:`~mmsupertickets.engine.ticket_meta.read_section`)."""
        state = read_section(checkpoint, key, 'the loaded checkpoint')
        meta = ticket_meta(checkpoint) or {}
        if 'arch' in meta:
            ensure_arch(runner, meta['arch'],
                        f'{TICKET_KEY}.arch of the loaded checkpoint')
        return state
