"""SuperTickets against S+P over pruning ratios, seeds and retraining,
compared at matched MACs (the paper's Figures 2-5, measured).

From CONFIG (any config with SuperNetSearchHook and ProgressivePruningHook;
``--task`` picks a bundled demo config and generates its data when CONFIG
is omitted), for every seed: SuperTickets at each ratio (as trained and,
with ``--retrain N``, after N more iterations with masks and architecture
fixed); one full-length search-only run, then random / magnitude / SNIP
one-shot pruning to each ratio, evaluated as pruned and after N iterations
of retraining. BN statistics are re-estimated before every evaluation of
every arm. Each result is stored by (method, ratio, seed, retrain) in
``OUT/runs/*.json``; a rerun resumes. Writes ``OUT/claims.md``,
``OUT/claims.json`` and ``OUT/claims_<task>_{sparse,global}.png``. See
``mmsupertickets/analysis``.

Examples::

    python tools/analysis/claims.py --task seg --ratios 0.5 0.9 \\
        --seeds 0 1 2 --retrain 100 --jobs 2 --out work_dirs/claims_seg
    python tools/analysis/claims.py my_supertickets_cfg.py --ratios 0.5 0.9 \\
        --seeds 0 --retrain 1000 --out work_dirs/claims_mine
    python tools/analysis/claims.py --task seg --out DIR --report-only
    python tools/analysis/claims.py --task seg --out DIR --launcher slurm
"""
import argparse
import os
import os.path as osp

from mmsupertickets.analysis import run_sweep, write_report
from mmsupertickets.analysis.sweep import slurm_script
from mmsupertickets.demo.tasks import DATA_ROOT, REPO, TASKS

PAPER_RATIOS = (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='SuperTickets vs S+P curves compared at matched MACs')
    parser.add_argument('config', nargs='?',
                        help='a SuperTickets config (default: the --task '
                        'demo config)')
    parser.add_argument('--task', choices=sorted(TASKS),
                        help='panels of the figure; picks the demo config '
                        'when CONFIG is omitted')
    parser.add_argument('--ratios', type=float, nargs='+',
                        default=list(PAPER_RATIOS))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--retrain', type=int, default=0, metavar='N',
                        help='iterations of retraining with masks fixed for '
                        'the w/ RT arms (0: none)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='worker processes running runs at a time')
    parser.add_argument('--out', required=True, help='results folder')
    parser.add_argument('--macs', choices=['sparse', 'global'],
                        default='sparse', help='MACs of the matched-cost '
                        'table and verdict (both figures are written)')
    parser.add_argument('--launcher', choices=['none', 'slurm'],
                        default='none', help='slurm: write '
                        'OUT/sweep_slurm.sh (a job array over the seeds) '
                        'instead of running')
    parser.add_argument('--report-only', action='store_true',
                        help='redraw the report from OUT/runs alone')
    parser.add_argument('--work-dir', help='checkpoints and logs '
                        '(default: OUT/work, git-ignored)')
    parser.add_argument('--snip-batches', type=int, default=100,
                        help='batches the SNIP gradient averages over')
    parser.add_argument('--max-runs', type=int,
                        help='stop after this many runs (rerun to go on)')
    parser.add_argument('--quick', action='store_true',
                        help='tiny generated data, 4 iterations: checks the '
                        'pipeline; the numbers mean nothing')
    args = parser.parse_args(argv)
    if args.config is None and args.task is None:
        parser.error('give CONFIG or --task')
    if args.retrain < 0 or args.jobs < 1:
        parser.error(f'--retrain={args.retrain} must be >= 0 and '
                     f'--jobs={args.jobs} >= 1')
    if len(set(args.seeds)) != len(args.seeds) or \
            len(set(args.ratios)) != len(args.ratios):
        parser.error('--seeds and --ratios must not repeat a value')
    if not all(0 < r < 1 for r in args.ratios):
        parser.error(f'--ratios {args.ratios} must lie in (0, 1)')
    return args


