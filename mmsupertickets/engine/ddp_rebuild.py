"""Rebuilding the DistributedDataParallel wrapper after a shape change."""
from typing import Any, List

import torch
from torch.nn.parallel import DistributedDataParallel

__all__ = ['rewrap_ddp']

def _stale_accumulators(module: torch.nn.Module) -> List[str]:
    """Parameters whose gradient accumulator still expects an older shape.

    A parameter's accumulator is cached while anything holds it; an
    autograd graph built before the shape change does (for instance the
    loss the train loop passes to ``after_train_iter`` as ``outputs``).
    Reading the shape uses a private torch attribute; without it no
    parameter is reported.
    """
    stale = []
    with torch.enable_grad():
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            accumulator = param.view_as(param).grad_fn.next_functions[0][0]
            metadata = getattr(accumulator, '_input_metadata', None)
            if metadata and tuple(metadata[0].shape) != tuple(param.shape):
                stale.append(name)
    return stale


def _release_reducer(wrapper: DistributedDataParallel) -> None:
    """Detach a DDP wrapper from its module's parameters for good.

    Its reducer hooks every parameter's gradient accumulator and keeps the
    accumulators alive. An accumulator remembers the shape its parameter
    had when it was made, and a new reducer built while the old one lives
    reuses it, so backward would reject gradients of the new shape.
    Dropping the reducer (and the logger that references it) frees them.
    """
    if not hasattr(wrapper, 'reducer'):
        return  # released by an earlier call
    wrapper._remove_autograd_hooks()
    for handle in getattr(wrapper, '_accum_grad_hooks', ()):
        handle.remove()
    del wrapper.reducer
    if hasattr(wrapper, 'logger'):
        del wrapper.logger


def rewrap_ddp(runner: Any) -> bool:
    """Re-wrap ``runner.model`` after its parameters changed shape.

    DDP fixes its gradient buckets when it is built, so after slicing
    parameters in place the old wrapper would all-reduce into buckets of
    the old sizes. This builds a new wrapper of the same class with the
    constructor arguments the old one recorded (``init_kwargs``, see
    :class:`DeviceAgnosticDDP`) and assigns it to ``runner.model``. The old
    wrapper is detached from the parameters first and must not be used
    again. The wrapped module and its parameters (hence the optimizer's
    references) stay the same objects. Every rank must call it at the same
    point: building DDP is a collective operation, and it checks that the
    shapes agree across ranks.

    No autograd graph from before the shape change may be alive: it pins
    each parameter's gradient accumulator at the old shape, and the new
    reducer would reuse it. Call it from ``before_train_iter`` or
    ``after_train_epoch``, not from ``after_train_iter``, where the train
    loop still holds the last loss (``outputs``); it raises otherwise, and
    can be called again once the graph is gone.

    Args:
        runner (mmengine.runner.Runner): Any object with a ``model``
            attribute.

    Returns:
        bool: False if ``runner.model`` is not a DDP wrapper (nothing to
        do), True after re-wrapping.
    """
    old = runner.model
    if not isinstance(old, DistributedDataParallel):
        return False
    init_kwargs = getattr(old, 'init_kwargs', None)
    if init_kwargs is None:
        raise TypeError(
            f'cannot re-wrap a {type(old).__name__}: it does not record its '
            "constructor arguments; set model_wrapper_cfg=dict(type="
            "'DeviceAgnosticDDP') (tools/train.py does so by default)")
    # The old reducer holds the accumulators too: release it first.
    _release_reducer(old)
    stale = _stale_accumulators(old.module)
    if stale:
        raise RuntimeError(
            'cannot re-wrap while an autograd graph built before the shape '
            f'change is alive: it pins the old gradient shapes of {stale}. '
            'Call rewrap_ddp again once it is gone, e.g. in '
            'before_train_iter or after_train_epoch (in after_train_iter '
            'the loop still holds the last loss as `outputs`)')
    new = type(old)(module=old.module, **init_kwargs)
    new.train(old.training)
    runner.model = new
    return True
