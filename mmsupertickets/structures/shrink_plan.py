"""The shrink plan: physical removal of searchable channels.

A shrink is described by a :class:`ShrinkPlan` of tensor names, so the same
plan can be applied to the model, to an EMA copy with the same structure, to
optimizer state and to pruning masks. Parameters are sliced in place
(``p.data = p.data.index_select(...)``): the ``Parameter`` objects that an
optimizer or DDP holds stay the same objects.
"""
import re
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from .searchable import find_searchable_blocks, find_searchable_units


@dataclass
class ShrinkPlan:
    """What a shrink does, by tensor and module names.

    Attributes:
        slices: ``{tensor name: (dim, kept indices)}`` for parameters and
            buffers that keep some of their channels.
        removed_modules: Modules deleted whole (empty kernel paths, the
            output norm of a block left without paths).
        removed_tensors: Every parameter/buffer name under those modules.
    """
    slices: Dict[str, Tuple[int, torch.Tensor]] = field(default_factory=dict)
    removed_modules: List[str] = field(default_factory=list)
    removed_tensors: List[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.slices and not self.removed_modules


class EmptyStageError(RuntimeError):
    """A shrink that would remove every kernel path of a searchable stage."""


_STAGE = re.compile(r'^(.*?(?:^|\.)stage\d+)(?:\.|$)')


def stage_of(unit: str) -> str:
    """The searchable stage a unit belongs to: its name up to its
    ``stage<i>`` part, else its top-level module (a head or a neck).

    Example:
        >>> stage_of('backbone.stage3.branch1.block0.paths.k5')
        'backbone.stage3'
        >>> stage_of('decode_head.block.paths.k3')
        'decode_head'
    """
    match = _STAGE.match(unit)
    return match.group(1) if match else unit.split('.', 1)[0]


def emptied_stages(model: nn.Module,
                   keep: Dict[str, torch.Tensor]) -> Dict[str, Tuple[int,
                                                                   int]]:
    """Stages that ``keep`` would leave without a single searchable
    channel though they have some now.

    Such a stage computes nothing but its shortcuts: every block of it
    collapses at once, which no search decision asks for (a NaN or too
    high a threshold does). Units not in ``keep`` are untouched.

    Returns:
        dict: ``{stage: (units, channels it would lose)}``, empty when
        every stage keeps a path.
    """
    live, lost = {}, {}
    for unit in find_searchable_units(model):
        stage = stage_of(unit.name)
        left = len(keep[unit.name]) if unit.name in keep else unit.channels
        live[stage] = live.get(stage, 0) + left
        if unit.name in keep and unit.channels:
            units, channels = lost.get(stage, (0, 0))
            lost[stage] = (units + 1, channels + unit.channels - left)
    return {stage: lost[stage] for stage in lost if live[stage] == 0}


def refuse_emptied_stages(model: nn.Module, keep: Dict[str, torch.Tensor],
                          event: str, threshold: float) -> None:
    """Raise :class:`EmptyStageError` naming ``event`` (e.g. ``'the shrink
    at iter 5'``) and the stages if ``keep`` would empty any stage."""
    empty = emptied_stages(model, keep)
    if not empty:
        return
    what = '; '.join(f'{stage}: all {units} units, {channels} channels'
                     for stage, (units, channels) in empty.items())
    raise EmptyStageError(
        f'{event} would remove every kernel path of {len(empty)} '
        f'searchable stage(s) ({what}): their |gamma| are all at or below '
        f'threshold={threshold:g}. Lower threshold (or rho), or check the '
        'weights; the run stops so that no degenerate ticket is saved')


def _with_prefix(prefix: str, name: str) -> str:
    return f'{prefix}.{name}' if prefix else name


def plan_channel_removal(model: nn.Module,
                         keep: Dict[str, torch.Tensor]) -> ShrinkPlan:
    """Plan to keep only ``keep[unit]`` channels of each listed unit.

    Args:
        model: The model holding the units.
        keep: ``{unit name: indices of the channels to keep}``; an empty
            index removes the unit. Units not listed are untouched.

    Raises:
        KeyError: a unit name that the model does not have.
        IndexError: an index outside the unit's channels.
    """
    units = {u.name: u for u in find_searchable_units(model)}
    unknown = sorted(set(keep) - set(units))
    if unknown:
        raise KeyError(f'no searchable unit named {unknown[:5]} in '
                       f'{type(model).__name__}')
    plan = ShrinkPlan()
    removed_units = set()
    for name, idx in keep.items():
        unit = units[name]
        idx = torch.as_tensor(idx, dtype=torch.long).flatten().cpu()
        if idx.numel() and (int(idx.min()) < 0
                            or int(idx.max()) >= unit.channels):
            raise IndexError(f'channel index out of range for {name} with '
                             f'{unit.channels} channels: {idx.tolist()}')
        if idx.numel() == unit.channels:
            continue
        if idx.numel() == 0:
            plan.removed_modules.append(name)
            removed_units.add(name)
            continue
        idx = idx.sort().values
        for local, dim in unit.module.coupled_tensors().items():
            plan.slices[f'{name}.{local}'] = (dim, idx)
    # A block whose paths are all gone keeps only its shortcut.
    for block_name, block in find_searchable_blocks(model).items():
        paths = [_with_prefix(block_name, f'paths.{k}') for k in block.paths]
        if paths and all(p in removed_units for p in paths) and \
                getattr(block, 'norm', None) is not None:
            plan.removed_modules.append(_with_prefix(block_name, 'norm'))
    named = dict(model.named_parameters())
    named.update(model.named_buffers())
    for mod in plan.removed_modules:
        plan.removed_tensors += [n for n in named if n.startswith(mod + '.')]
    return plan


def _sync_module_attrs(module: nn.Module) -> None:
    """Make a sliced layer's attributes agree with its new weight shape."""
    if isinstance(module, nn.Conv2d):
        out_c, in_per_group = module.weight.shape[:2]
        if module.groups > 1 and module.groups == module.out_channels \
                and module.groups == module.in_channels:
            module.groups = module.in_channels = out_c  # depthwise
        else:
            module.in_channels = in_per_group * module.groups
        module.out_channels = out_c
    elif isinstance(module, _BatchNorm):
        module.num_features = module.weight.shape[0] \
            if module.weight is not None else module.running_mean.shape[0]
    elif isinstance(module, nn.Linear):
        module.out_features, module.in_features = module.weight.shape


def apply_plan(model: nn.Module, plan: ShrinkPlan) -> None:
    """Carry out ``plan`` on ``model`` in place, keeping Parameter identity."""
    modules = dict(model.named_modules())
    touched = set()
    for name, (dim, idx) in plan.slices.items():
        mod_name, attr = name.rsplit('.', 1) if '.' in name else ('', name)
        mod = modules[mod_name]
        t = getattr(mod, attr)
        if t is None:
            continue
        idx = idx.to(t.device)
        if isinstance(t, nn.Parameter):
            t.data = t.data.index_select(dim, idx)
            t.grad = None
        else:
            setattr(mod, attr, t.index_select(dim, idx))
        touched.add(mod_name)
    for mod_name in touched:
        _sync_module_attrs(modules[mod_name])
    for mod_name in plan.removed_modules:
        parent_name, key = mod_name.rsplit('.', 1) if '.' in mod_name \
            else ('', mod_name)
        parent = modules[parent_name]
        if isinstance(parent, (nn.ModuleDict, nn.Sequential)):
            delattr(parent, key)  # containers just lose the child
        else:
            setattr(parent, key, None)


def follow_plan_in_optimizer(optimizer: torch.optim.Optimizer,
                             params_before: Dict[str, nn.Parameter],
                             plan: ShrinkPlan) -> None:
    """Slice optimizer state like the parameters; drop removed parameters.

    Call *before* :func:`apply_plan`, with ``params_before =
    dict(model.named_parameters())``: state tensors are recognised by having
    the parameter's current shape.
    """
    for name, (dim, idx) in plan.slices.items():
        p = params_before.get(name)
        if p is None or p not in optimizer.state:
            continue
        state = optimizer.state[p]
        for k, v in state.items():
            if torch.is_tensor(v) and v.shape == p.shape:
                state[k] = v.index_select(dim, idx.to(v.device))
    removed = {id(params_before[n]) for n in plan.removed_tensors
               if n in params_before}
    if not removed:
        return
    for group in optimizer.param_groups:
        group['params'] = [p for p in group['params'] if id(p) not in removed]
    for p in [p for p in optimizer.state if id(p) in removed]:
        del optimizer.state[p]
