"""One-shot pruning of a searched subnet: the S+P baselines.

The paper compares SuperTickets with *search, then prune* pipelines: the
supernet is trained with the architecture search only, the searched subnet
is pruned once (random, magnitude or SNIP scores) and evaluated, with and
without fine-tuning under fixed masks. Every step here goes through the
stock mmengine runner built from the search config:

1. **One-shot prune and evaluate** (a runner whose ``load_from`` is the
   search checkpoint): loading the checkpoint rebuilds the searched subnet
   (``after_load_checkpoint`` of the pruning hook, which reads the same
   ``meta['supertickets']['arch']`` as the search hook); right before the
   first evaluation :class:`OneShotPruningHook` prunes the loaded weights to
   the ratio; ``runner.val()`` (or ``test()`` when the config has no
   validation) measures the pruned subnet. The ticket (the checkpoint's
   weights + the masks) is written next to the results.
2. **Retrain** (optional, a second runner loading that ticket): a
   ``ProgressivePruningHook(prune_interval=None)`` loads the masks and keeps
   them fixed while ``runner.train()`` fine-tunes; the run ends with an
   evaluation. By default it *resumes* the search run from the ticket
   (which carries the search checkpoint's optimizer, schedulers, message
   hub and EMA): the optimizer state, LR schedule, iteration count and EMA
   go on, as the reference retrains; ``retrain_resume=False`` starts them
   fresh.

The retraining runner has **no** ``SuperNetSearchHook``: the baseline
fine-tunes a fixed architecture, and a search hook kept with ρ = 0 would
still run its final shrink at the last iteration (channels whose |γ| is at
or below the threshold would go, slicing the masks and moving the
sparsity), so the hook is removed rather than neutralised. The subnet is
rebuilt on load by the pruning hook instead, and the checkpoints of the
retraining run keep the full searched architecture (``_KeepTicketMeta``).

Costs are counted with :func:`mmsupertickets.flops.complexity` at the
search's profiling input size: the dense subnet, the sparse ticket (exact
per layer) and the dense MACs × global density that the paper reports.
"""
import copy
import itertools
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.dist import barrier, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmsupertickets.engine.hooks.oneshot_pruning_hook import OneShotPruningHook
from mmsupertickets.engine.run_state import TicketRunState
from mmsupertickets.engine.runner_surgery import full_arch, unwrap
from mmsupertickets.engine.ticket_meta import (
    META_KEY,
    is_ticket_hook,
    ticket_meta,
    writable_ticket_meta,
)
from mmsupertickets.flops import complexity
from mmsupertickets.pruning.builder import (
    check_ratio,
    check_ratios,
    check_scope,
    check_scorers,
    part_name,
)
from mmsupertickets.pruning.prunable import DEFAULT_EXCLUDE
from mmsupertickets.structures.value_checks import (
    check_input_shape,
    check_ticket_section,
)
from mmsupertickets.utils.atomic_write import save_checkpoint_atomically

__all__ = [
    'OneShotPruningHook', 'check_ratios', 'check_scorers', 'result_name',
    'prune_oneshot', 'run_sweep'
]

_RUN_COUNTER = itertools.count()


def result_name(scorer, ratio: float) -> str:
    """``'<scorer>_<ratio>'``, e.g. ``'snip_0.93'``: the run's file stem."""
    return f'{part_name(scorer)}_{ratio:g}'


def _type_name(hook_cfg) -> str:
    t = hook_cfg.get('type') if isinstance(hook_cfg, dict) else \
        type(hook_cfg)
    return t if isinstance(t, str) else getattr(t, '__name__', str(t))


def scalar_metrics(metrics: Optional[dict]) -> Optional[Dict[str, float]]:
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
    """Keeps the metrics of the last validation/test and when it ran."""

    priority = 'VERY_LOW'

    def __init__(self):
        self.metrics = None
        self.at_iter = None

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics, self.at_iter = metrics, runner.iter

    def after_test_epoch(self, runner, metrics=None) -> None:
        self.metrics, self.at_iter = metrics, runner.iter


