"""Registries used by mmsupertickets.

Models, hooks and model wrappers are registered into mmengine's *root*
registries. Every downstream registry (``mmseg``, ``mmpose``,
``mmpretrain``) has the root as its parent and falls back to it, so one
registration makes a module visible from all three default scopes by its
plain type name.

The parts of unstructured pruning (scorers, selections, schedules) have
registries of their own: mmengine has no counterpart to be a child of (a
child of its ``TASK_UTILS`` would take that tree's one ``mmsupertickets``
scope slot for all three). They always build in the ``mmsupertickets``
scope, whatever the run's default scope, so that a plain name such as
``'magnitude'`` resolves under ``default_scope='mmseg'`` too. A user adds
a scorer by registering a class::

    from mmsupertickets.registry import SCORERS

    @SCORERS.register_module()
    class MyScorer(BaseScorer):
        ...

    custom_hooks = [dict(type='ProgressivePruningHook',
                         scorer=dict(type='MyScorer'))]
"""
from mmengine.registry import HOOKS, MODEL_WRAPPERS, MODELS, Registry
from mmengine.registry.build_functions import build_from_cfg

__all__ = [
    'MODELS', 'HOOKS', 'MODEL_WRAPPERS', 'SCORERS', 'SELECTIONS', 'SCHEDULES'
]

_SCOPE = 'mmsupertickets'


def _build_in_own_scope(cfg, registry, default_args=None):
    """``build_from_cfg`` pinned to this package's scope (no search for the
    run's default scope in a tree that does not have it)."""
    cfg = dict(cfg)
    cfg.setdefault('_scope_', _SCOPE)
    return build_from_cfg(cfg, registry, default_args)


SCORERS = Registry('pruning scorer', scope=_SCOPE,
                   build_func=_build_in_own_scope,
                   locations=['mmsupertickets.pruning.scorers'])
SELECTIONS = Registry('pruning selection', scope=_SCOPE,
                      build_func=_build_in_own_scope,
                      locations=['mmsupertickets.pruning.selection'])
SCHEDULES = Registry('pruning schedule', scope=_SCOPE,
                     build_func=_build_in_own_scope,
                     locations=['mmsupertickets.pruning.schedules'])
