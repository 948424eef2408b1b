"""Is the latency table's prediction trustworthy? Predicted vs measured.

For each runtime (PyTorch eager, ONNX Runtime CPU), one run: a latency
table of the paper supernet (SuperTicketHRNet + HRNASSegHead, 19 classes)
is measured at ``--shape``, then ``--subnets`` random subnets of it (each
unit keeps its largest-|γ| channels, a multiple of ``--divisor``; overall
shares from 15 % to 100 % of the widths, each unit jittered around its
subnet's share) are timed whole, round by round, and compared with
``predict_latency``. Printed: Spearman rank correlation and the median
relative error |predicted − measured| / measured, with and without the
table's calibration (goal: Spearman ≥ 0.9, median error ≤ 10 %). The table
calibrates on uniform subnets (every unit at one share of its width); the
random subnets here are not among them.

Example::

    OMP_NUM_THREADS=1 .venv/bin/python tools/benchmarks/latency_predictor.py \\
        --shape 256 512 --threads 1
"""
import argparse
import copy
import random
import statistics

import torch

from mmsupertickets.testing.benchmarks import (
    build_seg_model,
    print_header,
    print_table,
    setup,
)
from mmsupertickets.testing.subnets import randomise_gammas, shrink_to_counts


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Latency table prediction vs measurement')
    parser.add_argument('--shape', type=int, nargs=2, default=(256, 512),
                        metavar=('H', 'W'))
    parser.add_argument('--runtimes', nargs='+',
                        default=['pytorch', 'onnxruntime'])
    parser.add_argument('--subnets', type=int, default=20)
    parser.add_argument('--divisor', type=int, default=8)
    parser.add_argument('--table-rounds', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=7,
                        help='timed rounds of the subnets')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                        help='process CPU time is steadier on a shared '
                        'machine (one thread)')
    parser.add_argument('--smoke', action='store_true',
                        help='tiny model, one round: checks the script runs')
    args = parser.parse_args(argv)
    if args.smoke:
        args.shape, args.subnets = (64, 64), 4
        args.table_rounds, args.repeats, args.warmup = 1, 1, 0
    return args


def ranks(xs):
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2  # ties share their mean rank
        i = j + 1
    return out


def spearman(a, b):
    """Rank correlation (Pearson on ranks, ties averaged)."""
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.mean(ra), statistics.mean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = (sum((x - ma)**2 for x in ra) * sum((y - mb)**2 for y in rb))**.5
    return cov / var if var else float('nan')


def random_counts(units, divisor, share, rng):
    """Widths of one random subnet: each unit near ``share`` of its
    channels, a multiple of ``divisor`` and at least one group."""
    counts = {}
    for u in units:
        s = min(max(share * rng.uniform(0.7, 1.3), 0.0), 1.0)
        w = int(round(u.channels * s / divisor)) * divisor
        counts[u.name] = min(max(w, min(divisor, u.channels)), u.channels)
    return counts


def main(argv=None):
    args = parse_args(argv)
    setup(args.threads)
    from mmsupertickets.flops import ModelForward
    from mmsupertickets.latency import predict_latency
    from mmsupertickets.latency.build import measure_table
    from mmsupertickets.latency.timing import (
        make_runner,
        summarize,
        time_round_robin,
    )
    from mmsupertickets.structures.searchable import find_searchable_units
    h, w = args.shape
    print_header(f'latency_predictor: predicted vs measured latency of '
                 f'{args.subnets} random subnets (divisor {args.divisor}), '
                 f'input {h}x{w}, batch 1'
                 + (' (smoke: tiny supernet)' if args.smoke else ''),
                 args.threads)
    supernet = build_seg_model(tiny=args.smoke).eval()
    randomise_gammas(supernet)
    units = find_searchable_units(supernet)
    rng = random.Random(args.seed)
    shares = [0.15 + 0.85 * i / max(args.subnets - 1, 1)
              for i in range(args.subnets)]
    rng.shuffle(shares)
    subnets = []
    for share in shares:
        net = copy.deepcopy(supernet)
        shrink_to_counts(net, random_counts(units, args.divisor, share, rng))
        subnets.append(net)
    image = torch.randn(1, 3, h, w,
                        generator=torch.Generator().manual_seed(0))
    summary = []
    for runtime in args.runtimes:
        table = measure_table(
            supernet, args.shape, runtime=runtime, threads=args.threads,
            divisors=(args.divisor, ), rounds=args.table_rounds,
            warmup=args.warmup, log=lambda line: print(f'# {line}'),
            clock=args.clock)
        scale = table.unit_scale(args.divisor)
        fns = {}
        for i, net in enumerate(subnets):
            forward = ModelForward(net)
            with torch.no_grad():
                forward.choose_route(image)
            fns[i] = make_runner(runtime, forward, image, args.threads)
        times = time_round_robin(fns, args.repeats, args.warmup,
                                 args.clock)
        rows, measured, predicted, raw = [], [], [], []
        for i, net in enumerate(subnets):
            m = summarize(times[i])
            p = predict_latency(net, table, args.divisor)
            # Without the calibration: the model outside the units plus
            # the units alone.
            r = table.fixed_ms + (p - table.offset_ms(args.divisor)) / scale
            measured.append(m['median'])
            predicted.append(p)
            raw.append(r)
            rows.append([i, f'{shares[i]:.2f}', f'{m["median"]:.2f}',
                         f'{m["iqr"][0]:.2f}-{m["iqr"][1]:.2f}',
                         f'{p:.2f}',
                         f'{(p - m["median"]) / m["median"]:+.3f}'])
        print(f'{runtime}: table supernet {table.data["supernet_ms"]:.2f} ms'
              f', outside the units {table.fixed_ms:.2f} ms, calibrated '
              f'offset {table.offset_ms(args.divisor):.2f} ms and unit_scale'
              f' {scale:.3f}; subnets {args.repeats} rounds after '
              f'{args.warmup} warm-up, {args.clock} clock')
        print_table(['subnet', 'share', 'measured ms', 'iqr', 'predicted ms',
                     'rel. error'], rows)
        err = statistics.median(abs(p - m) / m
                                for p, m in zip(predicted, measured))
        err_raw = statistics.median(abs(p - m) / m
                                    for p, m in zip(raw, measured))
        summary.append((runtime, spearman(predicted, measured), err,
                        spearman(raw, measured), err_raw))
    for runtime, rho, err, rho_raw, err_raw in summary:
        print(f'ratio {runtime}: Spearman {rho:.3f}, median relative error '
              f'{err:.3f} (uncalibrated: Spearman {rho_raw:.3f}, error '
              f'{err_raw:.3f}); goal >= 0.9 and <= 0.10')


if __name__ == '__main__':
    main()
