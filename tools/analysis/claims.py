"""The paper's claims on a demo task, measured over seeds.

For every seed it runs, through the project's own tools:

- SuperTickets with each reactivation scope: ``all`` (the reference's: every
  kernel-path conv of every surviving block back to dense at a shrink),
  ``rebuilt`` (only the tensors a shrink sliced) and ``none``;
- search-then-prune (S+P): a search-only run, then one-shot pruning to the
  same target with random, magnitude and SNIP scores, each evaluated
  without and with retraining under fixed masks.

Every method gets the same number of training iterations N (the demo
config's length): SuperTickets trains N; S+P searches for
``round(sp_split * N)`` and retrains for the rest, resuming the search
run's optimizer state and LR schedule (``prune_oneshot.py``'s default, the
reference's; S+P without retraining has trained only the search part). The metric is the last validation of
each run. Writes ``OUT/claims.md`` (mean ± std over seeds of the metric,
sparse MACs and params, per method), ``OUT/claims.png`` and
``OUT/claims.json`` (every run).

Examples::

    python tools/analysis/claims.py --seeds 0 1 2 --out work_dirs/claims
    python tools/analysis/claims.py --quick --out /tmp/claims   # minutes
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from mmengine.config import Config

from mmsupertickets.testing import events_every_epoch, redirect_paths

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
if HERE not in sys.path:
    sys.path.append(HERE)

from tradeoff import read_sp_dir, read_supertickets_dir  # noqa: E402

DEMO = osp.join(ROOT, 'configs', 'supertickets', 'demo',
                'supertickets_hrnas_1xb4-demo_cityscapes-128x256.py')
SEARCH_ONLY = osp.join(ROOT, 'configs', 'supertickets', 'demo_baselines',
                       'supertickets-searchonly_hrnas_1xb4-demo_'
                       'cityscapes-128x256.py')
REACTIVATION = {'all': 'all', 'rebuilt': 'rebuilt', 'none': None}
SCORERS = ('random', 'magnitude', 'snip')
# Scheduler fields counted in iterations, scaled with the run's length.
ITER_FIELDS = ('begin', 'end', 'T_max', 'total_steps')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='SuperTickets vs S+P on a demo task, over seeds')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--config', default=DEMO,
                        help='SuperTickets config (default: the seg demo)')
    parser.add_argument('--search-config', default=SEARCH_ONLY,
                        help='its search-only variant (S+P)')
    parser.add_argument('--data-root', help='replace the configs\' '
                        'data/demo/ prefix (generated data elsewhere)')
    parser.add_argument(
        '--sp-split', type=float, default=0.75,
        help='fraction of the N iterations S+P spends searching; the rest '
        'retrains (default 0.75)')
    parser.add_argument('--jobs', type=int, default=2,
                        help='runs at a time (one thread each)')
    parser.add_argument(
        '--quick', action='store_true',
        help='a few iterations on tiny generated data: checks the pipeline '
        'in minutes; the numbers mean nothing')
    args = parser.parse_args(argv)
    if not 0 < args.sp_split < 1:
        parser.error(f'--sp-split={args.sp_split} must be in (0, 1)')
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds {args.seeds} repeats a seed')
    if args.jobs < 1:
        parser.error(f'--jobs={args.jobs} must be >= 1')
    return args


def run_config(path, work_dir, seed, iters=None, reactivation='keep',
               data_root=None, quick=False):
    """The config of one run: seed, length, reactivation scope, data."""
    cfg = Config.fromfile(path)
    full = cfg.train_cfg.max_iters
    iters = iters or full
    if data_root:
        cfg = Config(redirect_paths(cfg.to_dict(), 'data/demo/',
                               data_root.rstrip('/') + '/'))
    if quick:
        # Tiny data: a few iterations per epoch; events every epoch.
        iters = max(2, round(8 * iters / full))
        cfg.train_dataloader.batch_size = 2
        cfg.train_cfg.val_interval = iters
        events_every_epoch(cfg.custom_hooks)
    scale = iters / full
    for sched in cfg.get('param_scheduler', []):
        for key in ITER_FIELDS:
            if key in sched:
                sched[key] = round(sched[key] * scale)
        if 'T_max' in sched:
            sched['T_max'] = max(1, sched['T_max'])
        if 'end' in sched:
            sched['end'] = max(sched['end'], sched.get('begin', 0) + 1)
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = min(cfg.train_cfg.val_interval, iters)
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    if reactivation != 'keep':
        cfg.custom_hooks = [
            dict(h, reactivation=reactivation)
            if h['type'] == 'ProgressivePruningHook' else h
            for h in cfg.custom_hooks
            if h['type'] != 'IterativeReactivationHook'
        ]
    os.makedirs(work_dir, exist_ok=True)
    out = osp.join(work_dir, 'config.py')
    cfg.dump(out)
    return out, iters


def _run(cmd, log):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    with open(log, 'w') as f:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=f,
                              stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed; see {log}')


def _last_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def supertickets_job(args, seed, name):
    """Prepare (here, in the calling thread) one SuperTickets run; the
    returned callable trains it and reads its point."""
    work_dir = osp.join(args.out, 'runs', f'st-{name}-seed{seed}')
    cfg, iters = run_config(args.config, work_dir, seed,
                            reactivation=REACTIVATION[name],
                            data_root=args.data_root, quick=args.quick)

    def run():
        _run([sys.executable, osp.join(ROOT, 'tools', 'train.py'), cfg],
             osp.join(work_dir, 'run.log'))
        point = read_supertickets_dir(work_dir, 'mIoU')
        if point is None:
            raise RuntimeError(f'{work_dir}: no final ticket or validation')
        return [dict(point, method=f'SuperTickets (reactivation: {name})',
                     seed=seed, iters=iters)]

    return run


def sp_job(args, seed):
    """Prepare one S+P pipeline: search, then prune_oneshot with every
    scorer at the SuperTickets target, without and with retraining."""
    work_dir = osp.join(args.out, 'runs', f'search-seed{seed}')
    full = Config.fromfile(args.search_config).train_cfg.max_iters
    cfg, iters = run_config(args.search_config, work_dir, seed,
                            iters=round(args.sp_split * full),
                            data_root=args.data_root, quick=args.quick)
    total = round(iters / args.sp_split)
    target = next(h['target_sparsity'] for h in Config.fromfile(
        args.config).custom_hooks if h['type'] == 'ProgressivePruningHook')
    sp_dir = osp.join(args.out, 'runs', f'sp-seed{seed}')

    def run():
        _run([sys.executable, osp.join(ROOT, 'tools', 'train.py'), cfg],
             osp.join(work_dir, 'run.log'))
        _run([sys.executable, osp.join(ROOT, 'tools', 'prune_oneshot.py'),
              cfg, _last_checkpoint(work_dir), '--scorers', *SCORERS,
              '--ratios', str(target), '--retrain-iters', str(total - iters),
              '--work-dir', sp_dir] +
             (['--snip-batches', '2'] if args.quick else []),
             sp_dir + '.log')
        points = []
        for p in read_sp_dir(sp_dir, 'mIoU'):
            retrained = p['method'].endswith('+ retrain')
            points.append(dict(p, seed=seed,
                               iters=total if retrained else iters))
        return points

    return run


def summarize(points):
    """Mean ± std over seeds per method, in the order methods appear."""
    rows = {}
    for p in points:
        rows.setdefault(p['method'], []).append(p)
    table = []
    for method, group in rows.items():
        row = dict(method=method, seeds=len(group),
                   iters=sorted({p['iters'] for p in group}))
        for key in ('metric', 'macs', 'params', 'sparsity'):
            values = [float(p[key]) for p in group]
            row[key] = statistics.mean(values)
            row[key + '_std'] = (statistics.stdev(values)
                                 if len(values) > 1 else 0.0)
        table.append(row)
    return table


def write_table(table, path, note):
    lines = [note, '',
             '| method | seeds | train iters | mIoU | sparse MMACs | '
             'sparse params (K) | sparsity |',
             '|---|---|---|---|---|---|---|']
    for r in table:
        lines.append(
            f'| {r["method"]} | {r["seeds"]} | '
            f'{"/".join(map(str, r["iters"]))} | '
            f'{r["metric"]:.2f} ± {r["metric_std"]:.2f} | '
            f'{r["macs"] / 1e6:.1f} ± {r["macs_std"] / 1e6:.1f} | '
            f'{r["params"] / 1e3:.1f} ± {r["params_std"] / 1e3:.1f} | '
            f'{r["sparsity"]:.4f} |')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def plot(table, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in table:
        ax.errorbar(r['macs'] / 1e6, r['metric'], xerr=r['macs_std'] / 1e6,
                    yerr=r['metric_std'], fmt='o', capsize=3,
                    label=r['method'])
    ax.set_xlabel('sparse MMACs (exact per layer)')
    ax.set_ylabel('mIoU (last validation)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    args.out = osp.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)
    if args.quick and not args.data_root:
        from mmsupertickets.testing import generate_cityscapes
        args.data_root = osp.join(args.out, 'data')
        generate_cityscapes(osp.join(args.data_root, 'cityscapes'),
                            num_train=8, num_val=2, image_size=(64, 128),
                            seed=0)
    start = time.time()
    # Configs are written here; the pool only runs the tools.
    jobs = [supertickets_job(args, s, n) for s in args.seeds
            for n in REACTIVATION] + [sp_job(args, s) for s in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        points = [p for f in [pool.submit(j) for j in jobs]
                  for p in f.result()]
    minutes = (time.time() - start) / 60
    table = summarize(points)
    note = (f'{len(args.seeds)} seeds ({", ".join(map(str, args.seeds))}) '
            f'of `{osp.relpath(args.config, ROOT)}`'
            + (' in --quick mode (tiny data, meaningless numbers)'
               if args.quick else '') +
            f'; S+P searches {args.sp_split:.0%} of the iterations and '
            'retrains the rest, resuming the search run (its optimizer '
            'state and LR schedule go on); '
            f'{minutes:.0f} min with {args.jobs} jobs. '
            'Regenerate: `python tools/analysis/claims.py --seeds '
            f'{" ".join(map(str, args.seeds))} --out DIR`.')
    write_table(table, osp.join(args.out, 'claims.md'), note)
    plot(table, osp.join(args.out, 'claims.png'))
    with open(osp.join(args.out, 'claims.json'), 'w') as f:
        json.dump(dict(note=note, table=table, runs=points), f, indent=1)
    print(open(osp.join(args.out, 'claims.md')).read())
    return table


if __name__ == '__main__':
    main()
