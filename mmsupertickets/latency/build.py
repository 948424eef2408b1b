"""Measuring a latency table for a supernet on this machine.

:func:`describe_units` lays the table out (every unit's width, input,
signature, MACs per channel and width grid per divisor) without timing
anything; :func:`measure_table` times it: every unit alone at every grid
width on the input it gets inside the model, the supernet, and the supernet
with every unit removed (the fixed cost) and a few uniform subnets of it
(every unit at the same share of its width), all round by round in one
run. Units with the same signature and input (e.g. the repeated blocks of a
branch) are timed once. The subnets and the supernet calibrate the sum of
units timed alone to whole-model time, per divisor (:func:`fit_line`).
"""
import copy
import datetime
import functools
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
    AT_ONCE,
    check_runtime,
    library_versions,
    machine,
    make_runner,
    summarize,
    time_in_chunks,
)

__all__ = ['describe_units', 'measure_table', 'table_from_function',
           'sliced_unit', 'remove_units', 'unit_inputs', 'fastest_divisor',
           'uniform_widths', 'fit_line']

DEFAULT_DIVISORS = (1, 8, 16)
# Shares of every unit's width of the calibration subnets: they span the
# widths a search visits, so no prediction extrapolates the fit far.
CALIBRATION_SHARES = (0.2, 0.4, 0.6, 0.8)


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
    return subnet(model, {u.name: 0 for u in find_searchable_units(model)})


def subnet(model: nn.Module, widths: Dict[str, int]) -> nn.Module:
    """A copy of ``model`` whose units keep their first ``widths[name]``
    channels (which ones does not change a timing)."""
    net = copy.deepcopy(model)
    apply_plan(net, plan_channel_removal(
        net, {name: torch.arange(w) for name, w in widths.items()}))
    return net


