"""The status of the model at an event: structure, sparsity and cost."""
from typing import Dict

from mmsupertickets.structures.searchable import (
    find_searchable_blocks,
    find_searchable_units,
)

from .runner_surgery import unwrap

__all__ = ['model_status']


def model_status(runner, masks=None, prunable=None,
                 estimator=None) -> Dict[str, float]:
    """Structure, sparsity and (with a
    :class:`~mmsupertickets.flops.ResourceEstimator`) cost of the model.

    Only what applies: a model without searchable units (any stock model
    pruned by :class:`ProgressivePruningHook`) reports no channels, paths
    or blocks.
    """
    model = unwrap(runner.model)
    units = find_searchable_units(model)
    status = {}
    if units:
        blocks = find_searchable_blocks(model)
        status.update(
            live_channels=sum(u.channels for u in units),
            kernel_paths=len(units),
            live_blocks=sum(1 for b in blocks.values() if len(b.paths)))
    densities = None
    if masks is not None and prunable:
        kept, total = masks.kept_and_total(model, prunable)
        status.update(sparsity=1 - kept / max(total, 1),
                      prunable_weights=total)
        per_stage = {}
        for name in prunable:
            stage = '.'.join(name.split('.')[:2])
            k, t = masks.kept_and_total(model, [name])
            acc = per_stage.setdefault(stage, [0, 0])
            acc[0] += k
            acc[1] += t
        for stage, (k, t) in per_stage.items():
            status[f'sparsity/{stage}'] = 1 - k / max(t, 1)
        densities = masks.densities(prunable)
    if estimator is not None:
        cost = estimator.complexity(model, densities)
        status.update(params=cost['params'], macs=cost['macs'])
        if densities is not None:
            status.update(sparse_params=cost['sparse_params'],
                          sparse_macs=cost['sparse_macs'],
                          macs_x_global_density=cost['macs_x_global_density'])
    return status
