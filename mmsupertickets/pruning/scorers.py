"""Importance scores for unstructured pruning.

A scorer maps ``{weight name: Parameter}`` to ``{weight name: score}``
(higher = more important). Selection is separate
(:mod:`mmsupertickets.pruning.selection`).
"""
from typing import Callable, Dict, Optional

import torch


def magnitude_scores(weights: Dict[str, torch.Tensor],
                     **kwargs) -> Dict[str, torch.Tensor]:
    """|w| of the stored values (masked weights included, so they can
    come back when re-pruned)."""
    return {n: w.detach().abs() for n, w in weights.items()}


def random_scores(weights: Dict[str, torch.Tensor],
                  generator: Optional[torch.Generator] = None,
                  **kwargs) -> Dict[str, torch.Tensor]:
    """Uniform random scores (the random-pruning baseline)."""
    return {n: torch.rand(w.shape, generator=generator).to(w.device)
            for n, w in weights.items()}


def gradient_scores(weights: Dict[str, torch.Tensor],
                    grads: Optional[Dict[str, torch.Tensor]] = None,
                    **kwargs) -> Dict[str, torch.Tensor]:
    """SNIP-style |g · w| with gradients of the dense network's loss.

    Every weight needs a gradient: leave frozen weights out of ``weights``
    (``prunable_weights(..., trainable_only=True)``).
    """
    if grads is None:
        raise ValueError('the gradient scorer needs gradients of a batch')
    missing = [n for n in weights if grads.get(n) is None]
    if missing:
        raise ValueError(
            f'the gradient scorer has no gradient for {len(missing)} '
            f'weight(s), e.g. {missing[0]!r} (frozen weights cannot be '
            'scored: leave them out of the prunable set)')
    return {n: (grads[n] * w.detach()).abs() for n, w in weights.items()}


SCORERS: Dict[str, Callable] = dict(
    magnitude=magnitude_scores, random=random_scores, snip=gradient_scores)
