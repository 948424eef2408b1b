"""The paper's sweep: SuperTickets and S+P arms derived from one config,
run as store-keyed stock-runner jobs in long-lived worker processes.

From a config with the SuperTickets hooks, for every seed:

- ``supertickets`` at each ratio: the config with the pruning hook's
  ``target_sparsity`` set to the ratio, trained for its schedule; with
  ``retrain`` > 0 the ticket is then trained ``retrain`` more iterations
  with masks and architecture fixed (search and reactivation hooks
  removed, the pruning hook never prunes), resuming the run's optimizer,
  LR schedule and EMA;
- ``search-only``: the config without pruning and reactivation hooks,
  trained for the same schedule (one run per seed, shared by every S+P
  ratio and scorer);
- ``sp-<scorer>`` at each ratio: :func:`~mmsupertickets.apis.oneshot.
  prune_oneshot` of the search-only checkpoint (random, magnitude, SNIP),
  evaluated as pruned and after ``retrain`` iterations with masks fixed,
  resuming the search run the same way.

Every run evaluates once, at its end, and a :class:`~mmsupertickets.engine.
hooks.BNRecalibrationHook` re-estimates BN statistics right before every
evaluation of every arm (after ``EMAHook`` swapped in the averaged weights
when the config keeps an EMA), so the arms differ only in how they chose
their weights. Each result is a small JSON file ``runs/<key>.json`` keyed by
(method, ratio, seed, retrain); a rerun skips every key already stored, so a
killed sweep resumes where it stopped. Runs that fail are stored with their
error and the sweep goes on.

Here the driver; the arms' configs are derived in :mod:`.sweep_configs`,
the plan and what a rerun still has to do in :mod:`.sweep_schedule`, the
records kept by :mod:`.sweep_store`, a run executed by :mod:`.sweep_worker`
and logged by :mod:`.sweep_progress`.
"""
import functools
import os
import os.path as osp
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Callable, List, Optional, Sequence

# fixed_mask_config and supertickets_config were defined here: re-exported.
from .sweep_configs import (  # noqa: F401
    derive_arms,
    fixed_mask_config,
    supertickets_config,
    write_arm_configs,
    write_task_config,
)
from .sweep_progress import progress_line, summary_line
from .sweep_schedule import SCORERS, TaskSchedule, plan_tasks
from .sweep_store import RunStore, failed_record, run_key
from .sweep_worker import execute_task, init_worker

__all__ = [
    'SCORERS', 'run_key', 'RunStore', 'derive_arms', 'plan_tasks',
    'run_sweep', 'execute_task', 'slurm_script'
]


def run_sweep(config,
              out_dir: str,
              ratios: Sequence[float],
              seeds: Sequence[int],
              retrain: int = 0,
              jobs: int = 1,
              work_dir: Optional[str] = None,
              snip_batches: int = 100,
              bn_samples: Optional[int] = None,
              quick: bool = False,
              data_root: Optional[Sequence[str]] = None,
              max_runs: Optional[int] = None,
              metric: Optional[str] = None,
              log: Callable[[str], None] = print) -> dict:
    """Run (or resume) the sweep; results go to ``out_dir/runs``.

    Args:
        config (str | Config): A SuperTickets config.
        out_dir (str): The store (small JSON files; commit them).
        ratios, seeds: The pruning ratios and seeds.
        retrain (int): Iterations of retraining with masks fixed for the
            w/ RT arms; 0 runs none.
        jobs (int): Worker processes (each imports once and runs one
            stock runner after another).
        work_dir (str, optional): Checkpoints and logs of the runs.
            Defaults to ``out_dir/work``.
        snip_batches (int): Batches the SNIP gradient averages over.
        max_runs (int, optional): Stop after this many runs (a cluster
            time slot); a rerun goes on from there.
        metric (str, optional): Shown in the progress lines.

    Returns:
        dict: ``ran`` (task ids run now), ``skipped`` (already stored),
        ``failed``, ``wall`` seconds and ``busy`` seconds inside runs.
    """
    ratios = _checked_ratios(ratios, seeds, retrain, jobs)
    out_dir = osp.abspath(out_dir)
    work_dir = osp.abspath(work_dir or osp.join(out_dir, 'work'))
    store = RunStore(out_dir)
    _make_work_dir(out_dir, work_dir)
    arms = write_arm_configs(config, seeds, work_dir, bn_samples, quick,
                             data_root)
    schedule = TaskSchedule(plan_tasks(ratios, seeds, retrain), store)
    total, todo = len(schedule.tasks), len(schedule.todo)
    log(f'[claims] {total} runs planned, {total - todo} already stored, '
        f'{todo} to run with {jobs} worker(s); records in '
        f'{store.root}, checkpoints and logs in {work_dir}')
    spec_of = functools.partial(_task_spec, arms=arms, work_dir=work_dir,
                                snip_batches=snip_batches, schedule=schedule)
    driver = _SweepDriver(schedule, jobs, max_runs, spec_of, log, metric)
    driver.run()
    wall = time.time() - driver.start
    share = driver.busy / max(wall * jobs, 1e-9)
    log(summary_line(len(driver.ran), len(driver.failed), wall, jobs, share))
    return dict(ran=driver.ran, skipped=total - todo, failed=driver.failed,
                wall=wall, busy=driver.busy, share=share)


