"""Inference latency and checkpoint size of a ticket against its baselines.

Six models, one image (batch 1), CPU, eval mode, ``torch.inference_mode``,
the tensor forward of an mmseg segmentor (``mode='tensor'``: backbone and
decode head, logits at 1/4 resolution, no resize to the input or argmax),
timed round by round in one run:

- ``supernet``: the dense paper supernet (SuperTicketHRNet + HRNASSegHead,
  19 classes);
- ``shrunk``: the same net shrunk to about ``--macs-fraction`` of its MACs
  (random |γ|, each kernel path keeps its largest-|γ| channels);
- ``ticket``: ``shrunk`` pruned to ``--sparsity`` of its prunable weights
  (global magnitude, the final classifier excluded) with the masks baked
  in, as an exported ticket is. It runs as a plain dense model: next to
  ``shrunk`` it shows that the zeros alone buy no time on a dense runtime;
- ``hrnet18``: stock mmseg HRNet-W18 + FCN head built from
  ``mmseg::hrnet/fcn_hr18_4xb2-80k_cityscapes-512x1024.py`` (no pretrained
  weights, BN instead of SyncBN);
- ``div1`` and ``div8``: does ``SuperNetSearchHook(channel_divisor=8)`` buy
  time? Two subnets of the same supernet and |γ| at equal MACs (see
  :func:`mmsupertickets.testing.subnets.divisor_pair`). ``div1`` has free
  widths: it is shrunk as ``shrunk`` is (so the same net, timed twice: ``div1``
  against ``shrunk`` shows the noise of the run). ``div8`` starts from
  ``div1``'s kept channels, each unit's set rounded to a multiple of 8 by
  ``round_live_channels`` (the hook's rule: up when the unit has that many
  channels, reviving its largest-|γ| dead ones, else down), then moves 8
  channels at a time in the units where that brings its MACs closest to
  ``div1``'s, for as long as a move does; every unit keeps its largest-|γ|
  channels, a multiple of 8 (or 0: the unit is removed). The output gives both
  MACs and their gap.

Checkpoint sizes on disk, each file written as ``export_ticket`` writes
its own: ``torch.save`` of each dense ``state_dict`` (detached CPU copies),
and the ticket's sparse form (kept values + flat int32 indices of every
masked weight, other tensors dense), the ``ticket_sparse.pth`` of an export,
written and read back by ``mmsupertickets.structures.sparse_format``.

With ``--latency`` a second part runs, once per runtime (PyTorch eager and
ONNX Runtime, CPU execution provider), side by side in one run: stock
HRNet-W18 + FCN; a ``latency`` subnet fitted to ``--latency-target`` ×
stock's measured latency by the search hook's own budget fit under the
latency cost (a table measured in the same run, or ``--tables``), at the
table's default divisor; a ``macs`` subnet of equal MACs fitted under the
MACs cost (what ``target_macs`` would give); and ``div1``/``div8``/
``div16`` subnets at ``--macs-fraction`` of the supernet's MACs under the
MACs cost with those divisors. Every fit ranks channels by the random |γ|
(no training here): the structures are the ones the hook's fit picks for
that ranking, so the latencies are what such tickets run at; the demo
metric of a searched ticket needs a search run.

Example::

    OMP_NUM_THREADS=1 .venv/bin/python tools/benchmarks/deployment.py
    .venv/bin/python tools/benchmarks/deployment.py --shape 512 512
    .venv/bin/python tools/benchmarks/deployment.py --latency \
        --tables pytorch=table_pt.json onnxruntime=table_ort.json
"""
import argparse
import copy
import os.path as osp
import tempfile

import torch

from mmsupertickets.testing.benchmarks import (
    TIME_HEADERS,
    add_common_args,
    build_seg_model,
    fmt_count,
    fmt_mb,
    interleaved,
    print_header,
    print_table,
    setup,
)
from mmsupertickets.testing.subnets import (
    divisor_pair,
    fit_subnet,
    macs_cost_model,
    prune_and_bake,
    randomise_gammas,
    shrink_to_macs,
)

