"""The network-slimming penalty: ρ·w·sign(γ) added to γ's gradient."""
from typing import List, Sequence

import torch

__all__ = ['GammaPenalty']


class GammaPenalty:
    """Adds the L1 subgradient ``rho * weight * sign(gamma)`` to the
    gradient of each searchable unit's BN scale γ, just before each step of
    the optimizers it is attached to.

    It runs as an optimizer step pre-hook, after any AMP unscaling, so the
    penalty is exact whatever the loss scale.

    Example:
        >>> net = torch.nn.BatchNorm2d(4)
        >>> penalty = GammaPenalty()
        >>> penalty.collect([net.weight], [1.0])
        >>> opt = torch.optim.SGD(net.parameters(), lr=1.0)
        >>> penalty.attach([opt])
        >>> penalty.rho = 0.1
        >>> net.weight.grad = torch.zeros(4)
        >>> opt.step()
        >>> net.weight.detach()
        tensor([0.9000, 0.9000, 0.9000, 0.9000])
        >>> penalty.detach()
    """

    def __init__(self):
        self.rho = 0.0
        self.gammas: List[torch.nn.Parameter] = []
        self.weights: List[float] = []
        self._handles = []

    def collect(self, gammas: Sequence[torch.nn.Parameter],
                weights: Sequence[float]) -> None:
        """The γ to penalise (again after a shrink made new tensors) and
        their cost weights."""
        self.gammas, self.weights = list(gammas), list(weights)

    def attach(self, optimizers) -> None:
        for optimizer in optimizers:
            self._handles.append(
                optimizer.register_step_pre_hook(self._add))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @torch.no_grad()
    def _add(self, optimizer, args, kwargs) -> None:
        if self.rho == 0:
            return
        # Only the γ this optimizer steps: with several optimizers (an
        # OptimWrapperDict) each γ gets the penalty once.
        stepped = {id(p) for group in optimizer.param_groups
                   for p in group['params']}
        for gamma, weight in zip(self.gammas, self.weights):
            # A γ frozen after collection may keep a stale grad, which the
            # optimizer would still step.
            if gamma.requires_grad and gamma.grad is not None and \
                    id(gamma) in stepped:
                gamma.grad.add_(torch.sign(gamma), alpha=self.rho * weight)
