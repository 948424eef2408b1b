"""Carrying out a shrink inside a live mmengine runner.

After the model's parameters change shape, everything that holds them has
to follow: the optimizer (state sliced, removed parameters dropped), the EMA
copy kept by ``EMAHook``, and a DistributedDataParallel wrapper (its
gradient buckets are fixed at construction, so it is rebuilt). Hooks are
then told through the custom hook point ``after_shrink(runner, plan)``.
"""
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from mmengine.hooks import EMAHook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict

from mmsupertickets.searchable import find_searchable_units
from mmsupertickets.shrinking import (ShrinkPlan, apply_plan, export_arch,
                                      follow_plan_in_optimizer,
                                      plan_for_arch)

META_KEY = 'supertickets'


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


def find_hook(runner, hook_type) -> Optional[object]:
    for hook in runner.hooks:
        if isinstance(hook, hook_type):
            return hook
    return None


def built_optimizers(runner) -> List[torch.optim.Optimizer]:
    """The runner's optimizers once built (none in val/test runs)."""
    wrapper = getattr(runner, 'optim_wrapper', None)
    if isinstance(wrapper, OptimWrapperDict):
        return [w.optimizer for w in wrapper.values()]
    if isinstance(wrapper, OptimWrapper):
        return [wrapper.optimizer]
    return []


def ema_models(runner) -> List[nn.Module]:
    hook = find_hook(runner, EMAHook)
    ema = getattr(hook, 'ema_model', None) if hook is not None else None
    return [ema] if ema is not None else []


def _refresh_ema(ema: nn.Module) -> None:
    # BaseAveragedModel caches tensors of its module at construction.
    ema.avg_parameters = (ema.module.state_dict() if ema.update_buffers else
                          dict(ema.module.named_parameters()))


def rewrap_if_pending(runner) -> None:
    """Rebuild the DDP wrapper after a shrink, once no graph is alive.

    Right after a training step the loop's outputs still hold the last
    graph, which pins gradient accumulators of the old shapes; so a shrink
    in ``after_train_iter`` only marks the wrapper, and the next
    ``before_train_iter`` (or a checkpoint load) rebuilds it. Validation in
    between runs under ``no_grad`` and never touches the reducer.
    """
    if getattr(runner, '_supertickets_rewrap', False):
        from mmsupertickets.dist import rewrap_ddp
        rewrap_ddp(runner)
        runner._supertickets_rewrap = False


def _remember_units(runner, names) -> None:
    runner._supertickets_units = set(
        getattr(runner, '_supertickets_units', ())) | set(names)


def full_arch(runner) -> Dict[str, int]:
    """The model's architecture over every unit this run has known.

    Units removed by a shrink, or absent from a loaded subnet, are listed
    with 0, so the spec rebuilds the same subnet from the supernet config.
    """
    model = unwrap(runner.model)
    _remember_units(runner, (u.name for u in find_searchable_units(model)))
    return export_arch(model, runner._supertickets_units)


def shrink_runner(runner, plan: ShrinkPlan) -> None:
    """Apply ``plan`` to the runner's model and everything that follows it."""
    if plan.empty:
        return
    model = unwrap(runner.model)
    _remember_units(runner, (u.name for u in find_searchable_units(model)))
    params_before = dict(model.named_parameters())
    for optimizer in built_optimizers(runner):
        follow_plan_in_optimizer(optimizer, params_before, plan)
    apply_plan(model, plan)
    for ema in ema_models(runner):
        apply_plan(ema.module, plan)
        _refresh_ema(ema)
    if is_model_wrapper(runner.model) and hasattr(runner.model,
                                                  'process_group'):
        runner._supertickets_rewrap = True
    runner.call_hook('after_shrink', plan=plan)


def ensure_arch(runner, arch: Dict[str, int]) -> ShrinkPlan:
    """Rebuild the searched subnet ``arch`` before weights are loaded.

    Idempotent: a model already at ``arch`` is left alone. Raises a
    ValueError naming the difference when ``arch`` does not fit the model.
    """
    _remember_units(runner, arch)
    plan = plan_for_arch(unwrap(runner.model), arch)
    shrink_runner(runner, plan)
    rewrap_if_pending(runner)
    return plan


def ticket_meta(checkpoint: dict) -> Optional[dict]:
    return checkpoint.get('meta', {}).get(META_KEY)


def writable_ticket_meta(checkpoint: dict) -> dict:
    return checkpoint.setdefault('meta', {}).setdefault(META_KEY, {})
