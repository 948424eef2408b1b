"""Test a checkpoint with an mmseg, mmpose or mmpretrain config.

The config's ``default_scope`` decides which codebase's registries build
it; ``mmsupertickets`` is imported first so that its modules are
registered. Distributed runs also work on machines without a GPU.

Examples::

    python tools/test.py configs/xxx.py work_dirs/xxx/iter_4000.pth
    python tools/test.py configs/xxx.py ckpt.pth --out preds.pkl --show-dir vis
    bash tools/dist_test.sh configs/xxx.py ckpt.pth 2
"""
import argparse
import inspect
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.evaluator import DumpResults
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS, RUNNERS
from mmengine.runner import Runner

import mmsupertickets  # noqa: F401  (registers modules before the build)
from mmsupertickets.structures.value_checks import first_non_finite
from mmsupertickets.utils.checkpoint_io import safe_checkpoint_loading
from mmsupertickets.utils.dist_launch import LAUNCHERS, setup_launcher
from mmsupertickets.utils.preflight import check_datasets


def parse_args():
    parser = argparse.ArgumentParser(
        description='Test a checkpoint with mmsupertickets modules')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='folder for the test logs; defaults to the config\'s '
        'work_dir, else ./work_dirs/<config name>')
    parser.add_argument(
        '--out',
        help='dump the raw predictions to this pickle file (.pkl/.pickle) '
        'besides computing the metrics')
    parser.add_argument(
        '--show-dir',
        help='save painted predictions into this folder (needs a '
        'visualization hook in default_hooks)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings with key=value pairs, e.g. '
        'test_dataloader.batch_size=1 or key="[a,b]" for a list (no spaces)')
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or
    # --local_rank (older); torchrun sets LOCAL_RANK instead.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'--out must end with .pkl or .pickle, got {args.out!r}')
    return args


def enable_visualization(cfg: Config, show_dir: str) -> None:
    """Make the config's visualization hook paint into ``show_dir``.

    The three codebases' hooks differ: mmseg's has ``draw`` and paints
    through the visualizer's backends (saved under ``visualizer.save_dir``);
    mmpose's and mmpretrain's have ``enable`` and ``out_dir``. The hook's
    own signature tells which applies.
    """
    hook_cfg = cfg.get('default_hooks', {}).get('visualization')
    if hook_cfg is None:
        raise ValueError(
            '--show-dir needs default_hooks.visualization (e.g. '
            "dict(type='SegVisualizationHook')), but the config has none")
    hook_type = hook_cfg['type']
    if isinstance(hook_type, str):
        with HOOKS.switch_scope_and_registry(
                cfg.get('default_scope')) as hooks:
            hook_cls = hooks.get(hook_type)
        if hook_cls is None:
            raise KeyError(f'visualization hook {hook_type!r} is not '
                           'registered in the config\'s scope')
    else:
        hook_cls = hook_type
    params = inspect.signature(hook_cls).parameters
    show_dir = osp.abspath(show_dir)
    for switch in ('draw', 'enable'):
        if switch in params:
            hook_cfg[switch] = True
    if 'out_dir' in params:
        hook_cfg['out_dir'] = show_dir
    elif cfg.get('visualizer') is not None:
        cfg.visualizer['save_dir'] = show_dir
    else:
        raise ValueError(f'--show-dir: {hook_cls.__name__} paints through '
                         'the visualizer, but the config has no visualizer')


class RefuseNonFiniteWeights(Hook):
    """Stop before testing a model whose loaded weights or buffers hold NaN
    or inf: its metrics would be printed as if they were a result."""

    priority = 'VERY_LOW'  # after every hook that changes the model

    def __init__(self, checkpoint: str):
        self.checkpoint = checkpoint

    def before_test(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        bad = first_non_finite(model.state_dict())
        if bad is not None:
            raise ValueError(
                f'checkpoint {self.checkpoint!r}: tensor {bad!r} holds NaN or '
                'inf values after loading; a diverged model is not tested')


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

    if '://' not in args.checkpoint and not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint file {args.checkpoint!r} does not exist')
    cfg.load_from = args.checkpoint

    if args.show_dir is not None:
        enable_visualization(cfg, args.show_dir)

    setup_launcher(cfg, args.launcher)
    check_datasets(cfg, ('test_dataloader', ))

    if 'runner_type' in cfg:
        # Look the runner type up in the config's own scope.
        with RUNNERS.switch_scope_and_registry(
                cfg.get('default_scope')) as runners:
            runner = runners.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)

    runner.register_hook(RefuseNonFiniteWeights(args.checkpoint))
    if args.out is not None:
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))
    # mmengine 0.10.7 loads with torch's weights_only default, which its
    # own checkpoints fail; the project's allow-list covers them.
    with safe_checkpoint_loading():
        runner.test()


if __name__ == '__main__':
    main()
