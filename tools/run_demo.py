"""Draw a SuperTicket on a small synthetic dataset and report on it.

One command runs the whole pipeline on a CPU:

1. generates the task's synthetic dataset under ``data/demo`` if it is not
   there yet (``tools/dataset_converters/generate_data.py``);
2. trains the demo config with ``tools/train.py`` (the stock mmengine
   runner with the SuperTickets hooks; its log shows the progress);
3. evaluates the final checkpoint, the sparse ticket, with
   ``tools/test.py`` and exports it with ``tools/export_ticket.py``;
4. writes ``<work-dir>/report.md`` and PNG plots: the metric and MACs over
   training, sparsity (achieved vs target) and live channels per event, and
   the final architecture per stage and branch.

Usage::

    python tools/run_demo.py --task seg            # make demo
    python tools/run_demo.py --task pose --work-dir work_dirs/demo-pose
    python tools/run_demo.py --task seg --report-only   # re-plot a run
    python tools/run_demo.py --task seg --work-dir work_dirs/demo-macs50 \
        --config configs/supertickets/demo/\
supertickets-macs50_hrnas_1xb4-demo_cityscapes-128x256.py

The data go to ``data/demo`` (where the demo configs read them).

Layout of the work dir: ``train/`` (tools/train.py's work dir: log,
checkpoints, ``supertickets_events.jsonl``, ``<timestamp>/vis_data``),
``test/`` (tools/test.py's), ``ticket/`` (tools/export_ticket.py's),
``timings.json``, ``report.md`` and ``*.png``.

The work is done by :mod:`mmsupertickets.demo`: ``tasks`` (per-task
settings), ``run`` (the driver), ``run_files`` (reading a run's files),
``chance`` (chance levels), ``architecture`` (channels per stage),
``plots`` and ``report``.
"""
import argparse
import sys

from mmsupertickets.demo.run import run_demo
from mmsupertickets.demo.tasks import TASKS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a demo SuperTicket on synthetic data, evaluate '
        'it and write a report with plots.')
    parser.add_argument(
        '--task', choices=list(TASKS), default='seg', help='demo to run')
    parser.add_argument(
        '--work-dir',
        help='output folder; defaults to work_dirs/demo for seg and '
        'work_dirs/demo-<task> for the others')
    parser.add_argument(
        '--config',
        help='another config of the task, e.g. its MACs-budget demo '
        '(configs/supertickets/demo/supertickets-macs50_*.py); defaults to '
        'the task\'s demo config')
    parser.add_argument(
        '--report-only',
        action='store_true',
        help='skip data, training and testing; rewrite the report from '
        'the files of an earlier run in the work dir')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='passed to tools/train.py and tools/test.py')
    args = parser.parse_args(argv)
    if args.work_dir is None:
        args.work_dir = 'work_dirs/demo' if args.task == 'seg' else \
            f'work_dirs/demo-{args.task}'
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    run_demo(args.task, args.work_dir, report_only=args.report_only,
             cfg_options=args.cfg_options, config=args.config)
    return 0


if __name__ == '__main__':
    sys.exit(main())