def uniform_widths(units: Dict[str, dict], share: float,
                   divisor: int) -> Dict[str, int]:
    """Every unit at ``share`` of its channels, a multiple of ``divisor``
    and at least one group (a unit narrower than the divisor stays whole).

    Example:
        >>> uniform_widths({'a': dict(channels=96), 'b': dict(channels=5)},
        ...                0.5, 8)
        {'a': 48, 'b': 5}
    """
    out = {}
    for name, unit in units.items():
        c = unit['channels']
        w = int(round(c * share / divisor)) * divisor
        out[name] = min(max(w, min(divisor, c)), c)
    return out


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple:
    """``(offset, scale)`` of ``y ≈ offset + scale · x`` with the least
    squared relative error (weights 1/y²), ``offset >= 0`` and
    ``scale > 0``; without an offset when no such line fits (e.g. one
    point).

    Example:
        >>> [round(v, 6) for v in fit_line([100, 200, 300], [150, 250, 350])]
        [50.0, 1.0]
    """
    pts = [(float(x), float(y)) for x, y in zip(xs, ys) if y > 0]
    if not pts:
        raise ValueError('fit_line needs a point with y > 0')
    w = [1 / y**2 for _, y in pts]
    sw = sum(w)
    sx = sum(wi * x for wi, (x, _) in zip(w, pts))
    sy = sum(wi * y for wi, (_, y) in zip(w, pts))
    sxx = sum(wi * x * x for wi, (x, _) in zip(w, pts))
    sxy = sum(wi * x * y for wi, (x, y) in zip(w, pts))
    det = sw * sxx - sx * sx
    if det > 1e-12 * max(sw * sxx, 1e-300):
        scale = (sw * sxy - sx * sy) / det
        offset = (sy - scale * sx) / sw
        if scale > 0 and offset >= 0:
            return offset, scale
    if sxx > 0:  # no offset
        return 0.0, sxy / sxx
    return pts[-1][1], 0.0  # every x is 0


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
        units, and per divisor ``offset_ms`` and ``unit_scale`` of the line
        from Σ units alone to whole-model time fitted (:func:`fit_line`)
        over the supernet and the uniform subnets at
        ``CALIBRATION_SHARES`` of every width (kept under
        ``calibration``): timed alone, units miss what they cost inside the
        model (their block's sum and output BN, caches), and the model
        without units is no guide to that, since removing every unit of a
        block removes more than the units.

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
    nets = dict(supernet={n: u['channels'] for n, u in units.items()},
                empty={n: 0 for n in units})
    for d in divisors:
        for share in CALIBRATION_SHARES:
            nets[('subnet', str(d), share)] = uniform_widths(units, share, d)
    models = _model_runners(model, nets, shape, runtime, threads, device)
    at_once = AT_ONCE[runtime]
    log(f'timing {len(fns)} unit and call entries ({len(units)} units, '
        f'{len(groups)} distinct) and {len(models)} models in {runtime} on '
        f'{device}, {threads} thread(s): {rounds} rounds after {warmup} '
        'warm-up' + (f', {at_once} entries at a time' if at_once else ''))
    fns.update(models)
    times = {k: summarize(v) for k, v in time_in_chunks(
        fns, at_once, rounds, warmup, clock).items()}
    _store_unit_times(units, groups, times)
    speed = fastest_divisor(units)
    data = dict(
        format=TABLE_FORMAT, runtime=runtime, device=device,
        threads=threads, shape=shape, batch=1,
        fixed_ms=times['empty']['median'],
        supernet_ms=times['supernet']['median'],
        default_divisor=int(min(speed, key=speed.get)),
        divisors=_calibrate(units, divisors, nets, times, speed),
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
    """A runner factory (see :func:`~.timing.time_in_chunks`) per group
    and grid width, ``(group, width)``, and per unit input for the bare
    call, ``('call', input)``."""
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
            fns[call] = _factory(runtime, _Copy, x, threads, device)
        widths = sorted({w for g in unit['grids'].values()
                         for w in g['widths']})
        for w in widths:
            fns[(key, w)] = _factory(
                runtime, functools.partial(sliced_unit, modules[names[0]], w),
                x, threads, device)
    return fns


def _factory(runtime: str, build: Callable[[], nn.Module], x: torch.Tensor,
             threads: int, device: str) -> Callable[[], Callable[[], None]]:
    """Builds the module and its runner only when called."""
    return lambda: make_runner(runtime, build(), x, threads, device)


def _model_runners(model: nn.Module, nets: Dict[object, Dict[str, int]],
                   shape: List[int], runtime: str, threads: int,
                   device: str) -> dict:
    """A runner factory per entry of ``nets`` (``{key: unit widths}``): the
    supernet, the model without its units, the calibration subnets."""
    image = torch.randn(1, 3, *shape,
                        generator=torch.Generator().manual_seed(0))
    full = {u.name: u.channels for u in find_searchable_units(model)}

    def build(widths):
        forward = ModelForward(model if widths == full else
                               subnet(model, widths))
        with torch.no_grad():
            forward.choose_route(image.to(device))
        return forward

    return {key: _factory(runtime, functools.partial(build, widths), image,
                          threads, device)
            for key, widths in nets.items()}


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


def _calibrate(units: Dict[str, dict], divisors: Sequence[int],
               nets: Dict[object, Dict[str, int]], times: dict,
               speed: Dict[str, float]) -> dict:
    """Per divisor: ``offset_ms`` and ``unit_scale`` of the line from the
    units' time alone to the measured time of the supernet and of that
    divisor's calibration subnets, and the points behind it."""
    per_divisor = {}
    for d in map(str, divisors):
        keys = ['supernet'] + [k for k in nets
                               if isinstance(k, tuple) and k[1] == d]
        points = [dict(share=1.0 if k == 'supernet' else k[2],
                       units_alone_ms=sum(
                           interpolate(units[n]['grids'][d]['widths'],
                                       units[n]['grids'][d]['ms'], w)
                           for n, w in nets[k].items()),
                       measured_ms=times[k]['median']) for k in keys]
        offset, scale = fit_line([p['units_alone_ms'] for p in points],
                                 [p['measured_ms'] for p in points])
        per_divisor[d] = dict(
            unit_scale=scale, offset_ms=offset,
            units_alone_ms=points[0]['units_alone_ms'],
            ms_per_gmac_at_half_width=speed[d],
            calibration=sorted(points, key=lambda p: p['share']))
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
