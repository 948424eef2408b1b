"""Network slimming on the supernet: γ penalty and physical shrinking."""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.logging import print_log

from mmsupertickets.flops import (
    ResourceEstimator,
    check_input_widths,
    format_count,
)
from mmsupertickets.latency import (
    LatencyCost,
    LatencyTable,
    check_table,
    unit_widths,
)
from mmsupertickets.registry import HOOKS
from mmsupertickets.structures.channel_rounding import round_live_channels
from mmsupertickets.structures.macs_budget import (
    LinearCost,
    budget_path,
    fit_cost,
    next_rho,
    per_channel_cost,
    resolve_budget,
)
from mmsupertickets.structures.searchable import (
    find_searchable_units,
    require_searchable,
)
from mmsupertickets.structures.shrink_plan import (
    EmptyStageError,
    ShrinkPlan,
    emptied_stages,
    plan_channel_removal,
)
from mmsupertickets.structures.value_checks import (
    check_choice,
    check_flag,
    check_input_shape,
    check_number,
)
from mmsupertickets.utils.broadcast import broadcast_object

from ..event_clock import check_interval
from ..event_log import event_epoch, report_event
from ..model_status import model_status
from ..run_state import TicketRunState
from ..runner_surgery import (
    built_optimizers,
    ema_models,
    rewrap_if_pending,
    shrink_runner,
    unwrap,
)
from .ticket_event_hook import TicketEventHook

# What the search can weigh channels by.
COSTS = ('macs', 'latency')
# Widths are rounded to multiples of this at most (a wider group than
# any unit's channels would remove whole units).
MAX_CHANNEL_DIVISOR = 1024