def _command(args, seeds=True) -> list:
    cmd = ['python', 'tools/analysis/claims.py']
    if args.config:
        cmd.append(args.config)
    if args.task:
        cmd += ['--task', args.task]
    cmd += ['--ratios', *map(str, args.ratios)]
    if seeds:
        cmd += ['--seeds', *map(str, args.seeds)]
    cmd += ['--retrain', str(args.retrain), '--out', args.out]
    if args.macs != 'sparse':
        cmd += ['--macs', args.macs]
    if args.snip_batches != 100:
        cmd += ['--snip-batches', str(args.snip_batches)]
    if args.quick:
        cmd.append('--quick')
    return cmd


def _data(args):
    """The config and the data prefix to redirect (demo data)."""
    if args.config:
        return args.config, None
    task = TASKS[args.task]
    config = osp.join(REPO, task['config'])
    if args.quick:
        from mmsupertickets.testing import (
            generate_ade20k,
            generate_cityscapes,
            generate_coco_keypoints,
            generate_imagenet,
        )
        gen = dict(cityscapes=generate_cityscapes, ade20k=generate_ade20k,
                   coco=generate_coco_keypoints,
                   imagenet=generate_imagenet)[task['dataset']]
        root = osp.join(osp.abspath(args.out), 'work', 'data')
        if not osp.isdir(osp.join(root, task['folder'])):
            gen(osp.join(root, task['folder']), num_train=8, num_val=2,
                image_size=(64, 128), seed=0)
        return config, (DATA_ROOT + '/', root + '/')
    from mmsupertickets.demo.run import generate_data
    generate_data(task, DATA_ROOT)
    return config, (DATA_ROOT + '/', osp.join(REPO, DATA_ROOT) + '/')


def protocol_note(args) -> str:
    from mmengine.config import Config
    config, _ = _data(args) if not args.report_only else (
        args.config or osp.join(REPO, TASKS[args.task]['config']), None)
    train_cfg = Config.fromfile(config).train_cfg
    length = (f'{train_cfg.max_iters} iterations' if 'max_iters' in
              train_cfg else f'{train_cfg.max_epochs} epochs')
    if args.quick:
        length = '4 iterations (--quick)'
    return (f'Config `{osp.relpath(config, REPO)}`; every SuperTickets and '
            f'search-only run trains the config\'s schedule ({length}); '
            f'retraining (w/ RT) adds {args.retrain} iterations with masks '
            'and architecture fixed, resuming optimizer, LR schedule and '
            'EMA; S+P prunes the search-only checkpoint one-shot '
            f'(global ranking; SNIP over {args.snip_batches} batches); BN '
            'statistics are re-estimated on training samples before every '
            'evaluation of every arm.')


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.launcher == 'slurm':
        path = osp.join(args.out, 'sweep_slurm.sh')
        with open(path, 'w') as f:
            f.write(slurm_script(_command(args, seeds=False), args.seeds,
                                 args.out))
        print(f'[claims] wrote {path}; submit it with SLURM_PARTITION=... '
              f'bash {path}')
        return None
    metric = None
    if args.task:
        metric = TASKS[args.task]['metric']
    if not args.report_only:
        config, data_root = _data(args)
        run_sweep(config, args.out, args.ratios, args.seeds, args.retrain,
                  jobs=args.jobs, work_dir=args.work_dir,
                  snip_batches=args.snip_batches, quick=args.quick,
                  data_root=data_root, max_runs=args.max_runs,
                  metric=metric)
    data = write_report(args.out, args.task, args.macs,
                        command=' '.join(_command(args)),
                        protocol=protocol_note(args), seeds=args.seeds)
    print(f'[claims] {data["verdict"]}')
    print(f'[claims] report: {osp.join(args.out, "claims.md")}')
    return data


if __name__ == '__main__':
    main()
