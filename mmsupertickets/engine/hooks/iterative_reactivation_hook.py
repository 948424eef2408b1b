"""Iterative reactivation: the config-facing switch on the mask owner."""
from mmengine.hooks import Hook

from mmsupertickets.registry import HOOKS

from ..run_state import TicketRunState


@HOOKS.register_module()
class IterativeReactivationHook(Hook):
    """Turns on reactivation of the masks at every shrink.

    The masks belong to ``ProgressivePruningHook``; this hook only asks it
    for a ``reactivation`` scope, so that switching reactivation off for
    an ablation means removing this hook from ``custom_hooks`` (or setting
    the pruning hook's ``reactivation`` argument directly).

    Lifecycle:

    - ``before_run``: asks the run's mask owner for ``scope`` (through
      :class:`~mmsupertickets.engine.run_state.TicketRunState`);
    - ``before_train``: checks that a ``ProgressivePruningHook`` holds the
      masks;
    - on each shrink the pruning hook then resets masks to dense: their
      previously pruned values rejoin training as they were stored, and
      the next prune event decides again which weights to drop.

    Args:
        scope (str): ``'all'`` (the reference method's: every kernel-path
            conv of every surviving searchable block, whether or not the
            shrink touched it; stem, shortcuts and head convs outside the
            blocks keep their masks) or ``'rebuilt'`` (only the tensors the
            shrink sliced). Defaults to ``'all'``.

    Example:
        >>> custom_hooks = [
        ...     dict(type='SuperNetSearchHook'),
        ...     dict(type='ProgressivePruningHook', target_sparsity=0.9),
        ...     dict(type='IterativeReactivationHook'),  # scope='all'
        ... ]
    """

    priority = 46  # after the pruning hook (45) has published itself

    def __init__(self, scope: str = 'all'):
        if scope not in ('all', 'rebuilt'):
            raise ValueError(f"scope={scope!r} must be 'all' or 'rebuilt'")
        self.scope = scope

    def before_run(self, runner) -> None:
        TicketRunState.of(runner).reactivation = self.scope

    def before_train(self, runner) -> None:
        if TicketRunState.of(runner).mask_owner is None:
            raise RuntimeError(
                'IterativeReactivationHook needs a ProgressivePruningHook in '
                'custom_hooks: it reactivates that hook\'s masks')
