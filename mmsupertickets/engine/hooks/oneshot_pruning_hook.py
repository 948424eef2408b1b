"""The one-shot pruning step of the S+P baselines, as a hook."""
import copy
import itertools
import logging
from typing import List, Optional, Sequence

import torch
from mmengine.logging import print_log
from torch.nn.modules.batchnorm import _BatchNorm

from mmsupertickets.pruning.builder import check_ratio
from mmsupertickets.pruning.prunable import DEFAULT_EXCLUDE
from mmsupertickets.registry import HOOKS
from mmsupertickets.structures.value_checks import (
    check_choice,
    check_flag,
    check_number,
)

from ..runner_surgery import unwrap
from .progressive_pruning_hook import ProgressivePruningHook

__all__ = ['OneShotPruningHook', 'build_train_loader', 'first_train_batch']

# What a run resumes besides weights and meta (the one-shot ticket keeps
# them for a retraining that resumes the search).
RESUMABLE = ('optimizer', 'param_schedulers', 'message_hub',
             'ema_state_dict')


@HOOKS.register_module()
class OneShotPruningHook(ProgressivePruningHook):
    """Prunes the loaded model once, right before its first evaluation.

    A :class:`ProgressivePruningHook` that never prunes during training
    (``prune_interval=None``) and prunes to ``ratio`` in ``before_val`` or
    ``before_test``, i.e. after the checkpoint has been loaded. Masks a
    checkpoint brings along are dropped first: the baseline prunes the
    dense searched subnet. SNIP scores |g·w| use the gradient averaged
    over the first ``snip_batches`` batches of the config's
    ``train_dataloader`` (fewer when one pass has fewer), with BN in eval
    mode (running statistics) by default, as the reference runs them; the
    BN buffers are put back afterwards, so only the masks differ from the
    loaded model.

    With ``iterative`` the masks the checkpoint brings along stay instead
    (the level below in an iterative sweep, see
    :func:`~mmsupertickets.apis.oneshot.run_sweep`): the scores are those
    of the network with them applied (SNIP: gradients of the masked
    network) and every weight they removed stays removed.

    Args:
        ratio (float): Fraction of prunable weights removed, in [0, 1).
        scorer (str): ``'random'``, ``'magnitude'`` or ``'snip'``.
            Defaults to ``'magnitude'``.
        scope (str): ``'global'`` or ``'layer'``. Defaults to ``'global'``.
        exclude (Sequence[str]): Regexes of weights never pruned.
            Defaults to the stock heads' final classifiers.
        seed (int): Seed of the random scorer. Defaults to 0.
        snip_batches (int): Batches the SNIP gradient is averaged over.
            Defaults to 100 (the reference's).
        snip_bn (str): BN mode of the SNIP forwards: ``'eval'`` (running
            statistics, the reference's) or ``'train'`` (batch
            statistics). Defaults to ``'eval'``.
        iterative (bool): Keep and build on the checkpoint's masks.
            Defaults to False (prune the dense searched subnet).

    Example:
        >>> runner = Runner.from_cfg(cfg)  # doctest: +SKIP
        >>> hook = OneShotPruningHook(0.9, scorer='snip')  # doctest: +SKIP
        >>> runner.register_hook(hook)  # doctest: +SKIP
        >>> metrics = runner.val()  # doctest: +SKIP
        >>> hook.sparsity(runner)  # doctest: +SKIP
        0.9
    """

    def __init__(self,
                 ratio: float,
                 scorer: str = 'magnitude',
                 scope: str = 'global',
                 exclude: Sequence[str] = DEFAULT_EXCLUDE,
                 seed: int = 0,
                 snip_batches: int = 100,
                 snip_bn: str = 'eval',
                 iterative: bool = False):
        ratio = check_ratio(ratio, 'ratio')
        self.snip_batches = check_number(snip_batches, 'snip_batches', 1,
                                         integer=True)
        self.snip_bn = check_choice(snip_bn, 'snip_bn', ('eval', 'train'))
        self.iterative = check_flag(iterative, 'iterative')
        super().__init__(target_sparsity=ratio, prune_interval=None,
                         scorer=scorer, scope=scope, exclude=exclude,
                         seed=seed)
        self.ratio = float(ratio)
        self.pruned = False
        self.loaded: Optional[dict] = None
        self._batch = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        super().after_load_checkpoint(runner, checkpoint)
        # Kept to write the one-shot ticket without reading the file again;
        # the runner loads a revised copy of the state dict, not this one.
        self.loaded = {k: v for k, v in checkpoint.items()
                       if k in RESUMABLE}
        self.loaded.update(meta=checkpoint.get('meta', {}),
                           state_dict=checkpoint['state_dict'])

    def before_val(self, runner) -> None:
        self._prune_once(runner)

    def before_test(self, runner) -> None:
        self._prune_once(runner)

    def _prune_once(self, runner) -> None:
        if self.pruned:
            return
        if len(self.masks) and not self.iterative:
            print_log(
                f'[SuperTickets] the checkpoint carries '
                f'{len(self.masks)} masks; they are dropped: the '
                'one-shot baseline prunes the dense searched subnet',
                logger='current', level=logging.WARNING)
            self.masks.clear()
        # SNIP fetches its own batches (batch_gradients).
        self.prune(runner, self.ratio, event=f'one-shot {self.scorer} prune')
        self.pruned = True

    def _scores(self, runner, weights, data_batch):
        scores = super()._scores(runner, weights, data_batch)
        if self.iterative:
            # What the lower level removed ranks below everything.
            for name, score in scores.items():
                mask = self.masks.get(name)
                if mask is not None:
                    scores[name] = score.masked_fill(~mask, float('-inf'))
        return scores

    def scoring_weight(self, name: str, weight: torch.Tensor):
        """The masked value when iterative: SNIP scores the masked net."""
        mask = self.masks.get(name) if self.iterative else None
        return weight.view_as(weight) if mask is None else weight * mask

    def first_batch(self, runner):
        """The first training batch (fetched once)."""
        if self._batch is None:
            self._batch = first_train_batch(runner)
        return self._batch

    def batch_shape(self, runner) -> List[int]:
        """(H, W) of the first training batch's images."""
        inputs = self.first_batch(runner)['inputs']
        return list(inputs[0].shape[-2:])

    def score_batches(self, runner):
        """The first ``snip_batches`` batches of one pass over the config's
        ``train_dataloader`` (seeded like the runner's)."""
        loader = build_train_loader(runner)
        yield from itertools.islice(iter(loader), self.snip_batches)

    def batch_gradients(self, runner, weights, data_batch):
        """The loss gradient averaged over :meth:`score_batches`."""
        model = unwrap(runner.model)
        buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
        was_training = model.training
        model.train()
        if self.snip_bn == 'eval':
            for m in model.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        try:
            total, count = None, 0
            for batch in self.score_batches(runner):
                grads = super().batch_gradients(runner, weights, batch)
                total = grads if total is None else {
                    n: total[n] + g for n, g in grads.items()}
                count += 1
            print_log(f'[SuperTickets] SNIP gradients averaged over {count} '
                      f'batches, BN in {self.snip_bn} mode',
                      logger='current')
            return {n: g / count for n, g in total.items()}
        finally:
            with torch.no_grad():
                for n, b in model.named_buffers():
                    b.copy_(buffers[n])
            model.train(was_training)


def build_train_loader(runner):
    """A fresh loader of the config's ``train_dataloader``, seeded like
    the runner's, for data-dependent scores."""
    loader_cfg = runner.cfg.get('train_dataloader')
    if not loader_cfg:
        raise ValueError('the snip scorer needs training batches, but the '
                         'config has no train_dataloader')
    return runner.build_dataloader(copy.deepcopy(loader_cfg),
                                   seed=runner.seed)


def first_train_batch(runner):
    """The first batch of the config's ``train_dataloader``."""
    return next(iter(build_train_loader(runner)))
