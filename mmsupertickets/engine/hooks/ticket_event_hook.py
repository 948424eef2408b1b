"""Shared timing and reporting for the SuperTickets hooks."""
import json
import math
import os.path as osp
from typing import Dict, Optional

from mmengine.dist import get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmsupertickets.flops import complexity, format_count
from mmsupertickets.searchable import (find_searchable_blocks,
                                       find_searchable_units)
from ..runner_surgery import (ensure_arch, full_arch, ticket_meta, unwrap,
                              writable_ticket_meta)


def check_interval(value, key: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f'{key}={value!r} must be a positive number')


class TicketEventHook(Hook):
    """Base of hooks that act at regular events of a training run.

    Events are derived from the runner's counters only, so they land on the
    same iterations after a resume. With ``by_epoch=True`` an interval
    counts epochs (one pass over the data per rank, also in an
    iteration-based loop); otherwise it counts optimizer steps, which differ
    from iterations under gradient accumulation. Events are checked in
    ``after_train_iter``, after the optimizer update, before validation
    and checkpointing of that iteration: the metrics and the checkpoint of
    that epoch/iteration are those of the model *after* the event.
    """

    def __init__(self, by_epoch: bool = True):
        self.by_epoch = by_epoch

    @staticmethod
    def accumulation(runner) -> int:
        wrapper = getattr(runner, 'optim_wrapper', None)
        return max(int(getattr(wrapper, '_accumulative_counts', 1)), 1)

    @staticmethod
    def iters_per_epoch(runner) -> int:
        """Iterations of one pass over the data on each rank.

        Counted from the dataset, batch size and world size rather than
        ``len(dataloader)``: an ``InfiniteSampler`` reports the whole
        dataset on every rank, which would stretch epochs by the world size.
        """
        loader = runner.train_dataloader
        per_rank = math.ceil(len(loader.dataset) / get_world_size())
        if getattr(loader, 'drop_last', False):
            return max(per_rank // loader.batch_size, 1)
        return math.ceil(per_rank / loader.batch_size)

    def optimizer_stepped(self, runner) -> bool:
        """Whether the iteration that just ended stepped the optimizer."""
        return ((runner.iter + 1) % self.accumulation(runner) == 0
                or self.is_last_train_iter(runner))

    def progress(self, runner) -> float:
        """Training time done, in this hook's unit (epochs or steps)."""
        if self.by_epoch:
            return (runner.iter + 1) / self.iters_per_epoch(runner)
        return (runner.iter + 1) // self.accumulation(runner)

    def event_index(self, runner, interval) -> Optional[int]:
        """k if the k-th event of ``interval`` falls on this iteration."""
        if interval is None:
            return None
        if self.by_epoch:
            # Epoch ends are events whether or not an accumulated step
            # falls on them.
            period = int(round(interval * self.iters_per_epoch(runner)))
            done = runner.iter + 1
        elif not self.optimizer_stepped(runner):
            return None
        else:
            period = int(interval)
            done = (runner.iter + 1) // self.accumulation(runner)
        if period > 0 and done % period == 0:
            return done // period
        return None

    @staticmethod
    def save_ticket_state(runner, checkpoint: dict, key: str,
                          state: dict) -> None:
        """Put the searched architecture and this hook's ``state`` into
        ``checkpoint['meta']['supertickets']``."""
        meta = writable_ticket_meta(checkpoint)
        meta['arch'] = full_arch(runner)
        meta[key] = state

    @staticmethod
    def load_ticket_state(runner, checkpoint: dict,
                          key: str) -> Optional[dict]:
        """Rebuild the checkpoint's subnet (before its weights are loaded)
        and return the state saved under ``key``, if any."""
        meta = ticket_meta(checkpoint) or {}
        if 'arch' in meta:
            ensure_arch(runner, meta['arch'])
        return meta.get(key)

    def planned_events(self, runner, interval) -> int:
        if interval is None:
            return 0
        if self.by_epoch:
            period = int(round(interval * self.iters_per_epoch(runner)))
            return runner.max_iters // max(period, 1)
        return (runner.max_iters // self.accumulation(runner)) // int(interval)


def model_status(runner, masks=None, prunable=None,
                 input_shape=None) -> Dict[str, float]:
    """Structure, sparsity and (with ``input_shape``) cost of the model."""
    model = unwrap(runner.model)
    units = find_searchable_units(model)
    blocks = find_searchable_blocks(model)
    status = dict(
        live_channels=sum(u.channels for u in units),
        kernel_paths=len(units),
        live_blocks=sum(1 for b in blocks.values() if len(b.paths)))
    densities = None
    if masks is not None and prunable:
        kept, total = masks.kept_and_total(model, prunable)
        status.update(sparsity=1 - kept / max(total, 1),
                      prunable_weights=total)
        per_stage = {}
        for name in prunable:
            stage = '.'.join(name.split('.')[:2])
            k, t = masks.kept_and_total(model, [name])
            acc = per_stage.setdefault(stage, [0, 0])
            acc[0] += k
            acc[1] += t
        for stage, (k, t) in per_stage.items():
            status[f'sparsity/{stage}'] = 1 - k / max(t, 1)
        densities = masks.densities(prunable)
    if input_shape is not None:
        cost = complexity(model, input_shape, densities)
        status.update(params=cost['params'], macs=cost['macs'])
        if densities is not None:
            status.update(sparse_params=cost['sparse_params'],
                          sparse_macs=cost['sparse_macs'],
                          macs_x_global_density=cost['macs_x_global_density'])
    return status


def report_event(runner, event: str, status: Dict[str, float]) -> None:
    """Log an event, send its scalars to the visualizer, append to a file.

    ``<work_dir>/supertickets_events.jsonl`` gets one JSON line per event,
    which the demo report and plots read.
    """
    scalars = {f'supertickets/{k}': v for k, v in status.items()
               if isinstance(v, (int, float))}
    if runner.visualizer is not None:
        runner.visualizer.add_scalars(scalars, step=runner.iter + 1)
    parts = []
    for key in ('target_sparsity', 'sparsity', 'rho', 'live_channels',
                'kernel_paths', 'live_blocks', 'params', 'macs',
                'sparse_macs', 'macs_x_global_density'):
        if key in status:
            v = status[key]
            parts.append(f'{key}={v:.4f}' if isinstance(v, float) and v < 1
                         else f'{key}={format_count(v)}'
                         if key.endswith(('macs', 'params', 'density'))
                         else f'{key}={v}')
    print_log(f'[SuperTickets] {event} at iter {runner.iter + 1} '
              f'(epoch {runner.epoch}): ' + ', '.join(parts), logger='current')
    if is_main_process():
        record = dict(event=event, iter=runner.iter + 1, epoch=runner.epoch,
                      **status)
        with open(osp.join(runner.work_dir, 'supertickets_events.jsonl'),
                  'a') as f:
            f.write(json.dumps(record) + '\n')
