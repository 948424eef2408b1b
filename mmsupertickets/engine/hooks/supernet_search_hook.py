"""Network slimming on the supernet: γ penalty and physical shrinking."""
from typing import Dict, Optional, Sequence

from mmengine.logging import print_log

from mmsupertickets.flops import ResourceEstimator, format_count
from mmsupertickets.head_widths import check_input_widths
from mmsupertickets.latency import (
    LatencyCost,
    LatencyTable,
    check_table,
    unit_widths,
)
from mmsupertickets.registry import HOOKS
from mmsupertickets.structures.dead_channels import (
    kept_indices,
    live_channel_masks,
)
from mmsupertickets.structures.macs_budget import (
    LinearCost,
    fit_cost,
    resolve_budget,
    steer_rho,
)
from mmsupertickets.structures.searchable import (
    find_searchable_units,
    frozen_unit_widths,
    require_searchable,
)
from mmsupertickets.structures.shrink_plan import (
    ShrinkPlan,
    plan_channel_removal,
    refuse_emptied_stages,
)
from mmsupertickets.structures.value_checks import (
    batch_image_shape,
    check_choice,
    check_cost,
    check_flag,
    check_input_shape,
    check_number,
)
from mmsupertickets.utils.broadcast import broadcast_object

from ..event_clock import check_interval
from ..event_log import event_epoch, log_idle_shrink, report_event
from ..gamma_penalty import GammaPenalty
from ..model_status import model_status
from ..run_state import TicketRunState
from ..runner_surgery import (
    built_optimizers,
    ema_models,
    rewrap_if_pending,
    shrink_runner,
    unwrap,
)
from ..search_state import (
    penalty_weights,
    per_channel,
    restore_search_state,
    search_state,
)
from .ticket_event_hook import TicketEventHook

# Widths are rounded to multiples of this at most (a wider group than
# any unit's channels would remove whole units).
MAX_CHANNEL_DIVISOR = 1024