def _checked_ratios(ratios, seeds, retrain: int, jobs: int) -> List[float]:
    ratios = [float(r) for r in ratios]
    for r in ratios:
        if not 0 < r < 1:
            raise ValueError(f'ratio {r} is outside (0, 1)')
    if len(set(ratios)) != len(ratios) or len(set(seeds)) != len(seeds):
        raise ValueError(f'ratios {ratios} or seeds {list(seeds)} repeat')
    if retrain < 0 or jobs < 1:
        raise ValueError(f'retrain={retrain} must be >= 0 and jobs={jobs} '
                         '>= 1')
    return ratios


def _make_work_dir(out_dir: str, work_dir: str) -> None:
    os.makedirs(work_dir, exist_ok=True)
    if work_dir.startswith(out_dir + os.sep):
        # Checkpoints stay out of version control; the records go in.
        with open(osp.join(out_dir, '.gitignore'), 'w') as f:
            f.write(osp.relpath(work_dir, out_dir) + '/\n')


def _task_spec(task: dict, arms: dict, work_dir: str, snip_batches: int,
               schedule: TaskSchedule) -> dict:
    """What a worker needs to run ``task``: its config written, its work
    dir and the record of the run it needs."""
    spec = dict(task, config=write_task_config(arms, task, work_dir),
                work_dir=osp.join(work_dir, task['id']),
                snip_batches=snip_batches)
    if task['needs']:
        parent = schedule.by_id[task['needs']]['keys'][0]
        spec['parent'] = schedule.store.get(parent)
    return spec


def _start_workers(jobs: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(jobs, mp_context=get_context('spawn'),
                               initializer=init_worker)


class _SweepDriver:
    """Keeps ``jobs`` workers busy with the schedule's ready tasks until
    none is left (or ``max_runs`` ran), storing each result as it comes."""

    def __init__(self, schedule: TaskSchedule, jobs: int,
                 max_runs: Optional[int], spec_of: Callable[[dict], dict],
                 log: Callable[[str], None], metric: Optional[str]):
        self.schedule, self.jobs, self.max_runs = schedule, jobs, max_runs
        self.spec_of, self.log, self.metric = spec_of, log, metric
        self.running = {}  # future -> task id
        self.ran, self.failed, self.times = [], [], {}
        self.busy = 0.0
        self.start = time.time()

    def _at_max_runs(self) -> bool:
        return self.max_runs is not None and \
            len(self.ran) + len(self.running) >= self.max_runs

    def _submit_ready(self, pool: ProcessPoolExecutor) -> None:
        for t in self.schedule.ready(self.running):
            if len(self.running) >= self.jobs:
                break
            future = pool.submit(execute_task, self.spec_of(t))
            self.running[future] = t['id']
            if self._at_max_runs():
                break

    def run(self) -> None:
        self.start = time.time()
        pool = _start_workers(self.jobs)
        try:
            while self.schedule.pending:
                if self._at_max_runs():
                    if not self.running:
                        break
                else:
                    self._submit_ready(pool)
                if not self.running:
                    break  # nothing can run: every remaining need failed
                finished, _ = wait(list(self.running),
                                   return_when=FIRST_COMPLETED)
                for future in finished:
                    task = self.schedule.by_id[self.running.pop(future)]
                    try:
                        result = future.result()
                    except BrokenProcessPool as e:
                        # A worker died (killed, out of memory): record, go
                        # on with fresh workers.
                        result = dict(seconds=0.0, records=[
                            failed_record(k, f'worker died: {e}')
                            for k in task['keys']])
                        pool.shutdown(cancel_futures=True)
                        pool = _start_workers(self.jobs)
                    self._finish(task, result)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _finish(self, task: dict, result: dict) -> None:
        """Store the records of a finished task and log its line."""
        self.schedule.pending.discard(task['id'])
        self.ran.append(task['id'])
        self.busy += result['seconds']
        for record in result['records']:
            self.schedule.store.put(record)
        if all(r['status'] == 'ok' for r in result['records']):
            self.times.setdefault(task['kind'], []).append(result['seconds'])
        else:
            self.failed.append(task['id'])
            self.failed += self.schedule.fail_dependents(
                task['id'], f'{task["id"]} failed')
        self.log(progress_line(
            task, result, len(self.ran), len(self.schedule.todo), self.start,
            self.times, self.schedule.pending, self.schedule.by_id,
            self.jobs, self.metric))


def slurm_script(command: Sequence[str], seeds: Sequence[int],
                 out_dir: str) -> str:
    """A Slurm script: a job array with one task per seed, each running
    that seed's part of the same store-keyed sweep (``command`` plus
    ``--seeds <seed> --jobs 1``), then a job that draws the report from
    the stored results once they are all done."""
    import shlex
    cmd = ' '.join(shlex.quote(a) for a in command)
    seeds_list = ' '.join(str(s) for s in seeds)
    return f"""#!/usr/bin/env bash
# The claims sweep on a Slurm cluster, resuming the store-keyed runs in
# {out_dir}/runs. Submit with: SLURM_PARTITION=... bash THIS_FILE
set -e
PART=${{SLURM_PARTITION:?set SLURM_PARTITION}}
SEEDS=({seeds_list})
array=$(sbatch --parsable -p "$PART" --cpus-per-task=2 \\
    --array=0-$((${{#SEEDS[@]}} - 1)) --wrap "SEEDS=({seeds_list}); \\
    {cmd} --jobs 1 --seeds \\${{SEEDS[\\$SLURM_ARRAY_TASK_ID]}}")
sbatch -p "$PART" --dependency=afterany:$array \\
    --wrap "{cmd} --seeds {seeds_list} --report-only"
"""
