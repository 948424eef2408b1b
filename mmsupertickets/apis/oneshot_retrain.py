"""Step 2 of an S+P run (optional): fine-tune the one-shot ticket with its
masks fixed, then evaluate again."""
import copy
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Optional

import torch
from mmengine.config import Config
from mmengine.hooks import Hook

from mmsupertickets.engine.run_state import TicketRunState
from mmsupertickets.engine.ticket_meta import writable_ticket_meta

from .oneshot_options import OneShotOptions
from .oneshot_runner import (
    MetricsRecorder,
    build_runner,
    evaluate,
    scalar_metrics,
)
from .oneshot_ticket import OneShotTicket

__all__ = ['RetrainResult', 'retrain_loop', 'retrain_with_fixed_masks']


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

    Example:
        >>> cfg = Config(dict(train_cfg=dict(type='IterBasedTrainLoop',
        ...                                  max_iters=100)))
        >>> retrain_loop(cfg, iters=20, start_iter=80)['max_iters']
        100
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


@dataclass
class RetrainResult:
    """What the fine-tuning with fixed masks measured.

    Attributes:
        metrics (dict, optional): Scalar metrics of the final model.
        sparsity (float): Sparsity of the final model.
        masks_fixed (bool): Always True (changed masks raise).
        loop (dict): ``train_cfg``, final ``iters``/``epochs``, whether
            the search run was ``resumed`` and where it ``start``-ed.
        work_dir (str): The retraining run's folder.

    Example:
        >>> res = retrain_with_fixed_masks(cfg, ticket, options,
        ...                                run_dir, 'val')  # doctest: +SKIP
        >>> res.masks_fixed  # doctest: +SKIP
        True
    """

    metrics: Optional[Dict[str, float]]
    sparsity: float
    masks_fixed: bool
    loop: dict
    work_dir: str


def retrain_with_fixed_masks(cfg: Config,
                             ticket: OneShotTicket,
                             options: OneShotOptions,
                             run_dir: str,
                             mode: str,
                             iters: Optional[int] = None,
                             epochs: Optional[int] = None,
                             resume: bool = True) -> RetrainResult:
    """Fine-tunes ``ticket`` in ``<run_dir>/retrain`` with its masks fixed
    and evaluates the final model.

    ``iters``, ``epochs`` and ``resume`` are ``retrain_iters``,
    ``retrain_epochs`` and ``retrain_resume`` of
    :func:`~mmsupertickets.apis.oneshot.prune_oneshot`. The run has no
    search hook (see :mod:`mmsupertickets.apis.oneshot`).

    Raises:
        RuntimeError: The masks changed while retraining.

    Example:
        >>> res = retrain_with_fixed_masks(  # doctest: +SKIP
        ...     cfg, ticket, OneShotOptions('magnitude', 0.9),
        ...     'work_dirs/sp/magnitude_0.9', 'val', iters=2000)
        >>> res.metrics['mIoU']  # doctest: +SKIP
    """
    start = ticket.start if resume else dict(iter=0, epoch=0)
    rcfg = copy.deepcopy(cfg)
    train_cfg = retrain_loop(cfg, iters, epochs, start_iter=start['iter'],
                             start_epoch=start['epoch'])
    rcfg.train_cfg = train_cfg
    rcfg.resume = resume
    rcfg.custom_hooks = list(rcfg.custom_hooks) + [options.fixed_masks_hook()]
    work_dir = osp.join(run_dir, 'retrain')
    runner = build_runner(rcfg, work_dir, ticket.path,
                          f'{options.name}_retrain')
    recorder = MetricsRecorder()
    runner.register_hook(recorder)
    runner.register_hook(_KeepTicketMeta(ticket.meta))
    runner.train()
    if recorder.metrics is None or recorder.at_iter != runner.iter:
        # The loop did not evaluate the final model.
        evaluate(runner, mode)
    pp = TicketRunState.of(runner).mask_owner
    after, masks = pp.masks.state_dict(), ticket.masks
    fixed = after.keys() == masks.keys() and all(
        torch.equal(after[k], masks[k]) for k in masks)
    result = RetrainResult(
        metrics=scalar_metrics(recorder.metrics),
        sparsity=pp.sparsity(runner), masks_fixed=bool(fixed),
        loop=dict(train_cfg=dict(train_cfg), iters=runner.iter,
                  epochs=runner.epoch, resumed=resume, start=start),
        work_dir=work_dir)
    if not fixed:
        raise RuntimeError(f'{options.name}: the masks changed while '
                           'retraining')
    return result