HRNET_CONFIG = 'mmseg::hrnet/fcn_hr18_4xb2-80k_cityscapes-512x1024.py'
# Channel divisor of the div8 model.
DIVISOR = 8


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='CPU inference latency and checkpoint size: dense '
        'supernet, shrunk + sparse ticket, stock HRNet-W18 + FCN')
    parser.add_argument('--shape', type=int, nargs=2, default=(512, 1024),
                        metavar=('H', 'W'), help='input size')
    parser.add_argument('--macs-fraction', type=float, default=0.5,
                        help='MACs of the ticket / MACs of the supernet')
    parser.add_argument('--sparsity', type=float, default=0.9,
                        help='share of the prunable weights set to zero')
    parser.add_argument('--latency', action='store_true',
                        help='also time latency- and MACs-budget subnets and '
                        'divisors 1/8/16 against stock in both runtimes')
    parser.add_argument('--latency-target', type=float, default=0.7,
                        help='latency budget as a share of stock HRNet-W18 '
                        '+ FCN\'s measured latency')
    parser.add_argument('--runtimes', nargs='+',
                        default=['pytorch', 'onnxruntime'])
    parser.add_argument('--tables', nargs='+', default=[],
                        metavar='RUNTIME=PATH',
                        help='latency tables measured before (else measured '
                        'here with --table-rounds rounds)')
    parser.add_argument('--table-rounds', type=int, default=10)
    parser.add_argument('--only-latency', action='store_true',
                        help='skip the first part')
    add_common_args(parser, repeats=8, warmup=1)
    args = parser.parse_args(argv)
    if args.smoke:
        args.shape = (64, 128)
        args.repeats, args.warmup = 1, 0
    return args


def build_hrnet18() -> torch.nn.Module:
    """Stock mmseg HRNet-W18 + FCN head from its Cityscapes config."""
    from mmengine.hub import get_config
    from mmseg.registry import MODELS
    cfg = get_config(HRNET_CONFIG).model
    cfg.pretrained = None
    # SyncBN needs a process group only when training; plain BN is the
    # same layer at inference.
    bn = dict(type='BN', requires_grad=True)
    cfg.backbone.norm_cfg = bn
    cfg.decode_head.norm_cfg = bn
    torch.manual_seed(0)
    return MODELS.build(cfg)


def file_size(save, *args):
    """Write a file with ``save(*args)`` (its path last); its size."""
    save(*args)
    return osp.getsize(args[-1])


def runtime_table(args, runtime, supernet, tables):
    """The latency table of ``runtime``: loaded from ``--tables``, else
    measured here."""
    from mmsupertickets.latency import LatencyTable
    from mmsupertickets.latency.build import measure_table
    if runtime in tables:
        return LatencyTable.load(tables[runtime])
    return measure_table(
        supernet, args.shape, runtime=runtime, threads=args.threads,
        rounds=args.table_rounds, warmup=args.warmup,
        log=lambda line: print(f'# {line}'))


def time_models(runtime, models, image, args):
    """Summaries of each model's time in ``runtime``, round by round."""
    from mmsupertickets.flops import ModelForward
    from mmsupertickets.latency.timing import (
        make_runner,
        summarize,
        time_round_robin,
    )
    fns = {}
    for name, net in models.items():
        forward = ModelForward(net.eval())
        with torch.no_grad():
            forward.choose_route(image)
        fns[name] = make_runner(runtime, forward, image, args.threads)
    return {n: summarize(t) for n, t in time_round_robin(
        fns, args.repeats, args.warmup).items()}


