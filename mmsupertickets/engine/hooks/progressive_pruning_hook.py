"""Progressive unstructured pruning of the (shrinking) supernet."""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.dist import get_rank
from mmengine.logging import print_log

from mmsupertickets.head_widths import check_input_widths
from mmsupertickets.pruning.builder import (
    build_schedule,
    build_scorer,
    build_selection,
    check_ratio,
    part_name,
)
from mmsupertickets.pruning.prunable import DEFAULT_EXCLUDE, prunable_weights
from mmsupertickets.registry import HOOKS
from mmsupertickets.structures.masks import WeightMasks
from mmsupertickets.structures.searchable import find_searchable_units
from mmsupertickets.structures.shrink_plan import ShrinkPlan
from mmsupertickets.structures.state_checks import (
    mark_masked_state,
    unmark_masked_state,
)
from mmsupertickets.structures.value_checks import (
    check_choice,
    check_flag,
    check_number,
    check_patterns,
)
from mmsupertickets.utils.broadcast import broadcast_tensor_

from ..event_clock import check_interval
from ..event_log import report_event
from ..model_status import model_status
from ..run_state import TicketRunState
from ..runner_surgery import unwrap
from ..ticket_meta import TICKET_KEY
from .ticket_event_hook import TicketEventHook

REACTIVATION_MODES = ('all', 'rebuilt')

