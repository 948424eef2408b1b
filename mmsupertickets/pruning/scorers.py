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
    """SNIP-style |g · w| with gradients of the dense network's loss."""
    if grads is None:
        raise ValueError('the gradient scorer needs gradients of a batch')
    return {n: (grads[n] * w.detach()).abs() for n, w in weights.items()}


SCORERS: Dict[str, Callable] = dict(
    magnitude=magnitude_scores, random=random_scores, snip=gradient_scores)