class _KeepTicketMeta(Hook):
    """Carries the search and one-shot state of the ticket into every
    checkpoint of the retraining run (the pruning hook writes the
    architecture and masks), so they load like the search checkpoint."""

    priority = 44  # before ProgressivePruningHook (45), which keeps it

    def __init__(self, meta: dict):
        self.search = meta.get('search')
        self.oneshot = meta.get('oneshot')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = writable_ticket_meta(checkpoint)
        if self.search is not None:
            meta.setdefault('search', self.search)
        if self.oneshot is not None:
            meta.setdefault('oneshot', self.oneshot)


def _eval_mode(cfg: Config) -> str:
    if all(cfg.get(k) is not None
           for k in ('val_dataloader', 'val_cfg', 'val_evaluator')):
        return 'val'
    if all(cfg.get(k) is not None
           for k in ('test_dataloader', 'test_cfg', 'test_evaluator')):
        return 'test'
    raise ValueError('the config can evaluate nothing: it needs '
                     'val_dataloader/val_cfg/val_evaluator or the test_ '
                     'ones')


def _is_iter_based(train_cfg: dict) -> bool:
    loop = train_cfg.get('type')
    if loop is not None:
        name = loop if isinstance(loop, str) else loop.__name__
        return 'Iter' in name
    return not train_cfg.get('by_epoch', True)


def retrain_loop(cfg: Config, iters: Optional[int] = None,
                 epochs: Optional[int] = None, start_iter: int = 0,
                 start_epoch: int = 0) -> dict:
    """The ``train_cfg`` of the fine-tuning run.

    With neither ``iters`` nor ``epochs`` the config's own loop is kept.
    ``epochs`` needs an epoch-based config (an iteration-based one usually
    samples forever, so an epoch is not defined by its loader). A run that
    resumes the search at ``start_iter``/``start_epoch`` fine-tunes for
    ``iters``/``epochs`` more, or to the end of the config's schedule.
    """
    if iters is not None and epochs is not None:
        raise ValueError('give retrain iters or epochs, not both '
                         f'(iters={iters}, epochs={epochs})')
    train_cfg = copy.deepcopy(dict(cfg.get('train_cfg') or {}))
    if not train_cfg:
        raise ValueError('retraining needs the config\'s train_cfg, '
                         'train_dataloader and optim_wrapper')
    if iters is not None:
        if int(iters) != iters or iters <= 0:
            raise ValueError(f'retrain iters={iters!r} must be a positive '
                             'integer')
        # Validate once, at the end: that is the number reported.
        end = start_iter + int(iters)
        return dict(type='IterBasedTrainLoop', max_iters=end,
                    val_interval=end)
    if epochs is not None:
        if int(epochs) != epochs or epochs <= 0:
            raise ValueError(f'retrain epochs={epochs!r} must be a positive '
                             'integer')
        if _is_iter_based(train_cfg):
            raise ValueError(
                f'retrain epochs={epochs} needs an epoch-based train loop, '
                f'but the config trains by iterations ({train_cfg}); give '
                'the number of iterations instead')
        end = start_epoch + int(epochs)
        return dict(type='EpochBasedTrainLoop', max_epochs=end,
                    val_interval=end)
    unit = 'iters' if _is_iter_based(train_cfg) else 'epochs'
    end = train_cfg.get(f'max_{unit}')
    done = start_iter if unit == 'iters' else start_epoch
    if end is not None and done >= end:
        raise ValueError(
            f'the search checkpoint is at {done} of the config\'s {end} '
            f'{"iterations" if unit == "iters" else "epochs"}: '
            'resuming its schedule leaves nothing to retrain; give retrain '
            'iters or epochs')
    return train_cfg


