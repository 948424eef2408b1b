"""Does a latency budget buy speed without costing accuracy? Trained tickets.

On the seg demo (its MACs-budget config, generated Cityscapes-format data),
per seed, two searches through the stock runner (``tools/train.py``):

- ``latency``: ``SuperNetSearchHook(cost='latency', latency_table=T,
  target_latency=--target)`` with ``T`` measured here (``--runtime``, one
  thread, the search's own profiling input ``input_shape``);
- ``macs``: ``target_macs`` = the latency ticket's final MACs (equal MACs,
  the MACs cost).

Each ticket is exported (``tools/export_ticket.py``), loaded back through
``mmseg.apis.init_model`` and timed at the profiling input, both tickets of
every seed round by round in one run. Printed per seed and as the mean: the
demo metric of the last validation, MACs, predicted and measured ms of both
tickets, and their measured latency ratio. Each finished search is stored
in ``OUT/runs/`` (a rerun skips it); the table in ``OUT/table.json``.

Example::

    OMP_NUM_THREADS=1 .venv/bin/python tools/benchmarks/latency_ticket.py \\
        --seeds 0 1 2
"""
import argparse
import json
import os
import os.path as osp
import statistics
import shutil
import subprocess
import sys
import tempfile

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = ('configs/supertickets/demo/'
          'supertickets-macs50_hrnas_1xb4-demo_cityscapes-128x256.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Latency- vs MACs-budget tickets, trained and timed')
    parser.add_argument('--out', default=osp.join(REPO, 'work_dirs',
                                                  'latency_ticket'),
                        help='runs, table and work dirs')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--target', type=float, default=0.7,
                        help='target_latency: a fraction (<= 1) of the '
                        "supernet's predicted latency, or ms")
    parser.add_argument('--runtime', choices=('pytorch', 'onnxruntime'),
                        default='pytorch')
    parser.add_argument('--table-rounds', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=20,
                        help='timed rounds of the tickets')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall')
    parser.add_argument('--smoke', action='store_true',
                        help='8 iterations, one seed, one round, in a '
                        'temporary folder: checks the script runs')
    args = parser.parse_args(argv)
    args.iters = None
    if args.smoke:
        args.out = tempfile.mkdtemp(prefix='latency_ticket_')
        args.seeds, args.iters = [0], 8
        args.table_rounds, args.repeats, args.warmup = 1, 1, 0
    return args


def search_hook(cfg):
    return next(h for h in cfg.custom_hooks
                if h['type'].split('.')[-1] == 'SuperNetSearchHook')


def measure(args, cfg, path):
    """The latency table of the config's supernet at its profiling input
    (measured once; a rerun reads it)."""
    from mmengine.registry import MODELS, init_default_scope

    from mmsupertickets.latency import LatencyTable
    from mmsupertickets.latency.build import measure_table
    if osp.isfile(path):
        return LatencyTable.load(path)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    table = measure_table(
        MODELS.build(cfg.model), search_hook(cfg)['input_shape'],
        runtime=args.runtime, threads=1, rounds=args.table_rounds,
        warmup=args.warmup, config=CONFIG, clock=args.clock,
        log=lambda line: print(f'# {line}'))
    table.save(path)
    return table


def arm_config(args, cfg, arm, seed, table_path, macs):
    """The config of one search, written into its work dir."""
    import copy
    cfg = copy.deepcopy(cfg)
    hook = search_hook(cfg)
    if arm == 'latency':
        hook.update(target_macs=None, cost='latency',
                    latency_table=table_path, target_latency=args.target)
    else:
        hook.update(target_macs=macs)
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = osp.join(args.out, 'work', f'{arm}_s{seed}')
    if args.iters:
        from mmsupertickets.analysis.sweep_configs import shorten_schedule
        shorten_schedule(cfg, args.iters)
    os.makedirs(cfg.work_dir, exist_ok=True)
    path = osp.join(cfg.work_dir, 'config.py')
    cfg.dump(path)
    return path, cfg.work_dir