@HOOKS.register_module()
class SuperNetSearchHook(TicketEventHook):
    """Searches the architecture while the supernet trains (network slimming).

    At the first step it measures each searchable unit's cost per channel
    (MACs at ``input_shape``, or the latency a table predicts) and fixes
    the penalty weights; every optimizer step adds ρ(t)·p·sign(γ) to the
    gradient of every searchable BN γ (ρ ramps in over ``warmup``); every
    ``shrink_interval`` the channels with |γ| ≤ ``threshold`` (in the live
    and the EMA weights) are removed, with empty kernel paths and blocks,
    once they hold ``min_macs``; the last iteration's shrink is
    unconditional. With ``target_macs``/``target_latency`` ρ is steered to
    a budget. Optimizer state, the EMA copy and DDP follow each shrink;
    other hooks get ``after_shrink(runner, plan)``; the architecture and
    this hook's state go into checkpoints and are rebuilt on load. Each
    step is described in ``docs/en/advanced_guides/hooks_and_state.md``.

    Bad arguments are refused naming the key; a shrink that would empty a
    searchable stage stops the run with an ``EmptyStageError``.

    Args:
        rho (float): Final penalty weight ρ. Defaults to 1.4e-4.
        cost (str): What a channel costs: ``'macs'`` or ``'latency'``
            (predicted by ``latency_table``). Defaults to ``'macs'``.
        latency_table (str, optional): A table of this model at
            ``input_shape`` (``tools/analysis/latency_table.py``); with
            ``cost='macs'`` events log its prediction. Defaults to None.
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
        channel_divisor (int, optional): Keep every unit's live channels
            a multiple of this (at most 1024; or zero), keeping the
            largest-|γ| ones (8, 16 or 32 suit most inference engines).
            Defaults to None: 1, or with ``cost='latency'`` the table's
            ``default_divisor``, the one measured fastest.
        input_shape (Sequence[int], optional): (H, W) of the profiling
            input, each side at most 8192. Defaults to None (the size of
            the first training images).
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
        # A NaN threshold would call every channel dead at the first shrink.
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
        self.cost = check_cost(cost, latency_table, target_macs,
                               target_latency)
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
        self.penalty = GammaPenalty()

    # -- set-up ------------------------------------------------------------
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

    def _publish_input_shape(self, runner) -> None:
        # The pruning hook counts MACs at the same profiling size.
        if self.input_shape is not None:
            TicketRunState.of(runner).count_at(self.input_shape)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        require_searchable(unwrap(runner.model))
        check_input_widths(unwrap(runner.model))
        self.check_run(runner, shrink_interval=self.shrink_interval)
        if self.latency_table is not None:
            # Before any step: a table of another model stops the run now
            # (a resumed subnet may only be narrower than the table).
            check_table(self.latency_table, unwrap(runner.model),
                        self.input_shape, exact=not self.penalty_weights)
        self._publish_input_shape(runner)
        self.penalty.attach(built_optimizers(runner))

    def after_train(self, runner) -> None:
        self.penalty.detach()

    def _profile(self, runner, data_batch) -> None:
        model = unwrap(runner.model)
        if self.input_shape is None:
            self.input_shape = batch_image_shape(data_batch)
        self._publish_input_shape(runner)
        units = require_searchable(model)
        macs = TicketRunState.of(runner).estimator.module_macs(model)
        self.macs_per_channel = per_channel(macs, units)
        guard_macs = macs
        if self.min_macs_shape and self.min_macs_shape != self.input_shape:
            guard_macs = ResourceEstimator(
                self.min_macs_shape).module_macs(model)
        self.guard_macs_per_channel = per_channel(guard_macs, units)
        if self.latency_table is not None:
            check_table(self.latency_table, model, self.input_shape)
        status = model_status(runner,
                              estimator=TicketRunState.of(runner).estimator)
        status.update(self._costs(model))
        self.cost_fixed = status['macs'] - sum(macs.get(u.name, 0)
                                               for u in units)
        self._cost = self._cost_model(self.cost_fixed)
        widths = unit_widths(model)
        self.penalty_weights = penalty_weights(self._cost, widths)
        self.supernet_cost = dict(params=status['params'],
                                  macs=status['macs'], **self._costs(model))
        if self.target is not None:
            # Frozen units are never shrunk: their cost is fixed too.
            self.fixed_cost = self._cost.total(frozen_unit_widths(model))
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
        self.penalty.collect([u.norm.weight for u in units],
                             [self.penalty_weights.get(u.name, 1.0)
                              for u in units])

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
        if not self.penalty.gammas:
            self._collect_gammas(runner)
        # Time done before this iteration.
        t = self.clock(runner).elapsed_before(runner.iter)
        rho = self.rho if self.budget is None else self.controlled_rho
        self.current_rho = rho if self.warmup == 0 else \
            rho * min(max(t, 0) / self.warmup, 1.0)
        self.penalty.rho = self.current_rho

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
        live, magnitude, channels, ema_dead_macs = live_channel_masks(
            units, ema_units, self.threshold, final,
            self.guard_macs_per_channel, self.channel_divisor)
        if self.budget is not None:
            live = fit_cost(live, magnitude, self._cost, self.budget,
                            self.channel_divisor, trim=final,
                            other=frozen_unit_widths(unwrap(runner.model)))
        keep, dead_macs = kept_indices(live, channels,
                                       self.guard_macs_per_channel)
        if self.guard == 'reference':
            dead_macs = ema_dead_macs
        return keep, dead_macs

    def _steer_rho(self, runner, counts: Dict[str, int]) -> dict:
        """Steer ρ by the cost of the subnet with ``counts`` live channels
        per unit; what the event log shows of it."""
        progress = (runner.iter + 1) / max(runner.max_iters, 1)
        self.controlled_rho, info = steer_rho(
            self.controlled_rho, self.rho, self._cost.total(counts),
            progress, self.supernet_cost[self.cost], self.budget, self.cost)
        return info

    def _shrink_nothing(self, runner, keep, dead_macs: float,
                        guarded: bool, final: bool) -> None:
        """A shrink event that removes no channel: the guard held it back
        or nothing is dead."""
        model = unwrap(runner.model)
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
        steer = None
        if self.budget is not None:
            # The subnet this shrink would have left.
            steer = self._steer_rho(runner, {
                u.name: len(keep[u.name]) if u.name in keep else
                u.channels for u in find_searchable_units(model)})
        log_idle_shrink(runner, final, guarded, dead_macs, dict(
            min_macs=self.min_macs, threshold=self.threshold,
            min_macs_shape=self.min_macs_shape or self.input_shape),
            self.cost, steer)

    def shrink(self, runner, final: bool = False) -> None:
        """One shrink event (rank 0 decides, every rank applies)."""
        # NaN γ compare False with the threshold: all channels would die.
        self.check_finite_state(runner, 'the shrink')
        keep, dead_macs = broadcast_object(self.dead_channels(runner, final))
        model = unwrap(runner.model)
        guarded = not final and dead_macs < self.min_macs
        if not keep or guarded:
            self._shrink_nothing(runner, keep, dead_macs, guarded, final)
            return
        epoch = event_epoch(runner, self.clock(runner))
        refuse_emptied_stages(
            model, keep, f'the {"final " if final else ""}shrink at iter '
            f'{runner.iter + 1}' + (f' (epoch {epoch})' if epoch is not None
                                    else ''), self.threshold)
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
            share = status['latency'] / self.supernet_cost['latency']
            print_log(
                f'[SuperTickets] {event}: predicted latency '
                f'{status["latency"]:.2f} ms ({share:.3f} of the supernet) '
                f'in {self.latency_table.measured_on}, MACs '
                f'{format_count(status["macs"])}', logger='current')

    # -- checkpoints ---------------------------------------------------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self.save_ticket_state(runner, checkpoint, 'search',
                               search_state(self))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = self.load_ticket_state(runner, checkpoint, 'search')
        if state:
            restore_search_state(self, state)
            self._publish_input_shape(runner)
            self._cost = None
        self.penalty.collect([], [])
