"""What the SuperTickets hooks of one run share, kept per runner."""
import weakref
from typing import Optional, Set

__all__ = ['TicketRunState']


class TicketRunState:
    """Facts that one SuperTickets hook sets and another one reads.

    One instance per runner, held beside it (not in its MessageHub: a
    hub key, even one marked not to resume, is listed in every checkpoint
    and makes mmengine warn on each resume). Nothing of it is saved: every
    fact is rebuilt from the checkpoint's ticket meta on load. Hooks get it
    with :meth:`of` instead of looking at each other's fields or at private
    runner attributes.

    Attributes:
        known_units (set[str]): Every searchable unit this run has seen, so
            that the saved architecture lists removed units with 0.
        rewrap_pending (bool): A shrink changed parameter shapes under a
            DDP wrapper, which must be rebuilt once no graph is alive.
        estimator (ResourceEstimator | None): Counts MACs at the search's
            profiling input size; its cache spans the run's events.
        mask_owner (ProgressivePruningHook | None): The one owner of the
            run's pruning masks; other hooks change masks only through it.
        reactivation (str | None): Reactivation mode asked for by
            ``IterativeReactivationHook``; the owner applies it.
        loader_logged (bool): The checkpoint loader in use was logged.
        resumed (bool): Training started after iteration 0, so ``resume``
            restored the loop (set at ``before_train``).
        events (dict | None): The events file's lines of this run (their
            keys, ``seen``, and the file's line ``count``), read at the
            run's first event.

    Example:
        >>> state = TicketRunState.of(runner)  # doctest: +SKIP
        >>> state.estimator.input_shape  # doctest: +SKIP
        [512, 1024]
    """

    def __init__(self):
        self.known_units: Set[str] = set()
        self.rewrap_pending = False
        self.estimator = None
        self.mask_owner = None
        self.reactivation: Optional[str] = None
        self.loader_logged = False
        self.resumed = False
        self.events: Optional[dict] = None

    def count_at(self, input_shape) -> None:
        """Count MACs at ``input_shape`` (H, W) from now on; the estimator
        (and its cache) stays while the size does."""
        if self.estimator is None or \
                self.estimator.input_shape != list(input_shape):
            from mmsupertickets.flops import ResourceEstimator
            self.estimator = ResourceEstimator(list(input_shape))

    @classmethod
    def of(cls, runner) -> 'TicketRunState':
        """The state of ``runner``'s run, created on first use."""
        state = _states.get(runner)
        if state is None:
            state = _states[runner] = cls()
        return state


_states: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()