def budget_subnets(supernet, table, budget, macs_cost, macs_budget,
                   estimator):
    """The latency-budget subnet, the MACs-budget one of equal MACs and
    the div1/div8/div16 ones at ``macs_budget``, by name."""
    from mmsupertickets.latency import LatencyCost
    divisor = table.default_divisor
    models = dict(latency=fit_subnet(
        supernet, LatencyCost(table, divisor), budget, divisor))
    ticket_macs = estimator.complexity(models['latency'])['macs']
    models['macs'] = fit_subnet(supernet, macs_cost, ticket_macs, 1)
    for d in (1, 8, 16):
        models[f'div{d}'] = fit_subnet(supernet, macs_cost, macs_budget, d)
    return models


def print_runtime_table(models, times, table, estimator):
    """Measured and predicted latency of each model, against stock."""
    from mmsupertickets.latency import predict_latency
    med = {n: t['median'] for n, t in times.items()}
    # Each subnet predicted with the grid of its own divisor (the table's
    # default when it has none for it).
    grids = dict(latency=table.default_divisor, macs=1, div1=1, div8=8,
                 div16=16)
    rows = []
    for name, net in models.items():
        d = grids.get(name)
        if d is not None and str(d) not in table.data['divisors']:
            d = table.default_divisor
        pred = '' if d is None else f'{predict_latency(net, table, d):.1f}'
        rows.append([name, fmt_count(estimator.complexity(net)['macs']),
                     f'{med[name]:.1f}',
                     f'{times[name]["iqr"][0]:.1f}-'
                     f'{times[name]["iqr"][1]:.1f}', pred,
                     f'{med[name] / med["hrnet18"]:.3f}'])
    print_table(['model', 'MACs', 'ms (median)', 'iqr', 'predicted ms',
                 'vs hrnet18'], rows)


def latency_part(args, supernet, hrnet):
    """Latency- vs MACs-budget subnets vs stock, divisors 1/8/16, in each
    runtime (see the module docstring)."""
    from mmsupertickets.flops import ResourceEstimator
    h, w = args.shape
    tables = dict(t.split('=', 1) for t in args.tables)
    estimator = ResourceEstimator(args.shape)
    total_macs = estimator.complexity(supernet)['macs']
    macs_cost = macs_cost_model(estimator, supernet, total_macs)
    image = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(1))
    summary = []
    for runtime in args.runtimes:
        table = runtime_table(args, runtime, supernet, tables)
        stock = time_models(runtime, dict(hrnet18=hrnet), image,
                            args)['hrnet18']['median']
        budget = args.latency_target * stock
        models = budget_subnets(supernet, table, budget, macs_cost,
                                args.macs_fraction * total_macs, estimator)
        models['hrnet18'] = hrnet
        times = time_models(runtime, models, image, args)
        print(f'{runtime}: stock {stock:.1f} ms alone, budget '
              f'{args.latency_target} x stock = {budget:.1f} ms predicted; '
              f'table default divisor {table.default_divisor}; '
              f'{args.repeats} rounds')
        print_runtime_table(models, times, table, estimator)
        summary.append((runtime, {n: t['median'] / times['hrnet18']['median']
                                  for n, t in times.items()}))
    for runtime, ratio in summary:
        print(f'ratio {runtime}: latency-budget subnet/hrnet18 '
              f'{ratio["latency"]:.3f}, MACs-budget subnet (equal MACs)/'
              f'hrnet18 {ratio["macs"]:.3f}; divisors at '
              f'{args.macs_fraction} MACs: div1 {ratio["div1"]:.3f}, div8 '
              f'{ratio["div8"]:.3f}, div16 {ratio["div16"]:.3f}')


