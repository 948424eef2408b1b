"""Keep-mask selection: the top fraction of scores, globally or per layer.

Exactly ``round((1 − sparsity) · N)`` entries are kept; ties at the
threshold are broken by position (first come, first kept). The two scopes
are registered in :data:`mmsupertickets.registry.SELECTIONS` as
``'global'`` and ``'layer'``.
"""
from typing import Dict

import numpy as np
import torch

from mmsupertickets.registry import SELECTIONS

__all__ = [
    'GlobalSelection', 'LayerSelection', 'select_global', 'select_per_layer'
]


def _keep_top(flat: torch.Tensor, num_keep: int) -> torch.Tensor:
    """Boolean mask keeping exactly ``num_keep`` largest entries.

    A partial partition + a tie fill is much cheaper than a full sort on
    ~10 M values (numpy's introselect is about 6x faster than kthvalue).
    """
    n = flat.numel()
    if num_keep >= n:
        return torch.ones_like(flat, dtype=torch.bool)
    if num_keep <= 0:
        return torch.zeros_like(flat, dtype=torch.bool)
    values = flat.detach().float().cpu().numpy()
    threshold = torch.tensor(
        np.partition(values, n - num_keep - 1)[n - num_keep - 1],
        dtype=flat.dtype, device=flat.device)
    keep = flat > threshold
    missing = num_keep - int(keep.sum())
    if missing > 0:
        ties = (flat == threshold).nonzero().flatten()[:missing]
        keep[ties] = True
    return keep


def select_global(scores: Dict[str, torch.Tensor],
                  sparsity: float) -> Dict[str, torch.Tensor]:
    """Keep the top (1 − sparsity) of all scores ranked together."""
    names = list(scores)
    flat = torch.cat([scores[n].flatten().float().cpu() for n in names])
    keep = _keep_top(flat, int(round((1 - sparsity) * flat.numel())))
    masks, start = {}, 0
    for n in names:
        size = scores[n].numel()
        masks[n] = keep[start:start + size].view_as(scores[n]).to(
            scores[n].device)
        start += size
    return masks


def select_per_layer(scores: Dict[str, torch.Tensor],
                     sparsity: float) -> Dict[str, torch.Tensor]:
    """Keep the top (1 − sparsity) of each weight's own scores."""
    return {
        n: _keep_top(s.flatten(), int(round((1 - sparsity) * s.numel())))
        .view_as(s) for n, s in scores.items()
    }


@SELECTIONS.register_module('global')
class GlobalSelection:
    """All scores ranked together (the paper's), see
    :func:`select_global`."""

    def __call__(self, scores, sparsity):
        return select_global(scores, sparsity)


@SELECTIONS.register_module('layer')
class LayerSelection:
    """Each weight ranked within itself, see :func:`select_per_layer`."""

    def __call__(self, scores, sparsity):
        return select_per_layer(scores, sparsity)
