"""What the SuperTickets hooks of one run share, kept in its MessageHub."""
import weakref
from typing import Optional, Set

__all__ = ['TicketRunState']


class TicketRunState:
    """Facts that one SuperTickets hook sets and another one reads.

    One instance per runner lives in ``runner.message_hub`` under
    :attr:`KEY` (not resumed: every fact is rebuilt from the checkpoint's
    ticket meta on load). Hooks get it with :meth:`of` instead of looking
    at each other's fields or at private runner attributes.

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

    Example:
        >>> state = TicketRunState.of(runner)  # doctest: +SKIP
        >>> state.estimator.input_shape  # doctest: +SKIP
        [512, 1024]
    """

    KEY = 'supertickets/run_state'

    def __init__(self, runner=None):
        self._runner = weakref.ref(runner) if runner is not None else None
        self.known_units: Set[str] = set()
        self.rewrap_pending = False
        self.estimator = None
        self.mask_owner = None
        self.reactivation: Optional[str] = None

    @classmethod
    def of(cls, runner) -> 'TicketRunState':
        """The state of ``runner``'s run, created on first use."""
        hub = runner.message_hub
        state = hub.get_info(cls.KEY)
        # Runners built in the same second share a hub name, hence a hub.
        if state is None or state._runner is None or \
                state._runner() is not runner:
            state = cls(runner)
            hub.update_info(cls.KEY, state, resumed=False)
        return state