def run(cmd):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep +
               os.environ.get('PYTHONPATH', ''))
    subprocess.run([sys.executable, *cmd], cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def search(args, cfg, arm, seed, table_path, macs=None):
    """One search, trained, exported and recorded (or its stored record)."""
    from mmsupertickets.demo.run_files import (
        last_checkpoint,
        read_jsonl,
        read_scalars,
        val_series,
    )
    record = osp.join(args.out, 'runs', f'{arm}_s{seed}.json')
    if osp.isfile(record):
        with open(record) as f:
            return json.load(f)
    config, work_dir = arm_config(args, cfg, arm, seed, table_path, macs)
    print(f'# training {arm} seed {seed} in {work_dir}', flush=True)
    run(['tools/train.py', config, '--work-dir', work_dir])
    ticket = osp.join(work_dir, 'ticket')
    run(['tools/export_ticket.py', config, last_checkpoint(work_dir),
         '--out', ticket, '--force'])
    events = read_jsonl(osp.join(work_dir, 'supertickets_events.jsonl'))
    final = [e for e in events if e['event'].endswith('shrink')][-1]
    metric = val_series(read_scalars(work_dir), 'mIoU')[-1][1]
    out = dict(arm=arm, seed=seed, mIoU=metric, macs=final['macs'],
               latency=final.get('latency'), ticket=ticket)
    os.makedirs(osp.dirname(record), exist_ok=True)
    with open(record, 'w') as f:
        json.dump(out, f, indent=1)
    return out


def time_tickets(args, records, table):
    """Measured (median) and predicted ms of every ticket, in one run."""
    import torch
    from mmseg.apis import init_model

    from mmsupertickets.flops import ModelForward
    from mmsupertickets.latency import predict_latency
    from mmsupertickets.latency.timing import (
        make_runner,
        summarize,
        time_round_robin,
    )
    h, w = table.shape
    image = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    fns, predicted = {}, {}
    for key, rec in records.items():
        model = init_model(osp.join(rec['ticket'], 'config.py'),
                           osp.join(rec['ticket'], 'ticket.pth'),
                           device='cpu').eval()
        predicted[key] = predict_latency(model, table, None)
        forward = ModelForward(model)
        with torch.no_grad():
            forward.choose_route(image)
        fns[key] = make_runner(args.runtime, forward, image, 1)
    times = time_round_robin(fns, args.repeats, args.warmup, args.clock)
    return {k: summarize(v)['median'] for k, v in times.items()}, predicted


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config

    from mmsupertickets.demo.run import generate_data
    from mmsupertickets.demo.tasks import DATA_ROOT, TASKS
    from mmsupertickets.testing.benchmarks import print_header, setup
    setup(1)
    generate_data(TASKS['seg'], DATA_ROOT)
    args.out = osp.abspath(args.out)
    cfg = Config.fromfile(osp.join(REPO, CONFIG))
    table_path = osp.join(args.out, 'table.json')
    os.makedirs(args.out, exist_ok=True)
    table = measure(args, cfg, table_path)
    print_header(f'latency_ticket: seg demo searched under a latency budget '
                 f'({args.target}) and under a MACs budget of equal MACs, '
                 f'{args.runtime}, input {table.shape[0]}x{table.shape[1]}',
                 1)
    records = {}
    for seed in args.seeds:
        lat = search(args, cfg, 'latency', seed, table_path)
        records[('latency', seed)] = lat
        records[('macs', seed)] = search(args, cfg, 'macs', seed, table_path,
                                         macs=lat['macs'])
    measured, predicted = time_tickets(args, records, table)
    rows, ratios = [], []
    from mmsupertickets.testing.benchmarks import print_table
    for seed in args.seeds:
        lat, mac = records[('latency', seed)], records[('macs', seed)]
        ratio = measured[('latency', seed)] / measured[('macs', seed)]
        ratios.append(ratio)
        for arm, rec in (('latency', lat), ('macs', mac)):
            rows.append([seed, arm, f'{rec["mIoU"]:.2f}',
                         f'{rec["macs"] / 1e6:.2f} M',
                         f'{predicted[(arm, seed)]:.2f}',
                         f'{measured[(arm, seed)]:.2f}'])
    print(f'table: supernet {table.data["supernet_ms"]:.2f} ms; tickets '
          f'{args.repeats} rounds after {args.warmup} warm-up, {args.clock} '
          'clock')
    print_table(['seed', 'budget', 'mIoU', 'MACs', 'predicted ms',
                 'measured ms'], rows)
    mean = {arm: statistics.mean(records[(arm, s)]['mIoU']
                                 for s in args.seeds)
            for arm in ('latency', 'macs')}
    print(f'ratio {args.runtime}: latency/MACs-budget ticket measured '
          f'{statistics.mean(ratios):.3f} (per seed '
          f'{", ".join(f"{r:.3f}" for r in ratios)}); mean mIoU latency '
          f'{mean["latency"]:.2f} vs MACs {mean["macs"]:.2f}')
    if args.smoke:
        shutil.rmtree(args.out)


if __name__ == '__main__':
    main()
