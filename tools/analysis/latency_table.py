"""Measure a latency table of a supernet config on this machine.

Run it on the machine you deploy to, in the runtime you deploy with; copy
the JSON file to wherever the search runs and name it in
``SuperNetSearchHook(cost='latency', latency_table=...)``. The table holds
every searchable unit's latency alone at a grid of widths per channel
divisor, the latency of the model outside the units, and what it was
measured on (device, runtime, threads, shape, versions, spread).

Examples::

    CONFIG=configs/supertickets/\
supertickets_hrnas_8xb4-430e_cityscapes-512x1024.py
    OMP_NUM_THREADS=1 python tools/analysis/latency_table.py $CONFIG \\
        --shape 512 1024 --threads 1 --out table_pytorch.json
    python tools/analysis/latency_table.py CONFIG --shape 512 1024 \\
        --runtime onnxruntime --out table_ort.json
"""
import argparse
import os
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, init_default_scope

import mmsupertickets  # noqa: F401  (registers modules before the build)
from mmsupertickets.latency.build import DEFAULT_DIVISORS, measure_table
from mmsupertickets.latency.table import RUNTIMES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Latency table of every searchable unit of a supernet')
    parser.add_argument('config', help='config file of the supernet')
    parser.add_argument('--shape', type=int, nargs=2, required=True,
                        metavar=('H', 'W'), help='input size (batch 1)')
    parser.add_argument('--out', required=True, help='the JSON table')
    parser.add_argument('--runtime', choices=RUNTIMES, default='pytorch',
                        help='PyTorch eager, or ONNX Runtime with the CPU '
                        '(or CUDA) execution provider')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--threads', type=int, default=1,
                        help='intra-op threads of the runtime')
    parser.add_argument('--divisors', type=int, nargs='+',
                        default=list(DEFAULT_DIVISORS),
                        help='channel divisors to measure grids for')
    parser.add_argument('--points', type=int, default=6,
                        help='evenly spaced widths per grid')
    parser.add_argument('--rounds', type=int, default=20,
                        help='timed rounds (medians are kept)')
    parser.add_argument('--warmup', type=int, default=5,
                        help='untimed rounds first')
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                        help='wall time, or process CPU time (steadier on '
                        'a machine shared with other work; one thread)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if os.environ.get('OMP_NUM_THREADS') not in (None, str(args.threads)):
        print(f'note: OMP_NUM_THREADS={os.environ["OMP_NUM_THREADS"]}, '
              f'--threads {args.threads}', file=sys.stderr)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = MODELS.build(cfg.model)
    # Timings do not depend on the weights' values: no (network) init.
    table = measure_table(
        model, args.shape, runtime=args.runtime, threads=args.threads,
        device=args.device, divisors=args.divisors, points=args.points,
        rounds=args.rounds, warmup=args.warmup, config=args.config,
        clock=args.clock)
    table.save(args.out)
    data, d = table.data, table.default_divisor
    speed = ', '.join(
        f'{d}: {v["ms_per_gmac_at_half_width"]:.1f}'
        for d, v in sorted(data['divisors'].items(), key=lambda x: int(
            x[0])))
    print(f'{args.out}: {len(table.units)} units, {args.runtime} on '
          f'{args.device}, {args.threads} thread(s), '
          f'{args.shape[0]}x{args.shape[1]}; supernet '
          f'{data["supernet_ms"]:.2f} ms, outside the units '
          f'{data["fixed_ms"]:.2f} ms; ms per GMAC at half width by divisor '
          f'{{{speed}}}: default divisor {d}, predicted ms = '
          f'{table.offset_ms(d):.2f} + {table.unit_scale(d):.3f} x units '
          'alone')


if __name__ == '__main__':
    main()
