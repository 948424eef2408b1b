"""Carrying out a shrink inside a live mmengine runner.

After the model's parameters change shape, everything that holds them has
to follow: the optimizer (state sliced, removed parameters dropped), the EMA
copy kept by ``EMAHook``, and a DistributedDataParallel wrapper (its
gradient buckets are fixed at construction, so it is rebuilt). Hooks are
then told through the custom hook point ``after_shrink(runner, plan)``.
"""
from typing import Dict, List

import torch
import torch.nn as nn
from mmengine.hooks import EMAHook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict

from mmsupertickets.structures.arch import export_arch, plan_for_arch
from mmsupertickets.structures.searchable import find_searchable_units
from mmsupertickets.structures.shrink_plan import (
    ShrinkPlan,
    apply_plan,
    follow_plan_in_optimizer,
)

from .ddp_rebuild import rewrap_ddp
from .run_state import TicketRunState


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


def built_optimizers(runner) -> List[torch.optim.Optimizer]:
    """The runner's optimizers once built (none in val/test runs)."""
    wrapper = getattr(runner, 'optim_wrapper', None)
    if isinstance(wrapper, OptimWrapperDict):
        return [w.optimizer for w in wrapper.values()]
    if isinstance(wrapper, OptimWrapper):
        return [wrapper.optimizer]
    return []


def ema_models(runner) -> List[nn.Module]:
    """The averaged copies kept by mmengine's ``EMAHook``, if any."""
    return [hook.ema_model for hook in runner.hooks
            if isinstance(hook, EMAHook)
            and getattr(hook, 'ema_model', None) is not None]


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
    state = TicketRunState.of(runner)
    if state.rewrap_pending:
        rewrap_ddp(runner)
        state.rewrap_pending = False


def _remember_units(runner, names) -> None:
    TicketRunState.of(runner).known_units.update(names)


def full_arch(runner) -> Dict[str, int]:
    """The model's architecture over every unit this run has known.

    Units removed by a shrink, or absent from a loaded subnet, are listed
    with 0, so the spec rebuilds the same subnet from the supernet config.
    """
    model = unwrap(runner.model)
    _remember_units(runner, (u.name for u in find_searchable_units(model)))
    return export_arch(model, TicketRunState.of(runner).known_units)


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
        TicketRunState.of(runner).rewrap_pending = True
    runner.call_hook('after_shrink', plan=plan)


def ensure_arch(runner, arch: Dict[str, int],
                source: str = 'the architecture') -> ShrinkPlan:
    """Rebuild the searched subnet ``arch`` before weights are loaded.

    Idempotent: a model already at ``arch`` is left alone. Raises a
    ValueError naming ``source`` and the difference when ``arch`` does not
    fit the model; only units of the model (or ones this run removed) are
    accepted, so a loaded file cannot add names to the run's own specs.
    """
    model = unwrap(runner.model)
    _remember_units(runner, (u.name for u in find_searchable_units(model)))
    plan = plan_for_arch(model, arch, source,
                         removed=TicketRunState.of(runner).known_units)
    shrink_runner(runner, plan)
    rewrap_if_pending(runner)
    return plan

