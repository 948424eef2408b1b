"""Importance scores for unstructured pruning, as registered scorers.

A scorer maps ``{weight name: Parameter}`` to ``{weight name: score}``
(higher = more important). Selection is separate
(:mod:`mmsupertickets.pruning.selection`). Scorers live in
:data:`mmsupertickets.registry.SCORERS`; a config names one by its
registered name (``scorer='magnitude'``) or as a dict
(``scorer=dict(type='magnitude')``). A new scorer is a registered
:class:`BaseScorer` subclass.
"""
from typing import Dict, Optional

import torch

from mmsupertickets.registry import SCORERS

__all__ = [
    'BaseScorer', 'MagnitudeScorer', 'RandomScorer', 'GradientScorer',
    'magnitude_scores', 'random_scores', 'gradient_scores'
]


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


class BaseScorer:
    """Base of the scorers: ``scorer(weights, **context) -> scores``.

    The pruning hooks pass ``generator`` (a ``torch.Generator`` seeded
    from the hook's ``seed`` and the iteration) to every scorer, and
    ``grads`` (``{name: gradient of the loss on training batches}``) to
    those whose :attr:`needs_gradients` is True.

    Example:
        >>> from mmsupertickets.registry import SCORERS
        >>> @SCORERS.register_module()
        ... class NegativeMagnitude(BaseScorer):
        ...     def __call__(self, weights, **context):
        ...         return {n: -w.detach().abs() for n, w in weights.items()}
        >>> SCORERS.build(dict(type='NegativeMagnitude')).needs_gradients
        False
        >>> _ = SCORERS.module_dict.pop('NegativeMagnitude')
    """

    #: Whether the hook must compute loss gradients for this scorer.
    needs_gradients = False

    def __call__(self, weights: Dict[str, torch.Tensor],
                 **context) -> Dict[str, torch.Tensor]:
        raise NotImplementedError


@SCORERS.register_module('magnitude')
class MagnitudeScorer(BaseScorer):
    """|w| (the paper's), see :func:`magnitude_scores`."""

    def __call__(self, weights, **context):
        return magnitude_scores(weights)


@SCORERS.register_module('random')
class RandomScorer(BaseScorer):
    """Uniform random scores from the hook's seeded ``generator``."""

    def __call__(self, weights, generator=None, **context):
        return random_scores(weights, generator=generator)


@SCORERS.register_module('snip')
class GradientScorer(BaseScorer):
    """SNIP |g · w|, see :func:`gradient_scores`."""

    needs_gradients = True

    def __call__(self, weights, grads=None, **context):
        return gradient_scores(weights, grads=grads)