def build_models(args):
    """The six models of the first part by name, each model's cost at
    ``--shape`` and the ticket's masks."""
    from mmsupertickets.flops import complexity
    supernet = build_seg_model(tiny=args.smoke)
    randomise_gammas(supernet)
    shrunk = copy.deepcopy(supernet)
    supernet_cost, shrunk_cost = shrink_to_macs(shrunk, args.shape,
                                                args.macs_fraction)
    ticket = copy.deepcopy(shrunk)
    masks = prune_and_bake(ticket, args.sparsity)
    ticket_cost = complexity(
        ticket, args.shape,
        {n: float(m.sum()) / m.numel() for n, m in masks.items()})
    hrnet = build_hrnet18()
    hrnet_cost = complexity(hrnet, args.shape)
    div1, div8, div1_cost, div8_cost = divisor_pair(
        supernet, args.shape, args.macs_fraction, DIVISOR)
    models = dict(supernet=supernet, shrunk=shrunk, ticket=ticket,
                  hrnet18=hrnet, div1=div1, div8=div8)
    costs = dict(supernet=supernet_cost, shrunk=shrunk_cost,
                 ticket=ticket_cost, hrnet18=hrnet_cost, div1=div1_cost,
                 div8=div8_cost)
    return models, costs, masks


def checkpoint_sizes(models, masks):
    """Bytes of each checkpoint file, written as ``export_ticket`` writes
    its counterpart, and whether the sparse file reads back the same."""
    from mmsupertickets.apis.export.subnet import plain_state_dict
    from mmsupertickets.structures import sparse_format
    from mmsupertickets.utils.atomic_write import save_checkpoint_atomically
    tmp = tempfile.TemporaryDirectory(prefix='supertickets_bench_')
    path = {n: osp.join(tmp.name, f'{n}.pth')
            for n in ('supernet', 'ticket', 'ticket_sparse', 'hrnet18')}
    ticket_state = plain_state_dict(models['ticket'])
    sizes = dict(
        supernet=file_size(save_checkpoint_atomically,
                           plain_state_dict(models['supernet']),
                           path['supernet']),
        ticket=file_size(save_checkpoint_atomically, ticket_state,
                         path['ticket']),
        ticket_sparse=file_size(sparse_format.save_sparse_state_dict,
                                ticket_state, masks, path['ticket_sparse']),
        hrnet18=file_size(save_checkpoint_atomically,
                          plain_state_dict(models['hrnet18']),
                          path['hrnet18']))
    back = sparse_format.load_sparse_state_dict(path['ticket_sparse'])
    round_trip = back.keys() == ticket_state.keys() and all(
        torch.equal(back[k], ticket_state[k]) for k in back)
    tmp.cleanup()
    return sizes, round_trip


def time_inference(models, args):
    """Each model's tensor forward in ``inference_mode``, interleaved."""
    h, w = args.shape
    x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    for m in models.values():
        m.eval()

    def run(model):

        def forward():
            with torch.inference_mode():
                model(x, mode='tensor')

        return forward

    return interleaved({n: run(m) for n, m in models.items()},
                       repeats=args.repeats, warmup=args.warmup)


def print_sizes(models, costs, masks, round_trip, args):
    """The ticket's line, MACs and params of each model and the divisor
    check of div8."""
    from mmsupertickets.structures import sparse_format
    from mmsupertickets.structures.searchable import find_searchable_units
    h, w = args.shape
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    share = costs['shrunk']['macs'] / costs['supernet']['macs']
    print(f'ticket: shrunk to {share:.3f} of the supernet\'s MACs, '
          f'{1 - kept / total:.3f} of its {total / 1e6:.2f} M prunable '
          f'weights zero; sparse file written by {sparse_format.__name__}, '
          f'reloads to the same weights: {"yes" if round_trip else "NO"}')
    print(f'Size at {h}x{w}, one image (MACs and params: Conv2d/Linear '
          'only; sparse: each layer\'s MACs x its density)')
    print_table(['model', 'MACs', 'sparse MACs', 'params'],
                [[n, fmt_count(costs[n]['macs']),
                  fmt_count(costs[n]['sparse_macs'])
                  if 'sparse_macs' in costs[n] else '',
                  fmt_count(costs[n]['params'])] for n in models])
    div1_cost, div8_cost = costs['div1'], costs['div8']
    widths = [u.channels for u in find_searchable_units(models['div8'])]
    print(f'channel divisor: div8 has {len(widths)} units, widths a '
          f'multiple of {DIVISOR}: '
          f'{"yes" if all(c % DIVISOR == 0 for c in widths) else "NO"}'
          f'; MACs div1 {div1_cost["macs"]:,}, div8 {div8_cost["macs"]:,}, '
          f'gap (div8 - div1) / div1 '
          f'{(div8_cost["macs"] - div1_cost["macs"]) / div1_cost["macs"]:+.3%}'
          f'; params div1 {div1_cost["params"]:,}, div8 '
          f'{div8_cost["params"]:,}')


