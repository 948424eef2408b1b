"""Speedup that physical shrinking buys: supernet vs. a half-MACs subnet.

The paper's segmentation supernet (SuperTicketHRNet + HRNASSegHead, 19
classes) is compared with a copy shrunk to about ``--macs-fraction`` of its
MACs: after giving every searchable channel a random |γ|, each kernel path
keeps the same share of its channels, its largest-|γ| ones, the share being
chosen from the per-unit MAC counts so that the whole model lands on the
fraction (``plan_channel_removal`` + ``apply_plan``, as a shrink event
does). Both are timed in one run, round by round:

- train step: forward + cross-entropy + backward, train mode;
- forward: eval mode under ``torch.no_grad``.

The output is the logits at 1/4 resolution (``mode='tensor'``). The MACs
ratio is printed next to the time ratios: depthwise convs, BN, activations
and resizes do not shrink in proportion, so time falls less than MACs.

Example::

    OMP_NUM_THREADS=1 .venv/bin/python tools/benchmarks/shrink_speedup.py
    .venv/bin/python tools/benchmarks/shrink_speedup.py --shape 512 1024 \
        --repeats 3
"""
import argparse
import copy

import torch
import torch.nn.functional as F

from mmsupertickets.testing.benchmarks import (
    TIME_HEADERS,
    add_common_args,
    build_seg_model,
    fmt_count,
    interleaved,
    print_header,
    print_table,
    setup,
)
from mmsupertickets.testing.subnets import randomise_gammas, shrink_to_macs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Time the supernet against a subnet shrunk to about '
        'half its MACs (train step and forward)')
    parser.add_argument('--shape', type=int, nargs=2, default=(256, 512),
                        metavar=('H', 'W'), help='input size')
    parser.add_argument('--batch', type=int, default=1, help='batch size')
    parser.add_argument('--macs-fraction', type=float, default=0.5,
                        help='MACs of the subnet / MACs of the supernet')
    add_common_args(parser, repeats=8, warmup=1)
    args = parser.parse_args(argv)
    if args.smoke:
        args.shape, args.batch = (64, 128), 1
        args.repeats, args.warmup = 1, 0
    return args


def make_steps(model, x, labels):
    """A train step and a forward pass of ``model`` on ``x``."""

    def train_step():
        model.train()
        logits = model(x, mode='tensor')
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        model.zero_grad(set_to_none=True)

    def forward():
        model.eval()
        with torch.no_grad():
            model(x, mode='tensor')

    return train_step, forward


def main(argv=None):
    args = parse_args(argv)
    setup(args.threads)
    print_header(
        f'shrink_speedup: supernet vs subnet at ~{args.macs_fraction:.0%} '
        f'MACs, input {args.shape[0]}x{args.shape[1]}, batch {args.batch}'
        + (' (smoke: tiny model)' if args.smoke else ''), args.threads)

    supernet = build_seg_model(tiny=args.smoke)
    randomise_gammas(supernet)
    subnet = copy.deepcopy(supernet)
    before, after = shrink_to_macs(subnet, args.shape, args.macs_fraction)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, *args.shape, generator=g)
    h, w = args.shape[0] // 4, args.shape[1] // 4
    labels = torch.randint(0, 19, (args.batch, h, w), generator=g)
    super_train, super_fwd = make_steps(supernet, x, labels)
    sub_train, sub_fwd = make_steps(subnet, x, labels)
    times = interleaved(
        dict(super_train=super_train, sub_train=sub_train,
             super_fwd=super_fwd, sub_fwd=sub_fwd),
        repeats=args.repeats, warmup=args.warmup)

    macs_ratio = after['macs'] / before['macs']
    params_ratio = after['params'] / before['params']
    ratios = {}
    for kind in ('train', 'fwd'):
        sup, sub = times[f'super_{kind}'], times[f'sub_{kind}']
        ratios[kind] = (sub.med_wall / sup.med_wall,
                        sub.med_cpu / sup.med_cpu)
    print(f'{args.repeats} timed rounds after {args.warmup} warm-up; train '
          'step = forward + cross-entropy + backward (train mode), forward '
          '= eval mode under no_grad')
    rows = []
    for kind, label in (('train', 'train step'), ('fwd', 'forward')):
        for side, model_name in (('super', 'supernet'), ('sub', 'subnet')):
            rows.append([model_name, label] + times[f'{side}_{kind}'].cells())
    print_table(['model', 'pass'] + TIME_HEADERS, rows, left=2)
    print(f'MACs and params at {args.shape[0]}x{args.shape[1]}, one image, '
          'Conv2d/Linear only')
    print_table(
        ['model', 'MACs', 'params'],
        [['supernet', fmt_count(before['macs']), fmt_count(before['params'])],
         ['subnet', fmt_count(after['macs']), fmt_count(after['params'])],
         ['subnet/supernet', f'{macs_ratio:.3f}', f'{params_ratio:.3f}']])
    print(f'ratio subnet/supernet: macs {macs_ratio:.3f}, train_step '
          f'{ratios["train"][0]:.3f} (CPU {ratios["train"][1]:.3f}), '
          f'forward {ratios["fwd"][0]:.3f} (CPU {ratios["fwd"][1]:.3f})')

if __name__ == '__main__':
    main()
