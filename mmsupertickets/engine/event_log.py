"""The event log: one line per event in the log, the visualizer and a file.
"""
import json
import math
import os.path as osp
from typing import Dict, List, Optional, Set, Tuple

from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from mmsupertickets.flops import format_count
from mmsupertickets.utils.atomic_write import _write_atomically

from .run_state import TicketRunState
from .ticket_meta import EVENTS_FILE

__all__ = ['report_event', 'log_idle_shrink']

# Runtime info of the message hub, so saved in every checkpoint: how many
# lines the events file held after the run's last event.
EVENT_LINES_KEY = 'supertickets/event_lines'


def _event_key(record: dict) -> Tuple:
    return (record.get('event'), record.get('iter'), record.get('epoch'))


def _read_lines(path: str) -> List[str]:
    """The JSON lines of ``path``; a line a kill cut short is dropped."""
    if not osp.isfile(path):
        return []
    lines = []
    with open(path) as f:
        for line in f:
            try:
                json.loads(line)
            except ValueError:
                continue
            lines.append(line.rstrip('\n') + '\n')
    return lines


def _sync_events_file(runner, path: str) -> Dict:
    """Bring the events file in line with the run's state, once per runner.

    A resumed run replays the steps after its checkpoint, so their events
    come again: the lines the file got after that checkpoint (counted in
    the checkpoint's message hub) are dropped. A fresh run keeps what the
    file holds and appends to it, as before.
    """
    lines = _read_lines(path)
    kept = lines
    logged = runner.message_hub.get_info(EVENT_LINES_KEY)
    resumed = TicketRunState.of(runner).resumed
    if resumed and isinstance(logged, int):
        kept = lines[:logged]
    seen: Set[Tuple] = set()
    if resumed:
        # Without a count (a checkpoint older than the run's first event)
        # the whole file is checked for events already written.
        seen = {_event_key(json.loads(line)) for line in kept}
    if kept != lines or (osp.isfile(path) and _file_differs(path, kept)):
        _write_atomically(path, lambda f: f.write(''.join(kept).encode()))
    return dict(seen=seen, count=len(kept))


def _file_differs(path: str, lines: List[str]) -> bool:
    with open(path) as f:
        return f.read() != ''.join(lines)


def event_epoch(runner, clock=None) -> Optional[int]:
    """The 1-based epoch that iteration ``runner.iter`` is in, or None.

    With a ``clock`` (the hook's :class:`EventClock`) counting epochs, the
    hooks' epochs, which they count in iteration-based loops too (an event
    at the end of the k-th epoch is in epoch k). Otherwise the runner's
    epoch in an epoch-based loop, numbered as mmengine logs it; an
    iteration-based loop has none (its ``runner.epoch`` stays 0).
    """
    if clock is not None and clock.by_epoch:
        return math.ceil((runner.iter + 1) / clock.iters_per_epoch)
    if isinstance(getattr(runner, '_train_loop', None), EpochBasedTrainLoop):
        return runner.epoch + 1
    return None


def report_event(runner, event: str, status: Dict[str, float],
                 clock=None) -> None:
    """Log an event, send its scalars to the visualizer, append to a file.

    ``<work_dir>/supertickets_events.jsonl`` (:data:`EVENTS_FILE`) gets one
    JSON line per event, which the demo report and plots read. The file
    stays free of duplicates across resumes: a resumed run first drops the
    lines written after the checkpoint it resumed from (they are replayed),
    and an event already in the file for the same kind, iteration and
    epoch is not written again. ``clock`` (the reporting hook's
    :class:`~mmsupertickets.engine.event_clock.EventClock`) gives the
    event's epoch (see :func:`event_epoch`).
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
    epoch = event_epoch(runner, clock)
    when = f'iter {runner.iter + 1}' + (
        f' (epoch {epoch})' if epoch is not None else '')
    print_log(f'[SuperTickets] {event} at {when}: ' + ', '.join(parts),
              logger='current')
    if not is_main_process():
        return
    path = osp.join(runner.work_dir, EVENTS_FILE)
    state = TicketRunState.of(runner)
    if state.events is None:
        state.events = _sync_events_file(runner, path)
    run = state.events
    record = dict(event=event, iter=runner.iter + 1, epoch=epoch, **status)
    key = _event_key(record)
    if key not in run['seen']:
        with open(path, 'a') as f:
            f.write(json.dumps(record) + '\n')
        run['seen'].add(key)
        run['count'] += 1
    runner.message_hub.update_info(EVENT_LINES_KEY, run['count'])


def log_idle_shrink(runner, final: bool, guarded: bool, dead_macs: float,
                    keys: dict, cost: str,
                    steer: Optional[dict] = None) -> None:
    """Log why a shrink event removes no channel: the ``min_macs`` guard
    held it back (``guarded``) or no |γ| is under the threshold.

    ``keys`` holds the hook's ``min_macs``, ``threshold`` and the
    ``min_macs_shape`` the guard counts at; ``steer`` the budget
    controller's step, when there is a budget of ``cost``.
    """
    budget = ''
    if steer is not None:
        budget = (f'; {cost} gap to the budget {steer[cost + "_gap"]:+.1%}'
                  f', rho {steer["controlled_rho"]:.3g} -> '
                  f'{steer["next_rho"]:.3g}')
    # The guard counts at min_macs_shape, whatever input_shape is; the
    # last shrink has no guard, it only finds nothing dead.
    shape = 'x'.join(map(str, keys['min_macs_shape']))
    why = (f'dead channels hold {dead_macs:.3g} MACs counted at '
           f'min_macs_shape={shape} (< min_macs={keys["min_macs"]:.3g})'
           ) if guarded else (
               f'no channel has |gamma| <= threshold={keys["threshold"]:g}')
    print_log(
        f'[SuperTickets] {"final " if final else ""}shrink '
        f'{"skipped" if guarded else "removes nothing"} at iter '
        f'{runner.iter + 1}: {why}{budget}', logger='current')