def _base_config(config, cfg_options: Optional[dict]) -> Config:
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


def _build_runner(cfg: Config, work_dir: str, load_from: str,
                  stage: str) -> Runner:
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


def _evaluate(runner: Runner, mode: str) -> dict:
    return runner.val() if mode == 'val' else runner.test()


def prune_oneshot(config,
                  checkpoint: str,
                  scorer: str,
                  ratio: float,
                  work_dir: str,
                  retrain: bool = False,
                  retrain_iters: Optional[int] = None,
                  retrain_epochs: Optional[int] = None,
                  scope: str = 'global',
                  exclude: Sequence[str] = DEFAULT_EXCLUDE,
                  seed: int = 0,
                  snip_batches: int = 100,
                  snip_bn: str = 'eval',
                  iterative: bool = False,
                  retrain_resume: bool = True,
                  input_shape: Optional[Sequence[int]] = None,
                  cfg_options: Optional[dict] = None) -> dict:
    """One S+P run: prune the searched subnet once, evaluate, (retrain).

    Args:
        config (str | Config): The search-only config (its search, pruning
            and reactivation hooks are not run).
        checkpoint (str): A checkpoint of that config; only read.
        scorer (str): ``'random'``, ``'magnitude'`` or ``'snip'``.
        ratio (float): Fraction of prunable weights removed, in [0, 1).
        work_dir (str): Results go to ``<work_dir>/<scorer>_<ratio>.json``,
            the runs' logs, the one-shot ticket and the retrained
            checkpoints under ``<work_dir>/<scorer>_<ratio>/``.
        retrain (bool): Also fine-tune with the masks fixed and evaluate
            again. Defaults to False.
        retrain_iters (int, optional): Length of the fine-tuning in
            iterations. Defaults to None.
        retrain_epochs (int, optional): ... or in epochs (epoch-based
            configs). With neither, the config's ``train_cfg`` is used.
        retrain_resume (bool): The fine-tuning resumes the search run at
            its checkpoint: optimizer state, LR schedule, iteration count
            and EMA go on from there (the reference's), for
            ``retrain_iters``/``retrain_epochs`` more or to the end of the
            config's schedule. False starts them fresh (a new optimizer,
            the schedule from its start). Defaults to True.
        scope (str): ``'global'`` or ``'layer'``. Defaults to ``'global'``.
        exclude (Sequence[str]): Regexes of weights never pruned.
        seed (int): Seed of the random scorer. Defaults to 0.
        snip_batches (int): Training batches the SNIP gradient is averaged
            over. Defaults to 100 (the reference's).
        snip_bn (str): BN mode of the SNIP forwards, ``'eval'`` (the
            reference's) or ``'train'``. Defaults to ``'eval'``.
        iterative (bool): ``checkpoint`` is a one-shot ticket of a lower
            ratio whose masks are kept and built on (scores of the masked
            network; what they removed stays removed). Defaults to False.
        input_shape (Sequence[int], optional): (H, W) at which params and
            MACs are counted. Defaults to the search's profiling size
            stored in the checkpoint.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        dict: The record also written as JSON (scorer, ratio, achieved
        sparsity, metrics before/after retraining, params/MACs).

    Example:
        >>> res = prune_oneshot(  # doctest: +SKIP
        ...     'configs/search.py', 'iter_80000.pth', 'magnitude', 0.9,
        ...     'work_dirs/sp', retrain=True, retrain_iters=2000)
        >>> res['metrics']['retrained']['mIoU']  # doctest: +SKIP
    """
    check_scorers([scorer])
    ratio = check_ratio(ratio, 'ratio')
    check_scope(scope)
    input_shape = check_input_shape(input_shape, 'input_shape',
                                    allow_none=True)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint file {checkpoint!r} does not '
                                'exist')
    checkpoint = osp.abspath(checkpoint)
    cfg = _base_config(config, cfg_options)
    mode = _eval_mode(cfg)
    if retrain:
        # Only the loop's length is checked here; where the search stopped
        # is known once its checkpoint is loaded.
        retrain_loop(cfg, retrain_iters, retrain_epochs)
    name = result_name(scorer, ratio)
    run_dir = osp.join(osp.abspath(work_dir), name)

    # 1. One-shot prune, then evaluate the pruned subnet.
    runner = _build_runner(cfg, osp.join(run_dir, 'oneshot'), checkpoint,
                           f'{name}_oneshot')
    hook = OneShotPruningHook(ratio, scorer=scorer, scope=scope,
                              exclude=exclude, seed=seed,
                              snip_batches=snip_batches, snip_bn=snip_bn,
                              iterative=iterative)
    runner.register_hook(hook)
    metrics_oneshot = scalar_metrics(_evaluate(runner, mode))
    source_meta = copy.deepcopy(ticket_meta(hook.loaded) or {})
    search = check_ticket_section(
        'search', source_meta.get('search'), f'meta.{META_KEY}.search',
        repr(checkpoint)) or {}
    # Count at the size the search profiled at (its default: the first
    # training images), so S+P and SuperTickets costs compare.
    input_shape = (input_shape or search.get('input_shape')
                   or check_input_shape(hook.batch_shape(runner),
                                        'the first training batch'))
    model = unwrap(runner.model)
    prunable = list(hook.prunable(runner))
    kept, total = hook.masks.kept_and_total(model, prunable)
    sparsity = 1 - kept / max(total, 1)
    dense = complexity(model, input_shape)
    sparse = complexity(model, input_shape, hook.masks.densities(prunable))
    masks = hook.masks.state_dict()

    # The one-shot ticket: the checkpoint's weights (untouched by the
    # evaluation) with the masks, loadable by tools/test.py and by the
    # retraining run.
    new_meta = copy.deepcopy(source_meta)
    new_meta['arch'] = full_arch(runner)
    new_meta['pruning'] = dict(masks=masks, events=1, last_ratio=ratio,
                               target_sparsity=ratio)
    new_meta['oneshot'] = dict(scorer=scorer, scope=scope, ratio=ratio,
                               seed=seed, source=checkpoint,
                               iterative=iterative)
    if scorer == 'snip':
        new_meta['oneshot'].update(snip_batches=snip_batches,
                                   snip_bn=snip_bn)
    meta = copy.deepcopy(hook.loaded['meta'])
    meta[META_KEY] = new_meta
    ticket_path = osp.join(run_dir, 'oneshot_ticket.pth')
    start = dict(iter=int(meta.get('iter', 0)), epoch=int(meta.get('epoch',
                                                                  0)))
    if is_main_process():
        # The search run's optimizer, schedule and EMA go along, so that
        # the retraining can resume them.
        save_checkpoint_atomically(
            dict(hook.loaded, meta=meta), ticket_path)
    barrier()
    del runner, hook

    result = dict(
        method='S+P', scorer=scorer, scope=scope, ratio=ratio,
        sparsity=sparsity, kept_weights=kept, prunable_weights=total,
        config=config if isinstance(config, str) else getattr(
            config, 'filename', None),
        checkpoint=checkpoint, ticket=ticket_path, eval_split=mode,
        input_shape=input_shape, seed=seed, iterative=iterative,
        complexity=dict(
            input_shape=input_shape,
            supernet=search.get('supernet_cost'),
            dense_subnet=dict(params=dense['params'], macs=dense['macs']),
            sparse=dict(params=sparse['sparse_params'],
                        macs=sparse['sparse_macs']),
            macs_x_global_density=sparse['macs_x_global_density']),
        metrics=dict(oneshot=metrics_oneshot, retrained=None),
        retrain=None, work_dirs=dict(oneshot=osp.join(run_dir, 'oneshot')))

    # 2. Fine-tune with the masks fixed, then evaluate again.
    if retrain:
        rcfg = copy.deepcopy(cfg)
        train_cfg = retrain_loop(
            cfg, retrain_iters, retrain_epochs,
            **(dict(start_iter=start['iter'], start_epoch=start['epoch'])
               if retrain_resume else {}))
        rcfg.train_cfg = train_cfg
        rcfg.resume = retrain_resume
        rcfg.custom_hooks = list(rcfg.custom_hooks) + [
            dict(type='ProgressivePruningHook', target_sparsity=ratio,
                 prune_interval=None, scorer=scorer, scope=scope,
                 exclude=list(exclude), seed=seed)
        ]
        retrain_dir = osp.join(run_dir, 'retrain')
        runner = _build_runner(rcfg, retrain_dir, ticket_path,
                               f'{name}_retrain')
        recorder = MetricsRecorder()
        runner.register_hook(recorder)
        runner.register_hook(_KeepTicketMeta(new_meta))
        runner.train()
        if recorder.metrics is None or recorder.at_iter != runner.iter:
            # The loop did not evaluate the final model.
            _evaluate(runner, mode)
        pp = TicketRunState.of(runner).mask_owner
        model = unwrap(runner.model)
        after = pp.masks.state_dict()
        fixed = after.keys() == masks.keys() and all(
            torch.equal(after[k], masks[k]) for k in masks)
        result['metrics']['retrained'] = scalar_metrics(recorder.metrics)
        result['sparsity_after_retrain'] = pp.sparsity(runner)
        result['masks_fixed'] = bool(fixed)
        result['retrain'] = dict(train_cfg=dict(train_cfg),
                                 iters=runner.iter, epochs=runner.epoch,
                                 resumed=retrain_resume,
                                 start=start if retrain_resume else dict(
                                     iter=0, epoch=0))
        result['work_dirs']['retrain'] = retrain_dir
        if not fixed:
            raise RuntimeError(f'{name}: the masks changed while retraining')
        del runner, pp

    if is_main_process():
        out = osp.join(osp.abspath(work_dir), f'{name}.json')
        with open(out + '.tmp', 'w') as f:
            json.dump(result, f, indent=2, default=str)
        os.replace(out + '.tmp', out)
    return result


