"""Measuring a latency table for a supernet on this machine.

:func:`describe_units` lays the table out (every unit's width, input,
signature, MACs per channel and width grid per divisor) without timing
anything; :func:`measure_table` times it: every unit alone at every grid
width on the input it gets inside the model, the supernet, and the supernet
with every unit removed (the fixed cost), all round by round in one run.
Units with the same signature and input (e.g. the repeated blocks of a
branch) are timed once.
"""
import copy
import datetime
import json
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from mmsupertickets.flops import ModelForward, ResourceEstimator
from mmsupertickets.structures.searchable import find_searchable_units
from mmsupertickets.structures.shrink_plan import (
    apply_plan,
    plan_channel_removal,
)

from .predictor import unit_signature
from .table import TABLE_FORMAT, LatencyTable, interpolate, width_grid
from .timing import (
    check_runtime,
    library_versions,
    machine,
    make_runner,
    summarize,
    time_round_robin,
)

__all__ = ['describe_units', 'measure_table', 'table_from_function',
           'sliced_unit', 'remove_units', 'unit_inputs', 'fastest_divisor']

DEFAULT_DIVISORS = (1, 8, 16)


class _Copy(nn.Module):
    # The cheapest op that still makes a runtime read its input and write
    # an output of the same size.
    def forward(self, x):
        return x.clone()


def unit_inputs(model: nn.Module, shape: Sequence[int]) -> Dict[str, list]:
    """The input shape (N, C, H, W) of every searchable unit in one forward
    of ``model`` (eval mode) on a 1×3×H×W image."""
    seen = {}

    def record(name):
        def hook(module, args):
            seen.setdefault(name, list(args[0].shape))
        return hook

    handles = [u.module.register_forward_pre_hook(record(u.name))
               for u in find_searchable_units(model)]
    device = next(model.parameters()).device
    x = torch.zeros(1, 3, *shape, device=device)
    forward = ModelForward(model.eval())
    try:
        with torch.no_grad():
            forward.choose_route(x)
            seen.clear()
            forward(x)
    finally:
        for h in handles:
            h.remove()
    return seen


def sliced_unit(module: nn.Module, width: int) -> nn.Module:
    """A copy of a unit with its first ``width`` channels, sliced the way a
    shrink slices (its coupled tensors)."""
    holder = nn.Module()
    holder.unit = copy.deepcopy(module)
    if width < holder.unit.channels:
        apply_plan(holder, plan_channel_removal(
            holder, {'unit': torch.arange(width)}))
    return holder.unit


