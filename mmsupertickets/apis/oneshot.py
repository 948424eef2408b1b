"""One-shot pruning of a searched subnet: the S+P baselines.

The paper compares SuperTickets with *search, then prune* pipelines: the
supernet is trained with the architecture search only, the searched subnet
is pruned once (random, magnitude or SNIP scores) and evaluated, with and
without fine-tuning under fixed masks. Every step here goes through the
stock mmengine runner built from the search config:

1. **One-shot prune and evaluate** (a runner whose ``load_from`` is the
   search checkpoint): loading the checkpoint rebuilds the searched subnet
   (``after_load_checkpoint`` of the pruning hook, which reads the same
   ``checkpoint['supertickets']['arch']`` as the search hook); right before the
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

Step 1 lives in :mod:`~mmsupertickets.apis.oneshot_ticket`, step 2 in
:mod:`~mmsupertickets.apis.oneshot_retrain`; both build their runners with
:mod:`~mmsupertickets.apis.oneshot_runner`.
"""
import json
import os
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.dist import is_main_process
from mmengine.logging import print_log

from mmsupertickets.engine.hooks.oneshot_pruning_hook import OneShotPruningHook
from mmsupertickets.pruning.builder import (
    check_ratio,
    check_ratios,
    check_scope,
    check_scorers,
)
from mmsupertickets.pruning.prunable import DEFAULT_EXCLUDE
from mmsupertickets.structures.value_checks import check_input_shape

from .oneshot_options import OneShotOptions, result_name
from .oneshot_retrain import (
    RetrainResult,
    retrain_loop,
    retrain_with_fixed_masks,
)

# MetricsRecorder and scalar_metrics are re-exported: analysis/sweep.py
# imports them from here.
from .oneshot_runner import (  # noqa: F401
    MetricsRecorder,
    base_config,
    eval_mode,
    scalar_metrics,
)
from .oneshot_ticket import OneShotTicket, prune_and_evaluate

__all__ = [
    'OneShotPruningHook', 'check_ratios', 'check_scorers', 'result_name',
    'prune_oneshot', 'run_sweep'
]


def _existing_file(checkpoint: str) -> str:
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint file {checkpoint!r} does not '
                                'exist')
    return checkpoint


def _result_record(config, checkpoint: str, options: OneShotOptions,
                   ticket: OneShotTicket, mode: str, run_dir: str,
                   retrained: Optional[RetrainResult]) -> dict:
    """The record :func:`prune_oneshot` returns and writes as JSON."""
    costs = ticket.complexity
    result = dict(
        method='S+P', scorer=options.scorer, scope=options.scope,
        ratio=options.ratio, sparsity=ticket.sparsity,
        kept_weights=ticket.kept, prunable_weights=ticket.total,
        config=config if isinstance(config, str) else getattr(
            config, 'filename', None),
        checkpoint=checkpoint, ticket=ticket.path, eval_split=mode,
        input_shape=costs['input_shape'], seed=options.seed,
        iterative=options.iterative, complexity=costs,
        metrics=dict(oneshot=ticket.metrics, retrained=None),
        retrain=None, work_dirs=dict(oneshot=osp.join(run_dir, 'oneshot')))
    if retrained is not None:
        result['metrics']['retrained'] = retrained.metrics
        result['sparsity_after_retrain'] = retrained.sparsity
        result['masks_fixed'] = retrained.masks_fixed
        result['retrain'] = retrained.loop
        result['work_dirs']['retrain'] = retrained.work_dir
    return result


def _write_json(result: dict, path: str) -> None:
    with open(path + '.tmp', 'w') as f:
        json.dump(result, f, indent=2, default=str)
    os.replace(path + '.tmp', path)


def prune_oneshot(config, checkpoint: str, scorer: str, ratio: float,
                  work_dir: str, retrain: bool = False,
                  retrain_iters: Optional[int] = None,
                  retrain_epochs: Optional[int] = None,
                  scope: str = 'global',
                  exclude: Sequence[str] = DEFAULT_EXCLUDE, seed: int = 0,
                  snip_batches: int = 100, snip_bn: str = 'eval',
                  iterative: bool = False, retrain_resume: bool = True,
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
    checkpoint = osp.abspath(_existing_file(checkpoint))
    cfg = base_config(config, cfg_options)
    mode = eval_mode(cfg)
    if retrain:
        # Only the loop's length is checked here; where the search stopped
        # is known once its checkpoint is loaded.
        retrain_loop(cfg, retrain_iters, retrain_epochs)
    options = OneShotOptions(scorer, ratio, scope, exclude, seed,
                             snip_batches, snip_bn, iterative)
    run_dir = osp.join(osp.abspath(work_dir), options.name)
    ticket = prune_and_evaluate(cfg, checkpoint, options, run_dir, mode,
                                input_shape)
    retrained = None
    if retrain:
        retrained = retrain_with_fixed_masks(
            cfg, ticket, options, run_dir, mode, retrain_iters,
            retrain_epochs, retrain_resume)
    result = _result_record(config, checkpoint, options, ticket, mode,
                            run_dir, retrained)
    if is_main_process():
        _write_json(result, osp.join(osp.abspath(work_dir),
                                     f'{options.name}.json'))
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
    _existing_file(checkpoint)
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
