"""The sweep's progress lines: each finished run with its headline metric
and an estimate of the time left, and the closing summary."""
import time
from typing import Dict, Iterable, List, Optional

__all__ = ['progress_line', 'summary_line']


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


def _headline(record: dict, metric: Optional[str]) -> str:
    metrics = record.get('metrics') or {}
    if metric and metric in metrics:
        return f'{metric} {metrics[metric]:.2f}'
    if metrics:
        k = next(iter(metrics))
        return f'{k} {metrics[k]:.2f}'
    return 'no metrics'


def progress_line(task: dict, result: dict, done_count: int, total: int,
                  start: float, times: Dict[str, List[float]],
                  pending: Iterable[str], by_id: dict, jobs: int,
                  metric: Optional[str]) -> str:
    """The line logged when ``task`` finished with ``result``; the time
    left assumes each pending task takes the mean of the finished ones of
    its kind (``times``: seconds by kind) and ``jobs`` run at once.

    Example:
        >>> import time
        >>> task = dict(id='search_s0', kind='search')
        >>> result = dict(seconds=60.0, records=[dict(
        ...     status='ok', retrain=0, metrics={'mIoU': 40.0})])
        >>> progress_line(task, result, 1, 3, time.time(),
        ...               {'search': [60.0]}, [], {}, 1, 'mIoU')
        '[claims] 1/3 search_s0 (60 s): rt=0: mIoU 40.00 | elapsed ... left'
    """
    every = [s for v in times.values() for s in v]
    mean_all = sum(every) / len(every) if every else 0.0
    left = sum((sum(times[by_id[i]['kind']]) / len(times[by_id[i]['kind']])
                if times.get(by_id[i]['kind']) else mean_all)
               for i in pending) / jobs
    parts = []
    for r in result['records']:
        what = _headline(r, metric) if r['status'] == 'ok' else \
            f'FAILED ({r.get("error")})'
        parts.append(f'rt={r["retrain"]}: {what}')
    return (f'[claims] {done_count}/{total} {task["id"]} '
            f'({result["seconds"]:.0f} s): {"; ".join(parts)} | elapsed '
            f'{_fmt_time(time.time() - start)}, ~{_fmt_time(left)} left')


def summary_line(ran: int, failed: int, wall: float, jobs: int,
                 share: float) -> str:
    """The line logged when the sweep ends.

    Example:
        >>> summary_line(3, 0, 3700, 2, 0.9)[:45]
        '[claims] 3 runs in 1:01:40 with 2 worker(s), '
    """
    return (f'[claims] {ran} runs in {_fmt_time(wall)} with {jobs} '
            f'worker(s), {failed} failed; {share:.1%} of the workers\' time '
            'was inside runs (building runners, training, evaluating), the '
            'rest process start-up, imports and waiting')