def remove_units(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every searchable unit removed: what no
    shrink can remove (stem, shortcuts, fusions, head)."""
    empty = copy.deepcopy(model)
    apply_plan(empty, plan_channel_removal(
        empty, {u.name: torch.zeros(0, dtype=torch.long)
                for u in find_searchable_units(empty)}))
    return empty


def describe_units(model: nn.Module, shape: Sequence[int],
                   divisors: Sequence[int] = DEFAULT_DIVISORS,
                   points: int = 6) -> dict:
    """The units of a table for ``model`` at ``shape``, without timings:
    ``{name: {channels, input, signature, macs_per_channel, grids:
    {divisor: {widths}}}}``. Deterministic for a given model."""
    inputs = unit_inputs(model, shape)
    macs = ResourceEstimator(shape).module_macs(model)
    units = {}
    for u in find_searchable_units(model):
        units[u.name] = dict(
            channels=u.channels, input=inputs[u.name],
            signature=unit_signature(u.module),
            macs_per_channel=macs.get(u.name, 0) / max(u.channels, 1),
            grids={str(d): dict(widths=width_grid(u.channels, d, points))
                   for d in divisors})
    return units


def _middle(widths, channels):
    # The grid width closest to half the unit, the larger on a tie.
    return min(widths, key=lambda w: (abs(2 * w - channels), -w))


def fastest_divisor(units: Dict[str, dict]) -> Dict[str, float]:
    """Milliseconds per GMAC of the units at about half their widths, by
    divisor (from the measured grids): the divisor that makes the same
    MACs fastest in this runtime has the least."""
    out = {}
    for d in next(iter(units.values()))['grids']:
        ms = macs = 0.0
        for unit in units.values():
            grid = unit['grids'][d]
            w = _middle(grid['widths'], unit['channels'])
            ms += interpolate(grid['widths'], grid['ms'], w)
            macs += w * unit['macs_per_channel']
        out[d] = ms / max(macs / 1e9, 1e-12)
    return out


def measure_table(model: nn.Module,
                  shape: Sequence[int],
                  runtime: str = 'pytorch',
                  threads: int = 1,
                  device: str = 'cpu',
                  divisors: Sequence[int] = DEFAULT_DIVISORS,
                  points: int = 6,
                  rounds: int = 20,
                  warmup: int = 5,
                  config: Optional[str] = None,
                  log: Callable[[str], None] = print,
                  clock: str = 'wall') -> LatencyTable:
    """Measure a latency table of ``model`` (a supernet) on this machine.

    Args:
        model: The supernet (an OpenMMLab model or any module with
            searchable units); it is not changed.
        shape: (H, W) of the one input image (batch 1).
        runtime: ``'pytorch'`` (eager) or ``'onnxruntime'``.
        threads: Intra-op threads of the runtime.
        device: ``'cpu'`` or ``'cuda'``.
        divisors: Channel divisors to lay grids out for.
        points: Evenly spaced widths per grid (see :func:`width_grid`).
        rounds: Timed calls of every entry (medians are kept).
        warmup: Untimed calls of every entry first.
        config: The config the model was built from, recorded.
        log: Where progress lines go.
        clock: ``'wall'`` (what a user waits) or ``'cpu'`` (process CPU
            time: on a machine shared with other work, with one thread,
            the calls' own cost).

    Returns:
        LatencyTable: with ``fixed_ms`` the median of the model without
        units and each divisor's ``unit_scale`` = (supernet − fixed) / Σ
        units alone at full width: timed alone, units miss what they cost
        inside the model (their block's sum and output BN, caches), which
        the factor spreads over them in proportion.

    Example:
        >>> table = measure_table(model, (512, 1024),  # doctest: +SKIP
        ...                       runtime='onnxruntime', clock='cpu')
    """
    check_runtime(runtime, device)
    for value, key in ((rounds, 'rounds'), (threads, 'threads')):
        if value < 1:
            raise ValueError(f'{key}={value} must be >= 1')
    torch.set_num_threads(threads)
    model = model.eval().to(device)
    shape = [int(s) for s in shape]
    units = describe_units(model, shape, divisors, points)
    modules = {u.name: u.module for u in find_searchable_units(model)}
    groups = _same_units(modules, units)
    fns = _unit_runners(modules, units, groups, runtime, threads, device)
    fns.update(_model_runners(model, shape, runtime, threads, device))
    log(f'timing {len(fns) - 2} unit and call entries ({len(units)} units, '
        f'{len(groups)} distinct) and 2 models in {runtime} on {device}, '
        f'{threads} thread(s): {rounds} rounds after {warmup} warm-up')
    times = {k: summarize(v) for k, v in time_round_robin(
        fns, rounds, warmup, clock).items()}
    _store_unit_times(units, groups, times)
    fixed = times['empty']['median']
    supernet = times['supernet']['median']
    speed = fastest_divisor(units)
    data = dict(
        format=TABLE_FORMAT, runtime=runtime, device=device,
        threads=threads, shape=shape, batch=1,
        fixed_ms=fixed, supernet_ms=supernet,
        default_divisor=int(min(speed, key=speed.get)),
        divisors=_divisor_scales(units, divisors, supernet - fixed, speed),
        units=units,
        measurement=dict(
            rounds=rounds, warmup=warmup, clock=clock,
            statistic='median; iqr = [25th, 75th] percentile',
            points=points, supernet_iqr=times['supernet']['iqr'],
            fixed_iqr=times['empty']['iqr'], versions=library_versions(
                runtime), machine=machine(), config=config,
            created=datetime.datetime.now().astimezone().strftime(
                '%Y-%m-%d %H:%M %Z')))
    return LatencyTable(data, config or 'the measured table')


def _same_units(modules: Dict[str, nn.Module], units: Dict[str, dict]
                ) -> Dict[str, List[str]]:
    """Units by (type, signature, input): each group is timed once."""
    groups = {}
    for name, unit in units.items():
        key = json.dumps([type(modules[name]).__name__, unit['signature'],
                          unit['input']], sort_keys=True)
        groups.setdefault(key, []).append(name)
    return groups


def _unit_runners(modules: Dict[str, nn.Module], units: Dict[str, dict],
                  groups: Dict[str, List[str]], runtime: str, threads: int,
                  device: str) -> dict:
    """A runner per group and grid width, ``(group, width)``, and per unit
    input for the bare call, ``('call', input)``."""
    fns = {}
    for key, names in groups.items():
        unit = units[names[0]]
        x = torch.randn(*unit['input'],
                        generator=torch.Generator().manual_seed(0))
        # What a call costs the runtime by itself on this input (an ONNX
        # Runtime session copies it in and out): no unit pays it inside
        # the model, so it is taken off each of its entries.
        call = ('call', tuple(unit['input']))
        if call not in fns:
            fns[call] = make_runner(runtime, _Copy(), x, threads, device)
        widths = sorted({w for g in unit['grids'].values()
                         for w in g['widths']})
        for w in widths:
            fns[(key, w)] = make_runner(
                runtime, sliced_unit(modules[names[0]], w), x, threads,
                device)
    return fns


def _model_runners(model: nn.Module, shape: List[int], runtime: str,
                   threads: int, device: str) -> dict:
    """Runners of the supernet and of the model without its units."""
    image = torch.randn(1, 3, *shape,
                        generator=torch.Generator().manual_seed(0))
    forward = ModelForward(model)
    with torch.no_grad():
        forward.choose_route(image.to(device))
    empty = ModelForward(remove_units(model))
    with torch.no_grad():
        empty.choose_route(image.to(device))
    return dict(
        supernet=make_runner(runtime, forward, image, threads, device),
        empty=make_runner(runtime, empty, image, threads, device))


def _store_unit_times(units: Dict[str, dict], groups: Dict[str, List[str]],
                      times: dict) -> None:
    """Each unit's call time and grid medians (call taken off) and IQRs,
    in place."""
    for key, names in groups.items():
        call = times[('call', tuple(units[names[0]]['input']))]['median']
        for name in names:
            units[name]['call_ms'] = call
            for grid in units[name]['grids'].values():
                grid['ms'] = [max(times[(key, w)]['median'] - call, 0.0)
                              for w in grid['widths']]
                grid['iqr'] = [times[(key, w)]['iqr']
                               for w in grid['widths']]


def _divisor_scales(units: Dict[str, dict], divisors: Sequence[int],
                    in_units: float, speed: Dict[str, float]) -> dict:
    """Per divisor: ``unit_scale`` = the supernet's time in its units over
    the units' time alone at full width, and the numbers behind it."""
    per_divisor = {}
    for d in map(str, divisors):
        alone = sum(interpolate(u['grids'][d]['widths'], u['grids'][d]['ms'],
                                u['channels']) for u in units.values())
        per_divisor[d] = dict(
            unit_scale=in_units / alone if alone > 0 else 1.0,
            units_alone_ms=alone, ms_per_gmac_at_half_width=speed[d])
    return per_divisor


def table_from_function(model: nn.Module, shape: Sequence[int],
                        unit_ms: Callable[[str, dict, int], float],
                        fixed_ms: float,
                        divisors: Sequence[int] = DEFAULT_DIVISORS,
                        points: int = 6,
                        default_divisor: Optional[int] = None,
                        runtime: str = 'pytorch') -> LatencyTable:
    """A table laid out as :func:`measure_table` lays it out, with the
    unit times from ``unit_ms(name, unit, width)`` instead of a clock (a
    cost model of a device, or a test's known numbers); the supernet's
    time is the sum, so ``unit_scale`` is 1.

    Example:
        >>> table = table_from_function(  # doctest: +SKIP
        ...     model, (64, 64), lambda name, unit, w: 1e-6 * w *
        ...     unit['macs_per_channel'], fixed_ms=1.0)
    """
    units = describe_units(model, shape, divisors, points)
    for name, unit in units.items():
        for grid in unit['grids'].values():
            grid['ms'] = [float(unit_ms(name, unit, w))
                          for w in grid['widths']]
    alone = {str(d): sum(unit_ms(n, u, u['channels'])
                         for n, u in units.items()) for d in divisors}
    data = dict(
        format=TABLE_FORMAT, runtime=runtime, device='cpu', threads=1,
        shape=[int(s) for s in shape], batch=1, fixed_ms=float(fixed_ms),
        supernet_ms=float(fixed_ms) + alone[str(divisors[0])],
        default_divisor=int(default_divisor or divisors[0]),
        divisors={d: dict(unit_scale=1.0, units_alone_ms=alone[d])
                  for d in alone},
        units=units, measurement=dict(clock='none: from a function'))
    return LatencyTable(data, 'a table from a function')
