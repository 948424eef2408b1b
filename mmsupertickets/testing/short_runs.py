"""Hook settings for runs of a few iterations (tests, --quick modes)."""

__all__ = ['events_every_epoch']


def events_every_epoch(custom_hooks, bn_interval=None) -> None:
    """Make the SuperTickets events of a few-iteration run happen, in place.

    Shrink and prune every epoch from the start. γ cannot fall to 1e-3 in
    a few steps: a threshold of 1 kills the channels whose γ the penalty
    pushed below their initial value of 1, so the first shrink really
    removes some. ``PreciseBNHook`` uses 4 samples (every ``bn_interval``
    iterations when given).

    Example:
        >>> hooks = [dict(type='ProgressivePruningHook', prune_interval=25)]
        >>> events_every_epoch(hooks)
        >>> hooks[0]['prune_interval'], hooks[0]['step']
        (1, 0.5)
    """
    for hook in custom_hooks:
        if hook['type'] == 'SuperNetSearchHook':
            hook.update(warmup=0, shrink_interval=1, threshold=1.0,
                        min_macs=0)
        elif hook['type'] == 'ProgressivePruningHook':
            hook.update(prune_interval=1, step=0.5)
        elif hook['type'].endswith('PreciseBNHook'):
            hook.update(num_samples=4)
            if bn_interval is not None:
                hook.update(interval=bn_interval)