@HOOKS.register_module()
class SuperNetSearchHook(TicketEventHook):
    """Searches the architecture while the supernet trains (network slimming).

    Lifecycle:

    - first ``before_train_iter``: measures each searchable unit's MACs per
      channel at ``input_shape`` (default: the first batch's image size) and
      fixes the penalty weights p_unit = cost per channel / mean cost per
      channel (channel-weighted mean 1). The cost is MACs
      (``cost='macs'``) or the latency that a table measured on the
      deployment device predicts (``cost='latency'``; see
      ``tools/analysis/latency_table.py``): the penalty weights, the budget
      and its controller all use it. A table is first checked against the
      model (unit names, widths, input shape) and a mismatch refused
      naming the unit;
    - with ``target_macs`` (a MACs budget instead of a hand-tuned ρ): ρ
      starts at ``rho`` and, at every shrink event, is scaled by the ratio
      of the subnet's MACs to where they should be by then (a straight
      line from the supernet's MACs at the start to the budget at the
      last iteration), by at most 2× per event (``target_latency``: the
      same in predicted milliseconds). No shrink removes more
      than the budget asks: dead channels of the largest |γ| come back
      while they fit under it. The last shrink also removes the live
      channels of the smallest |γ| while the subnet is over the budget, so
      the searched subnet ends at or just under the budget (by less than
      one unit's group of ``channel_divisor`` channels). ρ, the path and
      the gap to the budget are logged at every shrink event;
    - every optimizer step: a step pre-hook adds ρ(t)·p·sign(γ) to the
      gradient of every searchable BN γ. It runs inside ``optimizer.step()``
      after AMP has unscaled the gradients and only on real steps under
      gradient accumulation; the model's loss is unchanged. ρ(t) ramps
      linearly from 0 to ``rho`` over ``warmup``. Frozen γ
      (``requires_grad=False``, e.g. under ``frozen_stages``) cannot move,
      so their units are left out of the search: no penalty, never shrunk;
    - every ``shrink_interval``: channels with |γ| ≤ ``threshold`` in the
      live weights and in the EMA weights (when an ``EMAHook`` is used) are
      dead; they are removed, with empty kernel paths and blocks, if the
      guard passes: with ``guard='reference'`` (the reference's) the
      channels dead in the EMA weights alone (the live ones without an
      EMA) must hold at least ``min_macs`` MACs at ``min_macs_shape``
      (224×224 by default for every task), and then, like the
      reference's rebuild of every block, ``after_shrink`` is called even
      when no channel goes (reactivation resets the masks); with
      ``guard='removed'`` only the channels that will go are counted and
      nothing happens otherwise;
    - at the last iteration the shrink is unconditional, as in the
      reference: every dead channel goes, however few MACs it holds (the
      EMA alone decides when there is one). Optimizer state, the EMA
      copy and DDP follow; other hooks get ``after_shrink(runner, plan)``.
      Decisions are made on rank 0 and broadcast;
    - every iteration, before a shrink and before a checkpoint: a NaN or
      inf loss, weight or buffer stops the run with a
      :class:`~mmsupertickets.engine.finite_checks.DivergenceError`
      (a diverged γ would otherwise shrink every channel away);
    - ``before_save_checkpoint``: the searched architecture and this hook's
      state go to ``checkpoint['meta']['supertickets']``;
    - ``after_load_checkpoint`` (before the weights are loaded): the saved
      subnet is rebuilt, so ``--resume`` and ``tools/test.py`` work on a
      shrunk checkpoint.

    Every argument is checked when the hook is built: a string, NaN, inf or
    an out-of-range value is refused naming the key. A shrink that would
    remove every kernel path of a searchable stage (e.g. a ``threshold``
    above every |γ|) stops the run with a :class:`~mmsupertickets.
    structures.shrink_plan.EmptyStageError` naming the event and the stage.

    Args:
        rho (float): Final penalty weight ρ. Defaults to 1.4e-4.
        cost (str): What a channel costs: ``'macs'`` or ``'latency'``
            (predicted by ``latency_table``). Defaults to ``'macs'``.
        latency_table (str, optional): A table written by
            ``tools/analysis/latency_table.py`` for this model at
            ``input_shape``. Needed by ``cost='latency'``; with
            ``cost='macs'`` every event logs the predicted latency too.
            Defaults to None.
        target_latency (float, optional): With ``cost='latency'``, the
            latency budget: at most 1 is a fraction of the supernet's
            predicted latency, more is milliseconds in the table's runtime.
            Defaults to None (the fixed ρ).
        warmup (float): Length of the linear ρ ramp, in epochs
            (``by_epoch``) or optimizer steps. Defaults to 25.
        shrink_interval (float): Epochs or optimizer steps between shrink
            events: a whole number of steps (``by_epoch=False``), or at
            least one iteration's worth of epochs. Defaults to 10.
        threshold (float): |γ| at or below which a channel is dead.
            Defaults to 1e-3.
        min_macs (float): Least MACs (at ``min_macs_shape``) that the dead
            channels must add up to for a shrink before the last iteration
            to happen. Defaults to 1e6.
        guard (str): What ``min_macs`` is compared with: ``'reference'``
            (channels dead in the EMA alone, and a pass rebuilds even
            when nothing is removed) or ``'removed'`` (only what the shrink
            removes; skipped otherwise). Defaults to ``'reference'``.
        min_macs_shape (Sequence[int], optional): (H, W) at which the dead
            channels' MACs are compared with ``min_macs``. Defaults to
            (224, 224), the reference's for every task; None counts at
            ``input_shape``.
        target_macs (float, optional): MACs budget of the searched subnet
            at ``input_shape``: at most 1 is a fraction of the supernet's
            MACs, more is absolute MACs. It must leave room for the MACs
            outside the searchable units (stem, fusions, head). Defaults
            to None (the paper's fixed ρ).
        channel_divisor (int, optional): Keep the live channels of every
            unit a multiple of this (at most 1024; or zero) at every
            shrink, keeping the largest-|γ| ones: 8, 16 or 32 suit tensor
            cores and most inference engines. Units not yet at a multiple
            (supernet widths need not be) are rounded at the first shrink
            that happens; the last shrink always happens. Defaults to
            None: 1 (any width), or with ``cost='latency'`` the table's
            ``default_divisor``, the one measured fastest in its runtime.
        input_shape (Sequence[int], optional): (H, W) of the profiling input,
            each side at most :data:`~mmsupertickets.structures.
            value_checks.MAX_INPUT_SIDE` (8192). Defaults to None (the size
            of the first training images).
        by_epoch (bool): Unit of ``warmup`` and ``shrink_interval``.
            Defaults to True.

    Example:
        >>> custom_hooks = [
        ...     dict(type='SuperNetSearchHook', rho=1.4e-4, warmup=25,
        ...          shrink_interval=10, input_shape=(512, 1024)),
        ... ]
        >>> # A subnet of 40 % of the supernet's MACs, widths multiples of 8:
        >>> custom_hooks = [
        ...     dict(type='SuperNetSearchHook', target_macs=0.4,
        ...          channel_divisor=8, input_shape=(512, 1024)),
        ... ]
        >>> # 70 % of the supernet's latency on the device of the table:
        >>> custom_hooks = [
        ...     dict(type='SuperNetSearchHook', cost='latency',
        ...          latency_table='table.json', target_latency=0.7,
        ...          input_shape=(512, 1024)),
        ... ]
    """

    priority = 40  # shrink before the pruning hook (45) and EMAHook (50)

    def __init__(self,
                 rho: float = 1.4e-4,
                 warmup: float = 25,
                 shrink_interval: float = 10,
                 threshold: float = 1e-3,
                 min_macs: float = 1e6,
                 input_shape: Optional[Sequence[int]] = None,
                 min_macs_shape: Optional[Sequence[int]] = (224, 224),
                 channel_divisor: Optional[int] = None,
                 target_macs: Optional[float] = None,
                 by_epoch: bool = True,
                 cost: str = 'macs',
                 latency_table: Optional[str] = None,
                 target_latency: Optional[float] = None,
                 guard: str = 'reference'):
        super().__init__(by_epoch=check_flag(by_epoch, 'by_epoch'))
        self.guard = check_choice(guard, 'guard', ('reference', 'removed'))
        # Every value checked finite and in range here (a NaN threshold
        # would call every channel dead at the first shrink).
        rho = check_number(rho, 'rho', 0)
        self.warmup = check_number(warmup, 'warmup', 0)
        self.shrink_interval = check_interval(
            check_number(shrink_interval, 'shrink_interval', 0,
                         low_open=True),
            'shrink_interval', by_epoch=by_epoch)
        self.threshold = check_number(threshold, 'threshold', 0)
        self.min_macs = check_number(min_macs, 'min_macs', 0)
        channel_divisor = check_number(
            channel_divisor, 'channel_divisor', 1, MAX_CHANNEL_DIVISOR,
            integer=True, allow_none=True)
        self.target_macs = check_number(target_macs, 'target_macs', 0,
                                        low_open=True, allow_none=True)
        self.target_latency = check_number(
            target_latency, 'target_latency', 0, low_open=True,
            allow_none=True)
        self.cost = cost
        self._check_cost(latency_table)
        self.latency_table = None if latency_table is None else \
            LatencyTable.load(latency_table)
        if channel_divisor is None:
            channel_divisor = 1 if cost == 'macs' else \
                self.latency_table.default_divisor
        self.channel_divisor = channel_divisor
        # Predicted latency, logged at every event (the table is checked
        # against the model at the start).
        self._latency = None if self.latency_table is None else \
            LatencyCost(self.latency_table, channel_divisor)
        self._cost = None  # what the search steers by, built at the start
        # Set at the start of the search, restored on resume: the budget,
        # the cost no shrink can remove (both in the cost's unit) and the
        # MACs outside every unit.
        self.budget: Optional[float] = None
        self.fixed_cost = 0.0
        self.cost_fixed = 0.0
        self.controlled_rho = rho
        self.rho = rho
        self.input_shape = check_input_shape(input_shape, 'input_shape',
                                             allow_none=True)
        self.min_macs_shape = check_input_shape(
            min_macs_shape, 'min_macs_shape', allow_none=True)
        self.current_rho = 0.0
        # Fixed at the start of the search, restored on resume.
        self.penalty_weights: Dict[str, float] = {}
        self.macs_per_channel: Dict[str, float] = {}
        self.guard_macs_per_channel: Dict[str, float] = {}
        self.supernet_cost: Dict[str, int] = {}
        self._gammas: List[torch.nn.Parameter] = []
        self._weights: List[float] = []
        self._step_hooks = []

    # -- set-up ------------------------------------------------------------
    def _check_cost(self, latency_table) -> None:
        if self.cost not in COSTS:
            raise ValueError(f'cost={self.cost!r} is not one of {COSTS}')
        if self.cost == 'latency' and latency_table is None:
            raise ValueError('cost=\'latency\' needs latency_table (a table '
                             'written by tools/analysis/latency_table.py)')
        wrong = 'target_latency' if self.cost == 'macs' else 'target_macs'
        if getattr(self, wrong) is not None:
            raise ValueError(
                f'{wrong}={getattr(self, wrong)} does not go with '
                f'cost={self.cost!r}: set target_{self.cost} instead')

    @property
    def target(self) -> Optional[float]:
        """The config's budget for the cost (a fraction or absolute)."""
        return getattr(self, f'target_{self.cost}')

    def _cost_model(self, fixed_macs: float):
        """The cost the search weighs channels by, over the whole model
        (``fixed_macs``: the MACs outside every unit)."""
        if self.cost == 'latency':
            return self._latency
        return LinearCost(self.macs_per_channel, fixed_macs)

    def _costs(self, model) -> dict:
        """The model's predicted latency when there is a table (MACs are
        counted by the status)."""
        if self._latency is None:
            return {}
        return dict(latency=self._latency.total(unit_widths(model)))

    @staticmethod
    def _frozen(model) -> Dict[str, int]:
        """Widths of the units whose γ cannot move (never shrunk)."""
        return {u.name: u.channels for u in find_searchable_units(model)
                if not u.norm.weight.requires_grad}

    def _publish_input_shape(self, runner) -> None:
        # The pruning hook counts MACs at the same profiling size.
        state = TicketRunState.of(runner)
        if self.input_shape is not None and (
                state.estimator is None
                or state.estimator.input_shape != list(self.input_shape)):
            state.estimator = ResourceEstimator(self.input_shape)

    def before_train(self, runner) -> None:
        require_searchable(unwrap(runner.model))
        check_input_widths(unwrap(runner.model))
        self.check_run(runner, shrink_interval=self.shrink_interval)
        if self.latency_table is not None:
            # Before any step: a table of another model stops the run now
            # (a resumed subnet may only be narrower than the table).
            check_table(self.latency_table, unwrap(runner.model),
                        self.input_shape, exact=not self.penalty_weights)
        self._publish_input_shape(runner)
        for optimizer in built_optimizers(runner):
            self._step_hooks.append(
                optimizer.register_step_pre_hook(self._add_penalty))

    def after_train(self, runner) -> None:
        for h in self._step_hooks:
            h.remove()
        self._step_hooks = []

    def _profile(self, runner, data_batch) -> None:
        model = unwrap(runner.model)
        if self.input_shape is None:
            inputs = data_batch['inputs'] if isinstance(data_batch,
                                                        dict) else None
            if inputs is None:
                raise ValueError('input_shape is not set and cannot be read '
                                 'from the batch: give input_shape=(H, W)')
            self.input_shape = list(inputs[0].shape[-2:])
        self._publish_input_shape(runner)
        units = require_searchable(model)
        macs = TicketRunState.of(runner).estimator.module_macs(model)
        self.macs_per_channel = {
            u.name: macs.get(u.name, 0) / max(u.channels, 1) for u in units}
        guard_macs = macs
        if self.min_macs_shape and self.min_macs_shape != self.input_shape:
            guard_macs = ResourceEstimator(
                self.min_macs_shape).module_macs(model)
        self.guard_macs_per_channel = {
            u.name: guard_macs.get(u.name, 0) / max(u.channels, 1)
            for u in units}
        if self.latency_table is not None:
            check_table(self.latency_table, model, self.input_shape)
        status = model_status(runner,
                              estimator=TicketRunState.of(runner).estimator)
        status.update(self._costs(model))
        self.cost_fixed = status['macs'] - sum(macs.get(u.name, 0)
                                               for u in units)
        self._cost = self._cost_model(self.cost_fixed)
        widths = unit_widths(model)
        per_channel = per_channel_cost(self._cost, widths)
        mean = sum(per_channel[n] * c for n, c in widths.items()) / max(
            sum(widths.values()), 1)
        self.penalty_weights = {n: p / mean for n, p in per_channel.items()}
        self.supernet_cost = dict(params=status['params'],
                                  macs=status['macs'], **self._costs(model))
        if self.target is not None:
            # Frozen units are never shrunk: their cost is fixed too.
            self.fixed_cost = self._cost.total(self._frozen(model))
            self.budget = resolve_budget(
                self.target, self._cost.total(widths), self.fixed_cost,
                key=f'target_{self.cost}', unit=self._cost.unit_name)
            status.update({f'target_{self.cost}': self.budget},
                          rho=self.rho)
        report_event(runner, 'supernet', status, clock=self.clock(runner))

    def _collect_gammas(self, runner) -> None:
        # A frozen γ cannot move, so it is no part of the search: no
        # penalty here, never shrunk (see dead_channels).
        units = [u for u in find_searchable_units(unwrap(runner.model))
                 if u.norm.weight.requires_grad]
        self._gammas = [u.norm.weight for u in units]
        self._weights = [self.penalty_weights.get(u.name, 1.0) for u in units]

    # -- penalty -------------------------------------------------------------
    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        rewrap_if_pending(runner)
        if not self.penalty_weights:
            self._profile(runner, data_batch)
        if self._cost is None:
            # Resumed: the state is back, the cost model is rebuilt.
            if self.latency_table is not None:
                check_table(self.latency_table, unwrap(runner.model),
                            exact=False)
            self._cost = self._cost_model(self.cost_fixed)
        if not self._gammas:
            self._collect_gammas(runner)
        # Time done before this iteration.
        t = self.clock(runner).elapsed_before(runner.iter)
        rho = self.rho if self.budget is None else self.controlled_rho
        self.current_rho = rho if self.warmup == 0 else \
            rho * min(max(t, 0) / self.warmup, 1.0)

    @torch.no_grad()
    def _add_penalty(self, optimizer, args, kwargs) -> None:
        rho = self.current_rho
        if rho == 0:
            return
        # Only the γ this optimizer steps: with several optimizers (an
        # OptimWrapperDict) each γ gets the penalty once.
        stepped = {id(p) for group in optimizer.param_groups
                   for p in group['params']}
        for gamma, weight in zip(self._gammas, self._weights):
            # A γ frozen after collection may keep a stale grad, which the
            # optimizer would still step.
            if gamma.requires_grad and gamma.grad is not None and \
                    id(gamma) in stepped:
                gamma.grad.add_(torch.sign(gamma), alpha=rho * weight)

    # -- shrinking -----------------------------------------------------------
    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.check_finite_step(runner, outputs)
        final = self.is_last_train_iter(runner)
        k = self.event_index(runner, self.shrink_interval)
        if k is None and not final:
            return
        self.shrink(runner, final=final)

    def dead_channels(self, runner, final: bool = False):
        """``{unit: kept indices}`` for units that lose channels, and the
        MACs at ``min_macs_shape`` that the guard counts (see ``guard``).

        Units with a frozen γ are skipped: their |γ| is whatever the
        pretrained weights hold, not a decision of the search.
        """
        units = find_searchable_units(unwrap(runner.model))
        emas = ema_models(runner)
        ema_units = {u.name: u for u in find_searchable_units(emas[0].module)
                     } if emas else {}
        live, magnitude, channels = {}, {}, {}
        ema_dead_macs = 0.0
        for u in units:
            if not u.norm.weight.requires_grad:
                continue
            mask = u.norm.weight.detach().abs() > self.threshold
            source = u
            if u.name in ema_units:
                ema_live = ema_units[u.name].norm.weight.detach().abs() \
                    > self.threshold
                mask = ema_live if final else (mask | ema_live)
                source = ema_units[u.name] if final else u
                ema_dead_macs += int((~ema_live).sum()) * \
                    self.guard_macs_per_channel.get(u.name, 0)
            else:
                ema_dead_macs += int((~mask).sum()) * \
                    self.guard_macs_per_channel.get(u.name, 0)
            magnitude[u.name] = source.norm.weight.detach().abs().cpu()
            live[u.name] = round_live_channels(
                mask.cpu(), magnitude[u.name], self.channel_divisor)
            channels[u.name] = u.channels
        if self.budget is not None:
            live = fit_cost(live, magnitude, self._cost, self.budget,
                            self.channel_divisor, trim=final,
                            other=self._frozen(unwrap(runner.model)))
        keep, dead_macs = {}, 0.0
        for name, mask in live.items():
            num_dead = channels[name] - int(mask.sum())
            if num_dead:
                keep[name] = mask.nonzero().flatten()
                dead_macs += num_dead * self.guard_macs_per_channel.get(
                    name, 0)
        if self.guard == 'reference':
            dead_macs = ema_dead_macs
        return keep, dead_macs

    def _steer_rho(self, runner, counts: Dict[str, int]) -> dict:
        """Scale the controlled ρ by the cost of the subnet with ``counts``
        live channels per unit against the budget path; what the event log
        shows of it."""
        key = self.cost
        value = self._cost.total(counts)
        progress = (runner.iter + 1) / max(runner.max_iters, 1)
        path = budget_path(progress, self.supernet_cost[key], self.budget)
        used = self.controlled_rho
        # Within 1e-4x and 1e4x of the starting ρ: a run cannot be
        # driven to no penalty or to one that kills every channel at once.
        self.controlled_rho = next_rho(
            used, value, path, limits=(self.rho * 1e-4, self.rho * 1e4))
        return {f'target_{key}': self.budget, f'path_{key}': path,
                f'{key}_gap': value / self.budget - 1,
                'controlled_rho': used, 'next_rho': self.controlled_rho}

    def _refuse_empty_stages(self, runner, model, keep, final) -> None:
        """Stop before a shrink that would leave a stage without a path."""
        empty = emptied_stages(model, keep)
        if not empty:
            return
        what = '; '.join(f'{stage}: all {units} units, {channels} channels'
                         for stage, (units, channels) in empty.items())
        epoch = event_epoch(runner, self.clock(runner))
        when = f'{runner.iter + 1}' + (
            f' (epoch {epoch})' if epoch is not None else '')
        raise EmptyStageError(
            f'the {"final shrink" if final else "shrink"} at iter '
            f'{when} would remove every '
            f'kernel path of {len(empty)} searchable stage(s) ({what}): '
            f'their |gamma| are all at or below threshold={self.threshold:g}'
            '. Lower threshold (or rho), or check the weights; the run '
            'stops so that no degenerate ticket is saved')

    def shrink(self, runner, final: bool = False) -> None:
        """One shrink event (rank 0 decides, every rank applies)."""
        # NaN γ compare False with the threshold: all channels would die.
        self.check_finite_state(runner, 'the shrink')
        keep, dead_macs = broadcast_object(self.dead_channels(runner, final))
        model = unwrap(runner.model)
        guarded = not final and dead_macs < self.min_macs
        if not keep and not guarded and self.guard == 'reference':
            # The reference rebuilds every block once the guard passes,
            # which resets the masks though no channel goes.
            print_log(f'[SuperTickets] shrink at iter {runner.iter + 1} '
                      f'removes no channel (guard count {dead_macs:.3g} '
                      'MACs); blocks rebuilt as the reference does',
                      logger='current')
            if self.budget is not None:
                self._steer_rho(runner, unit_widths(model))
            runner.call_hook('after_shrink', plan=ShrinkPlan())
            return
        if not keep or guarded:
            shape = 'x'.join(map(str, self.min_macs_shape
                                 or self.input_shape))
            budget = ''
            if self.budget is not None:
                # The subnet this shrink would have left.
                steer = self._steer_rho(runner, {
                    u.name: len(keep[u.name]) if u.name in keep else
                    u.channels for u in find_searchable_units(model)})
                budget = (f'; {self.cost} gap to the budget '
                          f'{steer[self.cost + "_gap"]:+.1%}'
                          f', rho {steer["controlled_rho"]:.3g} -> '
                          f'{steer["next_rho"]:.3g}')
            # The guard counts at min_macs_shape, whatever input_shape is;
            # the last shrink has no guard, it only finds nothing dead.
            why = (f'dead channels hold {dead_macs:.3g} MACs counted at '
                   f'min_macs_shape={shape} (< min_macs='
                   f'{self.min_macs:.3g})') if guarded else (
                       f'no channel has |gamma| <= threshold='
                       f'{self.threshold:g}')
            print_log(
                f'[SuperTickets] {"final " if final else ""}shrink '
                f'{"skipped" if guarded else "removes nothing"} at iter '
                f'{runner.iter + 1}: {why}{budget}', logger='current')
            return
        self._refuse_empty_stages(runner, model, keep, final)
        dead = {u.name: u.channels - len(keep[u.name])
                for u in find_searchable_units(model) if u.name in keep}
        removed = sum(dead.values())
        removed_macs = sum(n * self.macs_per_channel.get(name, 0)
                           for name, n in dead.items())
        shrink_runner(runner, plan_channel_removal(model, keep))
        self._collect_gammas(runner)
        status = model_status(runner,
                              estimator=TicketRunState.of(runner).estimator)
        status.update(rho=self.current_rho, removed_channels=removed,
                      removed_macs=removed_macs,
                      supernet_macs=self.supernet_cost.get('macs', 0),
                      supernet_params=self.supernet_cost.get('params', 0))
        status.update(self._costs(model))
        if self.budget is not None:
            status.update(self._steer_rho(runner, unit_widths(model)))
        event = 'final shrink' if final else 'shrink'
        report_event(runner, event, status, clock=self.clock(runner))
        if self._latency is not None:
            table = self.latency_table
            print_log(
                f'[SuperTickets] {event}: predicted latency '
                f'{status["latency"]:.2f} ms ('
                f'{status["latency"] / self.supernet_cost["latency"]:.3f} of '
                f'the supernet) in {table.runtime} with '
                f'{table.data["threads"]} thread(s) at '
                f'{table.shape[0]}x{table.shape[1]}, MACs '
                f'{format_count(status["macs"])}', logger='current')

    # -- checkpoints ---------------------------------------------------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self.save_ticket_state(runner, checkpoint, 'search', dict(
            penalty_weights=self.penalty_weights,
            macs_per_channel=self.macs_per_channel,
            guard_macs_per_channel=self.guard_macs_per_channel,
            supernet_cost=self.supernet_cost,
            input_shape=self.input_shape,
            channel_divisor=self.channel_divisor,
            rho=self.rho,
            target_macs=self.target_macs,
            cost=self.cost,
            target_latency=self.target_latency,
            cost_fixed=self.cost_fixed,
            controlled_rho=self.controlled_rho,
            **{f'budget_{self.cost}': self.budget,
               f'fixed_{self.cost}': self.fixed_cost}))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = self.load_ticket_state(runner, checkpoint, 'search')
        if state:
            self.penalty_weights = dict(state['penalty_weights'])
            self.macs_per_channel = dict(state['macs_per_channel'])
            # Checkpoints from before the guard had its own size counted it
            # at input_shape.
            self.guard_macs_per_channel = dict(
                state.get('guard_macs_per_channel',
                          state['macs_per_channel']))
            self.supernet_cost = dict(state['supernet_cost'])
            self.input_shape = state['input_shape']  # checked on read
            if state.get('cost', 'macs') != self.cost:
                raise ValueError(
                    f'the checkpoint was searched with cost='
                    f'{state.get("cost", "macs")!r}, this hook has cost='
                    f'{self.cost!r}: resume with the same cost')
            # Checkpoints from before the budget had none.
            self.budget = state.get(f'budget_{self.cost}')
            self.fixed_cost = state.get(f'fixed_{self.cost}', 0.0)
            # Before it was saved, only the search's fixed MACs were.
            self.cost_fixed = state.get('cost_fixed', self.fixed_cost)
            self.controlled_rho = state.get('controlled_rho', self.rho)
            self._publish_input_shape(runner)
            self._cost = None
        self._gammas = []
