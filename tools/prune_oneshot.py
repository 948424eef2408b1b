"""S+P baselines: prune a searched subnet once, evaluate, optionally retrain.

CONFIG is a search-only config (``SuperNetSearchHook``, no pruning) and
CKPT a checkpoint of it; the searched subnet is rebuilt from CKPT, which is
only read. For each scorer and ratio the subnet is pruned one-shot
(unstructured, global ranking unless ``--scope layer``), evaluated through
the stock runner, and with ``--retrain`` fine-tuned with the masks fixed
and evaluated again. Each run writes ``<work-dir>/<scorer>_<ratio>.json``
(scorer, ratio, achieved sparsity, metrics before/after retraining,
params/MACs of the dense subnet and the sparse ticket at the search's input
size) and keeps its logs, the one-shot ticket and the retrained checkpoints
in ``<work-dir>/<scorer>_<ratio>/``. See ``mmsupertickets/apis/oneshot.py``.

Examples::

    python tools/prune_oneshot.py configs/xxx_search.py \\
        work_dirs/xxx_search/iter_80000.pth --scorers magnitude snip \\
        --ratios 0.5 0.9 0.95 --work-dir work_dirs/sp
    python tools/prune_oneshot.py configs/xxx_search.py ckpt.pth \\
        --retrain --retrain-iters 8000 --work-dir work_dirs/sp_retrain
    torchrun --nproc-per-node 2 tools/prune_oneshot.py CONFIG CKPT \\
        --launcher pytorch --retrain
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process

import mmsupertickets  # noqa: F401  (registers modules before the build)
from mmsupertickets.apis.oneshot import run_sweep
from mmsupertickets.pruning import scorers, selection  # noqa: F401
from mmsupertickets.pruning.builder import (
    check_ratios,
    check_scope,
    check_scorers,
)
from mmsupertickets.pruning.prunable import DEFAULT_EXCLUDE
from mmsupertickets.registry import SCORERS, SELECTIONS
from mmsupertickets.utils.checkpoint_io import (
    CheckpointLoadError,
    local_checkpoint_path,
)
from mmsupertickets.utils.dist_launch import LAUNCHERS, setup_launcher

# The ratios of the paper's S+P curves.
PAPER_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.93, 0.95,
                0.98)


def add_retrain_args(parser: argparse.ArgumentParser) -> None:
    """The options of the fine-tuning after pruning."""
    parser.add_argument(
        '--retrain', action='store_true',
        help='also fine-tune each pruned subnet with its masks fixed and '
        'evaluate it again')
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        '--retrain-iters', type=int,
        help='fine-tune for this many iterations (implies --retrain); '
        'default: the config\'s train_cfg')
    length.add_argument(
        '--retrain-epochs', type=int,
        help='fine-tune for this many epochs (epoch-based configs; implies '
        '--retrain)')
    parser.add_argument(
        '--retrain-resume', action=argparse.BooleanOptionalAction,
        default=True,
        help='the fine-tuning resumes the search run at its checkpoint: '
        'optimizer state, LR schedule, iteration count and EMA (default, '
        'the reference\'s); --no-retrain-resume starts them fresh')


def check_args(parser: argparse.ArgumentParser, args) -> None:
    """Refuse bad values through ``parser.error`` (exit 2, naming the
    value); a retraining length implies ``--retrain``."""
    try:
        check_scorers(args.scorers)
        check_ratios(args.ratios)
        check_scope(args.scope)
    except ValueError as e:
        parser.error(str(e))
    for flag in ('retrain_iters', 'retrain_epochs', 'snip_batches'):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            parser.error(f'--{flag.replace("_", "-")}={value} must be '
                         'positive')
    if args.retrain_iters is not None or args.retrain_epochs is not None:
        args.retrain = True


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='One-shot prune a searched subnet (S+P baselines)')
    parser.add_argument('config', help='search-only config file')
    parser.add_argument('checkpoint', help='checkpoint of that config '
                        '(only read; a file or an http(s) URL)')
    parser.add_argument(
        '--scorers', nargs='+', default=['random', 'magnitude', 'snip'],
        help=f'pruning scores, any of {sorted(SCORERS.module_dict)} '
        '(registered scorers; default: random magnitude snip)')
    parser.add_argument(
        '--ratios', nargs='+', type=float, default=list(PAPER_RATIOS),
        help='fractions of the prunable weights to remove, each in [0, 1) '
        '(default: the paper\'s 0.1 ... 0.9 0.93 0.95 0.98)')
    parser.add_argument(
        '--scope', default='global',
        help='rank the scores over all layers together (global, the '
        'paper\'s) or within each layer (layer); any of '
        f'{sorted(SELECTIONS.module_dict)}')
    add_retrain_args(parser)
    parser.add_argument(
        '--work-dir',
        help='results folder; defaults to ./work_dirs/s_plus_p/<config '
        'name>')
    parser.add_argument(
        '--exclude', nargs='+', default=list(DEFAULT_EXCLUDE),
        help='regexes of weight names never pruned (default: the stock '
        'heads\' final classifiers)')
    parser.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'),
        help='input size at which params and MACs are counted (default: '
        'the search\'s profiling size stored in the checkpoint)')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the random scorer')
    parser.add_argument(
        '--snip-batches', type=int, default=100,
        help='training batches the SNIP gradient is averaged over '
        '(default: 100, the reference\'s; fewer if one pass has fewer)')
    parser.add_argument(
        '--snip-bn', choices=('eval', 'train'), default='eval',
        help='BN mode of the SNIP forwards: running statistics (eval, the '
        'reference\'s) or batch statistics (train)')
    parser.add_argument(
        '--iterative', action=argparse.BooleanOptionalAction, default=True,
        help='score each ratio on the network already masked at the ratio '
        'below, keeping what it removed (default, the reference\'s sweep); '
        '--no-iterative prunes the dense searched subnet at every ratio')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings with key=value pairs, e.g. '
        'val_dataloader.batch_size=1 or optim_wrapper.optimizer.lr=1e-4')
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    check_args(parser, args)
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        # An http(s) URL is downloaded as load_from downloads it.
        args.checkpoint = local_checkpoint_path(args.checkpoint)
    except CheckpointLoadError as err:
        sys.exit(f'prune_oneshot.py: error: {err}')
    if not osp.isfile(args.checkpoint):
        sys.exit(f'checkpoint file {args.checkpoint!r} does not exist')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    setup_launcher(cfg, args.launcher)
    work_dir = args.work_dir or osp.join(
        'work_dirs', 's_plus_p',
        osp.splitext(osp.basename(args.config))[0])
    results = run_sweep(
        cfg, args.checkpoint, args.scorers, args.ratios, work_dir,
        retrain=args.retrain, retrain_iters=args.retrain_iters,
        retrain_epochs=args.retrain_epochs,
        retrain_resume=args.retrain_resume, scope=args.scope,
        exclude=args.exclude, seed=args.seed, snip_batches=args.snip_batches,
        snip_bn=args.snip_bn, iterative=args.iterative,
        input_shape=args.shape)
    if is_main_process():
        # The runners log at the config's level; the summary always shows.
        for r in results:
            after = r['metrics']['retrained']
            print(f'S+P {r["scorer"]} {r["ratio"]:g}: sparsity '
                  f'{r["sparsity"]:.4f}, one-shot {r["metrics"]["oneshot"]}'
                  + (f', retrained {after}' if after else ''))
        print(f'results: {osp.abspath(work_dir)}/<scorer>_<ratio>.json')
    return results


if __name__ == '__main__':
    main()