def run_sweep(config,
              checkpoint: str,
              scorers: Sequence[str] = ('random', 'magnitude', 'snip'),
              ratios: Sequence[float] = (0.5, 0.9),
              work_dir: str = 'work_dirs/s_plus_p',
              iterative: bool = True,
              **kwargs) -> List[dict]:
    """:func:`prune_oneshot` for every scorer and ratio.

    With ``iterative`` (the reference's sweep) the ratios of a scorer run
    from low to high and each level is scored on the network already
    masked at the level below (its one-shot ticket), keeping what that
    level removed; without, every level prunes the dense searched subnet.
    Arguments are validated before the first run starts; ``kwargs`` go to
    :func:`prune_oneshot`.

    Example:
        >>> run_sweep(  # doctest: +SKIP
        ...     'configs/search.py', 'iter_80000.pth',
        ...     ['random', 'magnitude', 'snip'], [0.5, 0.9, 0.95],
        ...     'work_dirs/sp', retrain=True, retrain_iters=2000)
    """
    scorers = check_scorers(scorers)
    ratios = check_ratios(ratios)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint file {checkpoint!r} does not '
                                'exist')
    results = []
    for scorer in scorers:
        source, below = checkpoint, False
        for ratio in (sorted(ratios) if iterative else ratios):
            res = prune_oneshot(config, source, scorer, ratio, work_dir,
                                iterative=below, **kwargs)
            if iterative:
                source, below = res['ticket'], True
            print_log(
                f'[SuperTickets] S+P {scorer} {ratio:g}: sparsity '
                f'{res["sparsity"]:.4f}, metrics {res["metrics"]}',
                logger='current')
            results.append(res)
    return results
