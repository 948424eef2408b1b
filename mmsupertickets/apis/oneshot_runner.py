"""The stock mmengine runners of the S+P baselines: their config, how they
are built, how they evaluate and what they measured."""
import copy
import itertools
import os
import time
from typing import Dict, Optional

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmsupertickets.engine.ticket_meta import is_ticket_hook

__all__ = [
    'MetricsRecorder', 'base_config', 'build_runner', 'eval_mode',
    'evaluate', 'scalar_metrics'
]

_RUN_COUNTER = itertools.count()


def _type_name(hook_cfg) -> str:
    t = hook_cfg.get('type') if isinstance(hook_cfg, dict) else \
        type(hook_cfg)
    return t if isinstance(t, str) else getattr(t, '__name__', str(t))


def scalar_metrics(metrics: Optional[dict]) -> Optional[Dict[str, float]]:
    """The metrics that are numbers, as floats (None stays None).

    Example:
        >>> scalar_metrics({'mIoU': 61.5, 'per_class': ['road', 'car']})
        {'mIoU': 61.5}
    """
    if metrics is None:
        return None
    out = {}
    for k, v in metrics.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            pass  # per-class tables and the like: not a scalar
    return out


class MetricsRecorder(Hook):
    """Keeps the metrics of the last validation/test and when it ran.

    Example:
        >>> recorder = MetricsRecorder()
        >>> runner.register_hook(recorder)  # doctest: +SKIP
        >>> runner.train()  # doctest: +SKIP
        >>> recorder.metrics, recorder.at_iter  # doctest: +SKIP
    """

    priority = 'VERY_LOW'

    def __init__(self):
        self.metrics = None
        self.at_iter = None

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics, self.at_iter = metrics, runner.iter

    def after_test_epoch(self, runner, metrics=None) -> None:
        self.metrics, self.at_iter = metrics, runner.iter


def eval_mode(cfg: Config) -> str:
    """``'val'`` if the config can validate, else ``'test'`` if it can
    test; a config that can do neither is refused.

    Example:
        >>> eval_mode(Config(dict(test_dataloader=dict(), test_cfg=dict(),
        ...                       test_evaluator=dict())))
        'test'
    """
    if all(cfg.get(k) is not None
           for k in ('val_dataloader', 'val_cfg', 'val_evaluator')):
        return 'val'
    if all(cfg.get(k) is not None
           for k in ('test_dataloader', 'test_cfg', 'test_evaluator')):
        return 'test'
    raise ValueError('the config can evaluate nothing: it needs '
                     'val_dataloader/val_cfg/val_evaluator or the test_ '
                     'ones')


def evaluate(runner: Runner, mode: str) -> dict:
    """``runner.val()`` or ``runner.test()``, as :func:`eval_mode` chose."""
    return runner.val() if mode == 'val' else runner.test()


def base_config(config, cfg_options: Optional[dict]) -> Config:
    """A copy of the search config without its ticket hooks (search,
    pruning, reactivation) and not resuming: the one every S+P runner
    starts from.

    Example:
        >>> cfg = base_config('configs/search.py', None)  # doctest: +SKIP
    """
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    cfg = copy.deepcopy(cfg)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    hooks = list(cfg.get('custom_hooks') or [])
    dropped = [_type_name(h) for h in hooks if is_ticket_hook(h)]
    if dropped:
        print_log(f'[SuperTickets] S+P baseline: not running {dropped} of '
                  'the config (the subnet stays as searched, the masks are '
                  'the one-shot ones)', logger='current')
    cfg.custom_hooks = [h for h in hooks if not is_ticket_hook(h)]
    cfg.resume = False
    return cfg


def build_runner(cfg: Config, work_dir: str, load_from: str,
                 stage: str) -> Runner:
    """The runner of ``cfg`` in ``work_dir``, loading ``load_from``.

    Example:
        >>> runner = build_runner(cfg, 'work_dirs/sp/snip_0.9/oneshot',
        ...                       'iter_80000.pth',
        ...                       'snip_0.9_oneshot')  # doctest: +SKIP
    """
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    cfg.load_from = load_from
    # Logger and visualizer instances are looked up by experiment name:
    # every runner of the sweep needs its own, or it writes into the
    # previous run's files.
    cfg.experiment_name = (f'{stage}_{time.strftime("%Y%m%d_%H%M%S")}_'
                           f'{os.getpid()}_{next(_RUN_COUNTER)}')
    if 'runner_type' in cfg:
        with RUNNERS.switch_scope_and_registry(
                cfg.get('default_scope')) as runners:
            return runners.build(cfg)
    return Runner.from_cfg(cfg)