def print_times(models, times, sizes, args):
    """The latency table, the checkpoint sizes and the ratio line."""
    h, w = args.shape
    med = {n: t.med_wall for n, t in times.items()}
    med_cpu = {n: t.med_cpu for n, t in times.items()}
    print(f'Latency at {h}x{w}: {args.repeats} timed rounds after '
          f'{args.warmup} warm-up')
    print_table(['model'] + TIME_HEADERS + ['wall vs supernet',
                                            'CPU vs supernet'],
                [[n] + times[n].cells() + [
                    f'{med[n] / med["supernet"]:.3f}',
                    f'{med_cpu[n] / med_cpu["supernet"]:.3f}']
                 for n in models])
    print('Checkpoint size on disk (torch.save)')
    print_table(
        ['file', 'size', 'vs supernet'],
        [['supernet dense state_dict', fmt_mb(sizes['supernet']), '1.000'],
         ['ticket dense state_dict (shrunk, zeros baked)',
          fmt_mb(sizes['ticket']),
          f'{sizes["ticket"] / sizes["supernet"]:.3f}'],
         ['ticket sparse form (values + int32 indices)',
          fmt_mb(sizes['ticket_sparse']),
          f'{sizes["ticket_sparse"] / sizes["supernet"]:.3f}'],
         ['hrnet18 dense state_dict', fmt_mb(sizes['hrnet18']),
          f'{sizes["hrnet18"] / sizes["supernet"]:.3f}']])
    print(f'ratio latency (wall) ticket/supernet '
          f'{med["ticket"] / med["supernet"]:.3f}, ticket/shrunk '
          f'{med["ticket"] / med["shrunk"]:.3f}, ticket/hrnet18 '
          f'{med["ticket"] / med["hrnet18"]:.3f}, supernet/hrnet18 '
          f'{med["supernet"] / med["hrnet18"]:.3f}, div1/shrunk '
          f'{med["div1"] / med["shrunk"]:.3f}; channel divisor '
          f'div8/div1 wall {med["div8"] / med["div1"]:.3f}, CPU '
          f'{med_cpu["div8"] / med_cpu["div1"]:.3f}, least CPU '
          f'{times["div8"].min_cpu / times["div1"].min_cpu:.3f}; checkpoint '
          f'ticket_sparse/supernet '
          f'{sizes["ticket_sparse"] / sizes["supernet"]:.3f}')


def main(argv=None):
    args = parse_args(argv)
    setup(args.threads)
    if args.only_latency:
        supernet = build_seg_model(tiny=args.smoke)
        randomise_gammas(supernet)
        latency_part(args, supernet.eval(), build_hrnet18().eval())
        return
    h, w = args.shape
    print_header(
        f'deployment: CPU inference latency (batch 1, eval, inference_mode)'
        f' and checkpoint size, input {h}x{w}'
        + (' (smoke: tiny supernet)' if args.smoke else ''), args.threads)
    models, costs, masks = build_models(args)
    sizes, round_trip = checkpoint_sizes(models, masks)
    times = time_inference(models, args)
    print_sizes(models, costs, masks, round_trip, args)
    print_times(models, times, sizes, args)
    if args.latency:
        latency_part(args, models['supernet'], models['hrnet18'])


if __name__ == '__main__':
    main()
