"""The sweep's runs and their order: the plan of every run with the runs
it needs, and on a rerun which are still to do (resuming), which can
start, and which a failure takes down with it."""
import os.path as osp
from typing import Dict, List, Sequence

from .sweep_store import RunStore, failed_record, run_key

__all__ = ['SCORERS', 'plan_tasks', 'TaskSchedule']

SCORERS = ('random', 'magnitude', 'snip')
_KIND_ORDER = {'search': 0, 'supertickets': 1, 'supertickets-rt': 2,
               'sp': 3}


def plan_tasks(ratios: Sequence[float], seeds: Sequence[int],
               retrain: int) -> List[dict]:
    """Every run of the sweep with the store keys it fills and the runs it
    needs, in the order they are preferred (seed by seed)."""
    tasks = []
    for seed in seeds:
        search = f'search_s{seed}'
        tasks.append(dict(id=search, kind='search', seed=seed, ratio=0.0,
                          needs=None,
                          keys=[run_key('search-only', 0.0, seed, 0)]))
        for ratio in ratios:
            st = f'supertickets_r{ratio:g}_s{seed}'
            tasks.append(dict(
                id=st, kind='supertickets', seed=seed, ratio=ratio,
                needs=None, keys=[run_key('supertickets', ratio, seed, 0)]))
            if retrain:
                tasks.append(dict(
                    id=st + '_rt', kind='supertickets-rt', seed=seed,
                    ratio=ratio, needs=st, retrain=retrain,
                    keys=[run_key('supertickets', ratio, seed, retrain)]))
        for scorer in SCORERS:
            for ratio in ratios:
                method = f'sp-{scorer}'
                tasks.append(dict(
                    id=f'{method}_r{ratio:g}_s{seed}', kind='sp', seed=seed,
                    ratio=ratio, scorer=scorer, needs=search,
                    retrain=retrain,
                    keys=[run_key(method, ratio, seed, rt)
                          for rt in ((0, retrain) if retrain else (0, ))]))
    tasks.sort(key=lambda t: (t['seed'], _KIND_ORDER[t['kind']]))
    return tasks


class TaskSchedule:
    """Which tasks of a plan are left to run given what ``store`` holds,
    which of them can start, and what fails with a failed one.

    Args:
        tasks (list[dict]): The plan, as from :func:`plan_tasks`.
        store (RunStore): The stored records.

    Attributes:
        todo (list[dict]): The tasks to run, in the plan's order.
        pending (set[str]): Ids of the tasks not finished yet.

    Example:
        >>> import shutil, tempfile
        >>> root = tempfile.mkdtemp()
        >>> schedule = TaskSchedule(plan_tasks([0.5], [0], 0), RunStore(root))
        >>> [t['id'] for t in schedule.ready({})]
        ['search_s0', 'supertickets_r0.5_s0']
        >>> shutil.rmtree(root)
    """

    def __init__(self, tasks: List[dict], store: RunStore):
        self.tasks, self.store = tasks, store
        self.by_id = {t['id']: t for t in tasks}
        self.dependents: Dict[str, List[str]] = {}
        for t in tasks:
            if t['needs']:
                self.dependents.setdefault(t['needs'], []).append(t['id'])
        self.todo = [t for t in tasks if not self.done(t)]
        self.pending = {t['id'] for t in self.todo}

    def done(self, task: dict) -> bool:
        """Whether every record of ``task`` is stored and, when a
        dependent still has to run, the checkpoint it reads is there."""
        if not all(self.store.ok(k) for k in task['keys']):
            return False
        pending = [d for d in self.dependents.get(task['id'], [])
                   if not self.done(self.by_id[d])]
        # A parent whose checkpoint is gone runs again for its dependents.
        return not pending or osp.isfile(
            self.store.get(task['keys'][0]).get('checkpoint') or '')

    def ready(self, running: dict):
        """The pending tasks not in ``running`` (``{future: task id}``)
        whose needed run is stored; a generator, read as tasks start."""
        for t in self.tasks:
            if t['id'] not in self.pending or t['id'] in running.values():
                continue
            need = t['needs']
            if need and (need in self.pending or not all(
                    self.store.ok(k) for k in self.by_id[need]['keys'])):
                continue
            yield t

    def fail_dependents(self, task_id: str, why: str) -> List[str]:
        """Store every pending task depending on ``task_id`` (directly or
        not) as failed with ``why``; their ids."""
        failed = []
        for d in self.dependents.get(task_id, []):
            if d in self.pending:
                self.pending.discard(d)
                for key in self.by_id[d]['keys']:
                    self.store.put(failed_record(key, why))
                failed.append(d)
                failed += self.fail_dependents(d, why)
        return failed
