"""Plot accuracy against MACs for SuperTickets runs and S+P baselines.

Each WORK_DIR is either a SuperTickets training work dir (one point: the
final ticket's cost from ``supertickets_events.jsonl`` and the last
validation metric in the runner's logs) or a results folder of
``tools/prune_oneshot.py`` (one point per ``<scorer>_<ratio>.json``, with
and without retraining). Writes ``DIR/tradeoff.png`` (one line per method)
and ``DIR/tradeoff.md`` (method, sparsity, MACs, params, metric). See
``mmsupertickets/analysis/tradeoff.py``.

Examples::

    python tools/analysis/compare_tradeoff.py work_dirs/st_80 \\
        work_dirs/st_90 work_dirs/st_95 work_dirs/sp --out work_dirs/cmp
    python tools/analysis/compare_tradeoff.py work_dirs/st_coco \\
        work_dirs/sp_coco --out cmp --metric AP --macs global
"""
import argparse

from mmsupertickets.analysis.tradeoff import DEFAULT_METRICS, compare_tradeoff


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Accuracy vs MACs of SuperTickets and S+P baselines')
    parser.add_argument(
        'work_dirs', nargs='+', metavar='WORK_DIR',
        help='SuperTickets work dirs and/or prune_oneshot result dirs')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--metric',
        help=f'metric to plot, e.g. {" | ".join(DEFAULT_METRICS)} (a '
        'prefixed key such as coco/AP matches AP); default: the first of '
        'these found')
    parser.add_argument(
        '--macs', default='sparse', choices=['sparse', 'global'],
        help='x axis: sparse MACs exact per layer, or dense MACs x global '
        'density (the paper\'s figure)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    res = compare_tradeoff(args.work_dirs, args.out, metric=args.metric,
                           macs=args.macs)
    print(f'{len(res["points"])} points of {res["metric"]}: {res["png"]}, '
          f'{res["md"]}')
    return res


if __name__ == '__main__':
    main()
