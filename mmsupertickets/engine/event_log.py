"""The event log: one line per event in the log, the visualizer and a file.
"""
import json
import os.path as osp
from typing import Dict

from mmengine.dist import is_main_process
from mmengine.logging import print_log

from mmsupertickets.flops import format_count
from .ticket_meta import EVENTS_FILE

__all__ = ['report_event']


def report_event(runner, event: str, status: Dict[str, float]) -> None:
    """Log an event, send its scalars to the visualizer, append to a file.

    ``<work_dir>/supertickets_events.jsonl`` (:data:`EVENTS_FILE`) gets one
    JSON line per event,
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
        with open(osp.join(runner.work_dir, EVENTS_FILE),
                  'a') as f:
            f.write(json.dumps(record) + '\n')
