"""Train a model from an mmseg, mmpose or mmpretrain config.

The config's ``default_scope`` decides which codebase's registries build
it; ``mmsupertickets`` is imported first so that its modules are
registered. Distributed runs also work on machines without a GPU (a gloo
process group and the ``DeviceAgnosticDDP`` wrapper are used there).

Examples::

    python tools/train.py configs/xxx.py --work-dir work_dirs/xxx
    python tools/train.py configs/xxx.py --resume  # newest complete one
    python tools/train.py configs/xxx.py --resume work_dirs/xxx/iter_4000.pth
    bash tools/dist_train.sh configs/xxx.py 2
"""
import argparse
import logging
import os
import os.path as osp
from contextlib import nullcontext

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmsupertickets  # noqa: F401  (registers modules before the build)
from mmsupertickets.utils.atomic_write import remove_stale_temp_files
from mmsupertickets.utils.checkpoint_io import safe_checkpoint_loading
from mmsupertickets.utils.dist_launch import LAUNCHERS, setup_launcher
from mmsupertickets.utils.file_lock import FolderLock, FolderLockedError
from mmsupertickets.utils.preflight import check_datasets
from mmsupertickets.utils.resume import (
    ResumeRefusedError,
    find_resumable_checkpoint,
)


def parse_args():
    parser = argparse.ArgumentParser(
        description='Train a model with mmsupertickets modules')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--work-dir',
        help='folder for logs and checkpoints; defaults to the config\'s '
        'work_dir, else ./work_dirs/<config name>')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume training: alone, from the newest complete checkpoint '
        'in the work dir; with a path, from that checkpoint')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic mixed precision (needs a GPU)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings with key=value pairs, e.g. '
        'train_cfg.max_iters=100 or key="[a,b]" for a list (no spaces)')
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or
    # --local_rank (older); torchrun sets LOCAL_RANK instead.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def enable_amp(cfg: Config) -> None:
    """Switch the config's optimizer wrapper to ``AmpOptimWrapper``."""
    wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper_type == 'AmpOptimWrapper':
        print_log(
            'AMP is already enabled in the config.',
            logger='current',
            level=logging.WARNING)
        return
    if wrapper_type != 'OptimWrapper':
        raise ValueError('--amp works only with optim_wrapper type '
                         '"OptimWrapper", but the config has '
                         f'{wrapper_type!r}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def is_main_launch(launcher: str) -> bool:
    """Whether this process is rank 0 (before the process group exists).

    Slurm names the rank in ``SLURM_PROCID``; mmengine copies it into
    ``RANK`` only when it initialises the process group.
    """
    key = 'SLURM_PROCID' if launcher == 'slurm' else 'RANK'
    return os.environ.get(key, '0') == '0'


def main():
    args = parse_args()

    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # Precedence: command line > config > ./work_dirs/<config name>.
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        enable_amp(cfg)

    # One training run per work dir, from before the resume choice to the
    # end (the SuperTickets hooks take the same lock, for the stock
    # tools/train.py of mmseg, mmpose and mmpretrain).
    try:
        with (FolderLock(cfg.work_dir, 'work dir')
              if is_main_launch(args.launcher) else nullcontext()):
            train(cfg, args)
    except FolderLockedError as err:
        raise SystemExit(f'error: {err}')


def train(cfg: Config, args) -> None:
    """Resume choice, runner build and training of ``cfg``."""
    if args.resume == 'auto':
        # Not blindly last_checkpoint: it may name a file a crash truncated
        # or the hook deleted, and other runs may have left files here.
        try:
            resume_from = find_resumable_checkpoint(cfg.work_dir, cfg)
        except ResumeRefusedError as err:
            # Never restart from scratch over damaged checkpoints, nor
            # continue another run's.
            raise SystemExit(f'error: {err}')
        if resume_from is not None:
            cfg.resume = True
            cfg.load_from = resume_from
        else:
            # A fresh start, from the config's load_from if it has one.
            print_log(
                f'--resume: no checkpoint in {cfg.work_dir}; training from '
                'the start.',
                logger='current',
                level=logging.WARNING)
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.resume is not None and is_main_launch(args.launcher):
        # Temporary files of writes the interrupted run did not finish.
        remove_stale_temp_files(cfg.work_dir)

    setup_launcher(cfg, args.launcher)
    check_datasets(cfg, ('train_dataloader', 'val_dataloader'))

    if 'runner_type' in cfg:
        # Look the runner type up in the config's own scope.
        with RUNNERS.switch_scope_and_registry(
                cfg.get('default_scope')) as runners:
            runner = runners.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    # mmengine 0.10.7 loads with torch's weights_only default, which its
    # own checkpoints fail; the project's allow-list covers them.
    with safe_checkpoint_loading():
        runner.train()


if __name__ == '__main__':
    main()
