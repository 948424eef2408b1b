"""Settings that make the SuperTickets events of a few-step run happen."""

__all__ = ['events_every_epoch']


def events_every_epoch(cfg, bn_interval=None) -> None:
    """Make the SuperTickets events of a few-iteration run happen, in place.

    Shrink and prune every epoch from the start. No γ falls near a real
    threshold in a few steps (and a threshold near 1 removes every stage
    whose γ all moved down, which the search hook refuses), so a
    :class:`KillChannelsHook` zeroes a seeded share of every unit's
    channels on each shrink and the shrink removes those. ``PreciseBNHook``
    uses 4 samples (every ``bn_interval`` iterations when given).

    Example:
        >>> from mmengine.config import Config
        >>> cfg = Config(dict(custom_hooks=[
        ...     dict(type='SuperNetSearchHook'),
        ...     dict(type='ProgressivePruningHook', prune_interval=25)]))
        >>> events_every_epoch(cfg)
        >>> [h['type'] for h in cfg.custom_hooks]
        ['KillChannelsHook', 'SuperNetSearchHook', 'ProgressivePruningHook']
        >>> cfg.custom_hooks[2]['prune_interval'], cfg.custom_hooks[2]['step']
        (1, 0.5)
    """
    hooks = []
    for hook in cfg.custom_hooks:
        if hook['type'] == 'SuperNetSearchHook':
            hook.update(warmup=0, shrink_interval=1, min_macs=0)
            hooks.append(dict(type='KillChannelsHook', whole_units=1))
        elif hook['type'] == 'ProgressivePruningHook':
            hook.update(prune_interval=1, step=0.5)
        elif hook['type'].endswith('PreciseBNHook'):
            hook.update(num_samples=4)
            if bn_interval is not None:
                hook.update(interval=bn_interval)
        hooks.append(hook)
    cfg.custom_hooks = hooks
    imports = cfg.setdefault('custom_imports', dict(imports=[]))
    if 'mmsupertickets.testing' not in imports.setdefault('imports', []):
        imports['imports'] = list(imports['imports']) + [
            'mmsupertickets.testing']
