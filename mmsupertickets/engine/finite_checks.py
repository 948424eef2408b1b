"""Divergence guard: stop a run before its events act on NaN or inf.

A diverged run does not fail by itself: with NaN losses the γ of every
channel is NaN, so ``|γ| > threshold`` is False everywhere and a shrink
removes every channel, every magnitude score is NaN so a prune reports
sparsity 1.0, and the checkpoints are saved as usual. The SuperTickets
hooks therefore check

- the losses a train step returns, at every iteration (a handful of
  scalars the logger reads anyway);
- every floating-point parameter and buffer of the model and of its EMA
  copy, right before a shrink, a prune and a checkpoint save.

A failed check raises :class:`DivergenceError`, naming what is not finite,
the iteration, and the first offending tensor. Raised in
``before_save_checkpoint``, it stops mmengine before the file is written.
"""
import math
from typing import Dict, Iterable, Optional, Tuple

import torch
import torch.nn as nn

__all__ = [
    'DivergenceError', 'non_finite_losses', 'first_non_finite',
    'check_finite_losses', 'check_finite_modules'
]

_ADVICE = ('lower the learning rate, clip gradients '
           '(optim_wrapper.clip_grad) or check the data, then resume from '
           'the last checkpoint')


class DivergenceError(FloatingPointError):
    """Training diverged: a loss, weight or statistic is NaN or infinite."""


def _fmt(value) -> str:
    if isinstance(value, torch.Tensor):
        value = value.detach().float()
        return f'{value.item():g}' if value.numel() == 1 else \
            f'{int((~torch.isfinite(value)).sum())} non-finite values'
    return f'{value:g}'


def _finite(value) -> bool:
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value.detach()).all())
    return math.isfinite(value)


def non_finite_losses(outputs) -> Dict[str, object]:
    """The loss entries of a train step's ``outputs`` that are not finite.

    Only keys containing ``'loss'`` count (the ones mmengine sums into the
    loss): a metric such as an accuracy may be NaN legitimately.
    """
    if not isinstance(outputs, dict):
        return {}
    return {
        k: v
        for k, v in outputs.items() if 'loss' in k and isinstance(
            v, (torch.Tensor, float, int)) and not _finite(v)
    }


def first_non_finite(
        named: Iterable[Tuple[str, torch.Tensor]]
) -> Optional[Tuple[str, torch.Tensor]]:
    """The first ``(name, tensor)`` with a NaN or inf value, or None.

    The per-tensor flags are gathered before one host sync, so a check of
    a whole model costs one pass over its values.
    """
    named = [(n, t) for n, t in named
             if isinstance(t, torch.Tensor) and t.is_floating_point()
             and t.numel()]
    if not named:
        return None
    device = named[0][1].device
    flags = torch.stack([
        torch.isfinite(t.detach()).all().to(device) for _, t in named])
    if bool(flags.all()):
        return None
    return named[int((~flags).nonzero()[0])]


def check_finite_losses(outputs, iteration: int) -> None:
    """Raise :class:`DivergenceError` if a loss in ``outputs`` (the log
    vars of the train step of 1-based ``iteration``) is NaN or inf."""
    bad = non_finite_losses(outputs)
    if bad:
        losses = ', '.join(f'{k}={_fmt(v)}' for k, v in bad.items())
        raise DivergenceError(
            f'training diverged at iteration {iteration}: the loss is not '
            f'finite ({losses}). The run stops before any shrink, prune or '
            f'checkpoint acts on it; {_ADVICE}.')


def _named_state(modules: Dict[str, nn.Module]):
    for label, module in modules.items():
        prefix = f'{label} ' if label else ''
        for n, p in module.named_parameters():
            yield f'{prefix}parameter {n!r}', p
        for n, b in module.named_buffers():
            yield f'{prefix}buffer {n!r}', b


def check_finite_modules(modules: Dict[str, nn.Module], iteration: int,
                         before: str) -> None:
    """Raise :class:`DivergenceError` if a floating-point parameter or
    buffer of ``modules`` (``{label: module}``, e.g. ``{'': model,
    'EMA': ema}``) is NaN or inf.

    Args:
        modules (dict[str, nn.Module]): What to check, by label.
        iteration (int): 1-based iteration, for the message.
        before (str): What was about to act on the weights, e.g.
            ``'the shrink'``, for the message.
    """
    bad = first_non_finite(_named_state(modules))
    if bad is not None:
        name, tensor = bad
        count = int((~torch.isfinite(tensor.detach())).sum())
        kinds = '/'.join(
            k for k, f in (('NaN', torch.isnan), ('inf', torch.isinf))
            if bool(f(tensor.detach()).any()))
        raise DivergenceError(
            f'training diverged at iteration {iteration}: {name} has '
            f'{count} of {tensor.numel()} values {kinds} (the first '
            f'non-finite tensor). Stopped before {before}; {_ADVICE}.')