@HOOKS.register_module()
class ProgressivePruningHook(TicketEventHook):
    """Prunes the training model progressively into a sparse ticket.

    Lifecycle:

    - every ``prune_interval`` (the k-th event): scores every prunable
      weight (conv and linear weights; biases, BN and the final classifier
      are excluded) on its *stored* value, so a weight pruned before may
      come back, and keeps the top (1 − r_k) with r_k from ``schedule``,
      ranked over all layers together (``scope='global'``) or within each
      layer (``'layer'``). N is counted on the current, possibly shrunk,
      model. Rank 0 computes the masks and broadcasts them;
    - the last iteration always prunes to ``target_sparsity``, so the
      ticket saved at the end of training reaches the target;
    - frozen weights (``requires_grad=False``) are not prunable: they are
      never scored (SNIP has no gradient for them), never masked by an
      event, and the sparsity is counted over the trainable ones;
    - every iteration and before each prune: a NaN or inf loss, weight or
      buffer stops the run with a :class:`~mmsupertickets.engine.
      finite_checks.DivergenceError` (NaN scores would prune everything);
    - ``after_shrink``: masks are sliced with their weights; with
      reactivation on (``reactivation`` here, or an
      ``IterativeReactivationHook`` in ``custom_hooks``) masks are reset to
      dense instead, so their pruned values rejoin training and the next
      prune event decides again: with ``'all'`` (the reference method's)
      every kernel-path conv (expand, depthwise, project) of every
      surviving block, whether or not it lost channels; with ``'rebuilt'``
      only the tensors the shrink sliced. Stem, shortcut convs and head
      convs outside the searchable blocks keep their masks;
    - the forward pass uses weight × mask; pruned values stay stored and get
      no gradient. Masks live in this hook and in
      ``checkpoint['supertickets']['pruning']``, not in the model.

    Args:
        target_sparsity (float): Final fraction of prunable weights
            removed, in [0, 1). Defaults to 0.9.
        prune_interval (float, optional): Epochs or optimizer steps between
            prune events: a whole number of steps (``by_epoch=False``), or
            at least one iteration's worth of epochs. None prunes never:
            masks loaded from a checkpoint stay fixed (fine-tuning a
            ticket). Defaults to 25.
        schedule (str | dict): ``'step'`` (r_k = min(k·step, target), the
            paper's), ``'cubic'`` (Zhu & Gupta) or a config dict of a
            schedule in :data:`~mmsupertickets.registry.SCHEDULES`.
            Defaults to ``'step'``.
        step (float): Sparsity added per event by the step schedule.
            Defaults to 0.1.
        scorer (str | dict): ``'magnitude'``, ``'random'``, ``'snip'``
            (|g·w| on the current batch, masks off) or a config dict of a
            scorer in :data:`~mmsupertickets.registry.SCORERS` (register a
            :class:`~mmsupertickets.pruning.scorers.BaseScorer` subclass
            to add one). Defaults to ``'magnitude'``.
        scope (str | dict): ``'global'``, ``'layer'`` or a selection in
            :data:`~mmsupertickets.registry.SELECTIONS`. Defaults to
            ``'global'``.
        exclude (Sequence[str]): Regexes of weight names never pruned.
            Defaults to the stock heads' final classifiers.
        by_epoch (bool): Unit of ``prune_interval``. Defaults to True.
        seed (int): Seed of the random scorer. Defaults to 0.
        reactivation (str, optional): What a shrink does to the masks:
            None slices them with their weights and keeps them; ``'all'``
            makes every kernel-path conv of the searchable blocks dense
            (the paper's reference implementation; about 99.9 % of the
            prunable weights of the segmentation supernet); ``'rebuilt'``
            only the tensors the shrink sliced. ``IterativeReactivationHook``
            sets it from a config. Defaults to None.

    This hook is the one owner of the run's masks; other hooks reach them
    through :class:`~mmsupertickets.engine.run_state.TicketRunState`
    (``mask_owner``) and change them only through this hook's methods.

    Example:
        >>> custom_hooks = [
        ...     dict(type='ProgressivePruningHook', target_sparsity=0.9,
        ...          prune_interval=25, schedule='step', step=0.1),
        ... ]
    """

    priority = 45  # after SuperNetSearchHook (40): shrink, then prune

    def __init__(self,
                 target_sparsity: float = 0.9,
                 prune_interval: Optional[float] = 25,
                 schedule: str = 'step',
                 step: float = 0.1,
                 scorer: str = 'magnitude',
                 scope: str = 'global',
                 exclude: Sequence[str] = DEFAULT_EXCLUDE,
                 by_epoch: bool = True,
                 seed: int = 0,
                 reactivation: Optional[str] = None):
        super().__init__(by_epoch=check_flag(by_epoch, 'by_epoch'))
        reactivation = check_choice(reactivation, 'reactivation',
                                    REACTIVATION_MODES, allow_none=True)
        prune_interval = check_interval(
            check_number(prune_interval, 'prune_interval', 0, low_open=True,
                         allow_none=True),
            'prune_interval', allow_none=True, by_epoch=by_epoch)
        self.target_sparsity = check_ratio(target_sparsity,
                                           'target_sparsity')
        # The step schedule takes ``step`` (a dict's own ``step`` wins).
        schedule_kwargs = dict(step=step) if part_name(
            schedule) == 'step' else {}
        self.schedule = build_schedule(schedule, self.target_sparsity,
                                       **schedule_kwargs)
        self._scorer = build_scorer(scorer)
        self._selection = build_selection(scope)
        self.prune_interval = prune_interval
        self.scorer = part_name(scorer)
        self.scope = part_name(scope)
        self.exclude = check_patterns(exclude, 'exclude')
        self.seed = check_number(seed, 'seed', 0, integer=True)
        self.reactivation = reactivation
        self.masks = WeightMasks()
        self.events = 0
        self.last_ratio = 0.0

    def prunable(self, runner) -> Dict[str, nn.Parameter]:
        return prunable_weights(unwrap(runner.model), self.exclude,
                                trainable_only=True)

    def sparsity(self, runner) -> float:
        """Achieved fraction of prunable weights masked out."""
        kept, total = self.masks.kept_and_total(
            unwrap(runner.model), list(self.prunable(runner)))
        return 1 - kept / max(total, 1)

    def before_run(self, runner) -> None:
        super().before_run(runner)
        TicketRunState.of(runner).mask_owner = self

    def reactivation_mode(self, runner) -> Optional[str]:
        """This hook's ``reactivation``, or the one another hook asked for.
        """
        return self.reactivation or TicketRunState.of(runner).reactivation

    def load_masks(self, runner, masks: Dict[str, torch.Tensor],
                   bake: bool = False) -> None:
        """Replace the masks by ``masks`` (checked against the model);
        with ``bake`` the masked weights are set to zero."""
        model = unwrap(runner.model)
        self.masks.load_state_dict(model, masks)
        if bake:
            self.masks.bake(model)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        # A head built for other widths than the backbone gives is refused
        # here, before the first iteration, naming the key to set.
        check_input_widths(unwrap(runner.model))
        if not self.prunable(runner):
            raise ValueError('the model has no prunable weights (trainable '
                             'conv/linear not matched by '
                             f'exclude={self.exclude})')
        self.check_run(runner, prune_interval=self.prune_interval)

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        # Without a search hook (any stock model) costs are counted at the
        # first batch's image size; the search hook, earlier, sets its own.
        state = TicketRunState.of(runner)
        if state.estimator is None and isinstance(data_batch, dict) and \
                data_batch.get('inputs') is not None:
            state.count_at(data_batch['inputs'][0].shape[-2:])

    # -- events --------------------------------------------------------------
    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.check_finite_step(runner, outputs)
        if self.prune_interval is None:
            return
        final = self.is_last_train_iter(runner)
        k = self.event_index(runner, self.prune_interval)
        if k is None and not final:
            return
        num_events = self.planned_events(runner, self.prune_interval)
        ratio = self.target_sparsity if final else self.schedule(
            k, num_events)
        self.prune(runner, ratio, data_batch=data_batch,
                   event='final prune' if final else f'prune {k}')

    def _scores(self, runner, weights, data_batch):
        kwargs = dict(generator=torch.Generator().manual_seed(
            self.seed + runner.iter))
        if self._scorer.needs_gradients:
            kwargs['grads'] = self.batch_gradients(runner, weights,
                                                   data_batch)
        return self._scorer(weights, **kwargs)

    def scoring_weight(self, name: str, weight: torch.Tensor):
        """What the SNIP forward uses for ``weight``: the dense value."""
        return weight.view_as(weight)

    def batch_gradients(self, runner, weights, data_batch):
        """Gradients of the dense network's loss on one batch."""
        if data_batch is None:
            raise ValueError('the snip scorer needs a training batch')
        model = unwrap(runner.model)
        modules = dict(model.named_modules())
        names = list(weights)
        owners = [(modules[n.rpartition('.')[0]], n.rpartition('.')[2])
                  for n in names]
        self.masks.detach_all()
        try:
            with torch.enable_grad():
                # Differentiate through fresh aliases (shadowing the
                # Parameters for this forward, as the masks do): after a
                # shrink, the graph of an earlier step can keep a weight's
                # gradient accumulator alive with the old shape, which
                # autograd.grad on the Parameter itself would check against.
                aliases = [self.scoring_weight(n, weights[n]) for n in names]
                for (module, attr), alias in zip(owners, aliases):
                    module.__dict__[attr] = alias
                data = model.data_preprocessor(data_batch, True)
                losses = model(**data, mode='loss')
                loss, _ = model.parse_losses(losses)
                grads = torch.autograd.grad(loss, aliases, allow_unused=True)
        finally:
            for module, attr in owners:
                module.__dict__.pop(attr, None)
            self.masks.reattach(model)
        return {n: (g if g is not None else torch.zeros_like(weights[n]))
                for n, g in zip(names, grads)}

    def prune(self, runner, ratio: float, data_batch=None,
              event: str = 'prune') -> None:
        """Prune the prunable weights to ``ratio`` (rank 0 decides)."""
        # NaN scores rank below every number: all would be pruned.
        self.check_finite_state(runner, f'the {event}')
        model = unwrap(runner.model)
        weights = self.prunable(runner)
        names = list(weights)
        if get_rank() == 0:
            scores = self._scores(runner, weights, data_batch)
            masks = self._selection(scores, ratio)
            flat = torch.cat([masks[n].flatten() for n in names]).to(
                torch.uint8)
        else:
            flat = torch.empty(sum(w.numel() for w in weights.values()),
                               dtype=torch.uint8,
                               device=next(iter(weights.values())).device)
        broadcast_tensor_(flat)
        start = 0
        for n in names:
            size = weights[n].numel()
            self.masks.set(model, n, flat[start:start + size].view_as(
                weights[n]).bool())
            start += size
        self.events += 1
        self.last_ratio = ratio
        status = model_status(
            runner, self.masks, names,
            estimator=TicketRunState.of(runner).estimator)
        status['target_sparsity'] = ratio
        report_event(runner, event, status, clock=self.clock(runner))

    # -- structure changes ---------------------------------------------------
    def after_shrink(self, runner, plan: ShrinkPlan) -> None:
        self.masks.follow_plan(plan)
        mode = self.reactivation_mode(runner)
        if mode == 'rebuilt':
            dense = [n for n in plan.slices if n in self.masks.masks]
        elif mode == 'all':
            units = tuple(u.name + '.' for u in find_searchable_units(
                unwrap(runner.model)))
            dense = [n for n in self.masks.masks if n.startswith(units)]
        else:
            return
        revived = self.masks.reset(dense)
        print_log(f'[SuperTickets] reactivation ({mode}): {len(dense)} '
                  f'layers dense again, {revived} weights rejoin training',
                  logger='current')

    # -- checkpoints ---------------------------------------------------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self.save_ticket_state(runner, checkpoint, 'pruning', dict(
            masks=self.masks.state_dict(), events=self.events,
            last_ratio=self.last_ratio,
            target_sparsity=self.target_sparsity))
        if len(self.masks):
            # Loaders without this hook would ignore the masks: refuse them.
            mark_masked_state(checkpoint['state_dict'], self.masks.names())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # Runs before the weights are loaded; the masks are read below.
        unmark_masked_state(checkpoint.get('state_dict', {}))
        state = self.load_ticket_state(runner, checkpoint, 'pruning')
        if state:
            self.masks.load_state_dict(unwrap(runner.model), state['masks'],
                                       f'{TICKET_KEY}.pruning.masks')
            self.events = state['events']
            self.last_ratio = state['last_ratio']
            print_log(f'[SuperTickets] loaded {len(state["masks"])} masks, '
                      f'sparsity {self.sparsity(runner):.4f}',
                      logger='current')
