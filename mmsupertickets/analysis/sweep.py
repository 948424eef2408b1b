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
"""
import copy
import glob
import json
import os
import os.path as osp
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Callable, List, Optional, Sequence

from mmengine.config import Config

__all__ = [
    'SCORERS', 'run_key', 'RunStore', 'derive_arms', 'plan_tasks',
    'run_sweep', 'execute_task', 'slurm_script'
]

SCORERS = ('random', 'magnitude', 'snip')
_KIND_ORDER = {'search': 0, 'supertickets': 1, 'supertickets-rt': 2,
               'sp': 3}


def run_key(method: str, ratio: float, seed: int, retrain: int) -> str:
    """The store key of one result, e.g. ``'sp-snip_r0.9_s0_rt100'``."""
    return f'{method}_r{ratio:g}_s{seed}_rt{retrain}'


class RunStore:
    """One small JSON file per result under ``<root>/runs``."""

    def __init__(self, root: str):
        self.root = osp.join(root, 'runs')
        os.makedirs(self.root, exist_ok=True)

    def path(self, key: str) -> str:
        return osp.join(self.root, key + '.json')

    def get(self, key: str) -> Optional[dict]:
        try:
            with open(self.path(key)) as f:
                return json.load(f)
        except (OSError, json.JSONDecodeError):
            return None

    def ok(self, key: str) -> bool:
        record = self.get(key)
        return record is not None and record.get('status') == 'ok'

    def put(self, record: dict) -> None:
        path = self.path(record['key'])
        with open(path + '.tmp', 'w') as f:
            json.dump(record, f, indent=1, sort_keys=True)
        os.replace(path + '.tmp', path)

    def records(self) -> List[dict]:
        out = []
        for path in sorted(glob.glob(osp.join(self.root, '*.json'))):
            try:
                with open(path) as f:
                    out.append(json.load(f))
            except (OSError, json.JSONDecodeError):
                continue  # a file cut off by a kill: rerun it
        return out


# -- deriving the arms from one config --------------------------------------
def _hook_type(hook) -> str:
    t = hook.get('type') if isinstance(hook, dict) else type(hook)
    name = t if isinstance(t, str) else getattr(t, '__name__', str(t))
    return name.split('.')[-1]


def _find_hook(cfg: Config, name: str) -> Optional[dict]:
    return next((h for h in cfg.get('custom_hooks') or []
                 if _hook_type(h) == name), None)


def _without_hooks(cfg: Config, names: Sequence[str]) -> Config:
    cfg = copy.deepcopy(cfg)
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks') or []
                        if _hook_type(h) not in names]
    return cfg


def _schedule_end(cfg: Config) -> tuple:
    """``('iters' | 'epochs', end)`` of the config's training loop."""
    train_cfg = cfg.get('train_cfg') or {}
    if 'max_iters' in train_cfg:
        return 'iters', int(train_cfg['max_iters'])
    if 'max_epochs' in train_cfg:
        return 'epochs', int(train_cfg['max_epochs'])
    raise ValueError('train_cfg has neither max_iters nor max_epochs: '
                     f'{dict(train_cfg)}')


def _evaluate_once_at_end(cfg: Config) -> None:
    """One evaluation, after the last iteration; one checkpoint, there."""
    unit, end = _schedule_end(cfg)
    cfg.train_cfg.val_interval = end
    cfg.train_cfg.pop('val_begin', None)
    ckpt = dict(cfg.get('default_hooks', {}).get('checkpoint') or
                dict(type='CheckpointHook'))
    ckpt.update(interval=end, by_epoch=unit == 'epochs', max_keep_ckpts=1,
                save_last=True, save_best=None)
    cfg.default_hooks = dict(cfg.get('default_hooks') or {}, checkpoint=ckpt)


def _shorten(cfg: Config, iters: int) -> None:
    """An iteration-based schedule cut to ``iters`` (scheduler bounds and
    T_max scaled with it); the pipeline check of ``--quick``."""
    unit, end = _schedule_end(cfg)
    if unit != 'iters':
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                             val_interval=iters)
        for sched in cfg.get('param_scheduler') or []:
            sched['by_epoch'] = False
            sched.pop('convert_to_iter_based', None)
        end = 1 if unit == 'epochs' else end
    scale = iters / end
    for sched in cfg.get('param_scheduler') or []:
        for key in ('begin', 'end', 'T_max', 'total_steps'):
            if key in sched:
                sched[key] = max(1, round(sched[key] * scale)) \
                    if key != 'begin' else round(sched[key] * scale)
        if 'end' in sched:
            sched['end'] = max(sched['end'], sched.get('begin', 0) + 1)
    cfg.train_cfg.max_iters = iters


def derive_arms(config, seed: int, bn_samples: Optional[int] = None,
                quick: bool = False,
                data_root: Optional[Sequence[str]] = None) -> dict:
    """The search-only and SuperTickets configs of one seed, from
    ``config`` (the SuperTickets one; a ratio is set per run).

    Same data, model, optimizer and schedule; the pruning hook must be
    there, and the search hook too. A ``BNRecalibrationHook`` is added
    (``bn_samples`` samples; default: the config's ``PreciseBNHook``'s,
    else 200) and the runs evaluate once, at their end.

    Args:
        data_root: ``(old, new)`` path prefix replaced in the config.
        quick: A few iterations with events every epoch (tests).

    Returns:
        dict: ``supertickets`` and ``search`` configs (Config).
    """
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    cfg = copy.deepcopy(cfg)
    if data_root:
        from mmsupertickets.testing import redirect_paths
        cfg = Config(redirect_paths(cfg.to_dict(), *data_root),
                     filename=cfg.filename)
    for name in ('SuperNetSearchHook', 'ProgressivePruningHook'):
        if _find_hook(cfg, name) is None:
            raise ValueError(f'the config has no {name} in custom_hooks: '
                             'the sweep derives its arms from a SuperTickets '
                             'config (SuperNetSearchHook, '
                             'ProgressivePruningHook)')
    if quick:
        from mmsupertickets.testing import events_every_epoch
        _shorten(cfg, 4)
        cfg.train_dataloader.batch_size = 2
        events_every_epoch(cfg)
        bn_samples = bn_samples or 4
    precise = _find_hook(cfg, 'PreciseBNHook')
    if bn_samples is None:
        bn_samples = int(precise.get('num_samples', 200)) if precise \
            else 200
    cfg.custom_hooks = list(cfg.custom_hooks) + [
        dict(type='BNRecalibrationHook', num_samples=bn_samples)]
    _evaluate_once_at_end(cfg)
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)
    cfg.resume = False
    cfg.load_from = None
    search = _without_hooks(cfg, ('ProgressivePruningHook',
                                  'IterativeReactivationHook'))
    return dict(supertickets=cfg, search=search)


def supertickets_config(cfg: Config, ratio: float) -> Config:
    """``cfg`` with the pruning hook's target set to ``ratio``."""
    cfg = copy.deepcopy(cfg)
    _find_hook(cfg, 'ProgressivePruningHook')['target_sparsity'] = ratio
    return cfg


def fixed_mask_config(cfg: Config, ratio: float) -> Config:
    """Retraining of a ticket with its masks and architecture fixed: no
    search, no reactivation, a pruning hook that never prunes (it rebuilds
    the subnet and loads the masks from the checkpoint)."""
    pp = dict(_find_hook(cfg, 'ProgressivePruningHook'))
    cfg = _without_hooks(cfg, ('SuperNetSearchHook', 'ProgressivePruningHook',
                               'IterativeReactivationHook'))
    pp.update(target_sparsity=ratio, prune_interval=None,
              reactivation=None)
    cfg.custom_hooks = list(cfg.custom_hooks) + [pp]
    return cfg


# -- the plan ---------------------------------------------------------------
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


# -- what a worker runs -----------------------------------------------------
def _build_runner(cfg: Config, name: str):
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    cfg = copy.deepcopy(cfg)
    # Loggers and visualizers are global instances looked up by name.
    cfg.experiment_name = f'{name}_{os.getpid()}_{time.time_ns()}'
    if 'runner_type' in cfg:
        with RUNNERS.switch_scope_and_registry(
                cfg.get('default_scope')) as runners:
            return runners.build(cfg)
    return Runner.from_cfg(cfg)


def _release(runner) -> None:
    """Close the run's log files and forget its named global instances."""
    from mmengine.utils import ManagerMixin
    name = runner.experiment_name
    todo = [ManagerMixin]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        instance = cls._instance_dict.pop(name, None)
        for handler in getattr(instance, 'handlers', []):
            handler.close()


def _ticket_cost(runner) -> dict:
    """Sparsity and costs of the runner's model at the search's profiling
    size (its mask owner's masks when it has one)."""
    from mmsupertickets.engine.run_state import TicketRunState
    from mmsupertickets.engine.runner_surgery import unwrap
    state = TicketRunState.of(runner)
    model = unwrap(runner.model)
    owner = state.mask_owner
    densities = owner.masks.densities(list(owner.prunable(runner))) \
        if owner is not None else {}
    cost = state.estimator.complexity(model, densities)
    return dict(sparsity=owner.sparsity(runner) if owner else 0.0,
                macs=cost['sparse_macs'],
                macs_global=cost['macs_x_global_density'],
                dense_macs=cost['macs'], params=cost['sparse_params'],
                input_shape=cost['input_shape'])


def _train(cfg: Config, name: str) -> dict:
    from mmsupertickets.apis.oneshot import MetricsRecorder, scalar_metrics
    recorder = MetricsRecorder()
    runner = _build_runner(cfg, name)
    runner.register_hook(recorder)
    try:
        runner.train()
        if recorder.at_iter != runner.iter:
            runner.val()
        with open(osp.join(cfg.work_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
        return dict(metrics=scalar_metrics(recorder.metrics),
                    checkpoint=checkpoint, end_iter=runner.iter,
                    **_ticket_cost(runner))
    finally:
        _release(runner)


def _run_task(task: dict) -> List[dict]:
    """Run one task in this process; its records (status ok)."""
    cfg = Config.fromfile(task['config'])
    work_dir = task['work_dir']
    cfg.work_dir = work_dir
    common = dict(seed=task['seed'], config=task['config'])
    if task['kind'] in ('search', 'supertickets'):
        res = _train(cfg, task['id'])
        method = 'search-only' if task['kind'] == 'search' else \
            'supertickets'
        return [dict(common, method=method, ratio=task['ratio'], retrain=0,
                     iters=res.pop('end_iter'), **res)]
    if task['kind'] == 'supertickets-rt':
        from mmsupertickets.apis.oneshot import retrain_loop
        parent = task['parent']
        cfg.train_cfg = retrain_loop(cfg, iters=task['retrain'],
                                     start_iter=parent['iters'])
        cfg.resume = True
        cfg.load_from = parent['checkpoint']
        res = _train(cfg, task['id'])
        cost = {k: parent[k] for k in ('sparsity', 'macs', 'macs_global',
                                       'dense_macs', 'params',
                                       'input_shape')}
        return [dict(common, method='supertickets', ratio=task['ratio'],
                     retrain=task['retrain'], iters=res['end_iter'],
                     metrics=res['metrics'], sparsity_after=res['sparsity'],
                     **cost)]
    if task['kind'] == 'sp':
        from mmsupertickets.apis.oneshot import prune_oneshot
        parent = task['parent']
        retrain = task['retrain']
        res = prune_oneshot(
            cfg, parent['checkpoint'], task['scorer'], task['ratio'],
            work_dir, retrain=bool(retrain), retrain_iters=retrain or None,
            seed=task['seed'], snip_batches=task['snip_batches'])
        cost = res['complexity']
        common.update(method=f'sp-{task["scorer"]}', ratio=task['ratio'],
                      sparsity=res['sparsity'], macs=cost['sparse']['macs'],
                      macs_global=cost['macs_x_global_density'],
                      dense_macs=cost['dense_subnet']['macs'],
                      params=cost['sparse']['params'],
                      input_shape=res['input_shape'])
        out = [dict(common, retrain=0, iters=parent['iters'],
                    metrics=res['metrics']['oneshot'])]
        if retrain:
            out.append(dict(common, retrain=retrain,
                            iters=res['retrain']['iters'],
                            metrics=res['metrics']['retrained']))
        return out
    raise ValueError(f'unknown task kind {task["kind"]!r}')


def _redirect_output(path: str):
    """Send this process's stdout/stderr (fds 1 and 2) to ``path``; a
    function that puts them back."""
    import sys
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)

    def restore():
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])

    return restore


def execute_task(task: dict) -> dict:
    """Run one task (in a worker); never raises.

    Returns:
        dict: ``records`` (one per store key, status ``ok`` or
        ``failed`` with the error), ``seconds`` spent in the run.
    """
    start = time.time()
    os.makedirs(task['work_dir'], exist_ok=True)
    restore = _redirect_output(osp.join(task['work_dir'], 'run.log'))
    try:
        records = _run_task(task)
        status, error = 'ok', None
    except Exception as e:  # recorded; the sweep goes on
        traceback.print_exc()
        records, status = [], 'failed'
        error = f'{type(e).__name__}: {e}'.splitlines()[0][:500]
    finally:
        restore()
    seconds = time.time() - start
    if status == 'ok':
        _drop_checkpoints(task)
    by_key = {run_key(r['method'], r['ratio'], r['seed'], r['retrain']): r
              for r in records}
    out = []
    for key in task['keys']:
        record = by_key.get(key)
        if record is None:
            method, ratio, seed, rt = _parse_key(key)
            record = dict(method=method, ratio=ratio, seed=seed, retrain=rt,
                          status='failed',
                          error=error or 'the run wrote no result')
        else:
            record['status'] = 'ok'
        record.update(key=key, seconds=round(seconds, 1),
                      work_dir=task['work_dir'])
        out.append(record)
    return dict(records=out, seconds=seconds)


def _parse_key(key: str) -> tuple:
    method, ratio, seed, rt = key.rsplit('_', 3)
    return method, float(ratio[1:]), int(seed[1:]), int(rt[2:])


def _drop_checkpoints(task: dict) -> None:
    # Only search and SuperTickets checkpoints are read again (by S+P and
    # by the retraining); the others would fill the disk.
    if task['kind'] in ('search', 'supertickets'):
        return
    for path in glob.glob(osp.join(task['work_dir'], '**', '*.pth'),
                          recursive=True):
        os.remove(path)


def _init_worker() -> None:
    import torch

    import mmsupertickets  # noqa: F401  (registers the hooks)
    torch.set_num_threads(1)


# -- the driver -------------------------------------------------------------
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
    ratios = [float(r) for r in ratios]
    for r in ratios:
        if not 0 < r < 1:
            raise ValueError(f'ratio {r} is outside (0, 1)')
    if len(set(ratios)) != len(ratios) or len(set(seeds)) != len(seeds):
        raise ValueError(f'ratios {ratios} or seeds {list(seeds)} repeat')
    if retrain < 0 or jobs < 1:
        raise ValueError(f'retrain={retrain} must be >= 0 and jobs={jobs} '
                         '>= 1')
    out_dir = osp.abspath(out_dir)
    work_dir = osp.abspath(work_dir or osp.join(out_dir, 'work'))
    store = RunStore(out_dir)
    os.makedirs(work_dir, exist_ok=True)
    if work_dir.startswith(out_dir + os.sep):
        # Checkpoints stay out of version control; the records go in.
        with open(osp.join(out_dir, '.gitignore'), 'w') as f:
            f.write(osp.relpath(work_dir, out_dir) + '/\n')
    arms = {}
    for seed in seeds:
        arms[seed] = derive_arms(config, seed, bn_samples, quick, data_root)
        for name, cfg in arms[seed].items():
            cfg.dump(osp.join(work_dir, f'{name}_s{seed}.py'))
    tasks = plan_tasks(ratios, seeds, retrain)
    by_id = {t['id']: t for t in tasks}
    dependents = {}
    for t in tasks:
        if t['needs']:
            dependents.setdefault(t['needs'], []).append(t['id'])

    def config_of(task):
        seed = task['seed']
        base = arms[seed]
        if task['kind'] == 'search' or task['kind'] == 'sp':
            cfg = base['search']
        elif task['kind'] == 'supertickets':
            cfg = supertickets_config(base['supertickets'], task['ratio'])
        else:
            cfg = fixed_mask_config(base['supertickets'], task['ratio'])
        path = osp.join(work_dir, task['id'], 'config.py')
        os.makedirs(osp.dirname(path), exist_ok=True)
        cfg.dump(path)
        return path

    def done(task) -> bool:
        if not all(store.ok(k) for k in task['keys']):
            return False
        pending = [d for d in dependents.get(task['id'], [])
                   if not done(by_id[d])]
        # A parent whose checkpoint is gone runs again for its dependents.
        return not pending or osp.isfile(
            store.get(task['keys'][0]).get('checkpoint') or '')

    todo = [t for t in tasks if not done(t)]
    skipped = len(tasks) - len(todo)
    log(f'[claims] {len(tasks)} runs planned, {skipped} already stored, '
        f'{len(todo)} to run with {jobs} worker(s); records in '
        f'{store.root}, checkpoints and logs in {work_dir}')
    pending = {t['id'] for t in todo}
    running = {}
    ran, failed, times = [], [], {}
    busy = 0.0
    start = time.time()
    pool = ProcessPoolExecutor(jobs, mp_context=get_context('spawn'),
                               initializer=_init_worker)

    def ready():
        for t in tasks:
            if t['id'] not in pending or t['id'] in running.values():
                continue
            need = t['needs']
            if need and (need in pending or not all(
                    store.ok(k) for k in by_id[need]['keys'])):
                continue
            yield t

    def fail_dependents(task_id, why):
        for d in dependents.get(task_id, []):
            if d in pending:
                pending.discard(d)
                for key in by_id[d]['keys']:
                    method, ratio, seed, rt = _parse_key(key)
                    store.put(dict(key=key, method=method, ratio=ratio,
                                   seed=seed, retrain=rt, status='failed',
                                   error=why))
                failed.append(d)
                fail_dependents(d, why)

    try:
        while pending:
            if max_runs is not None and len(ran) + len(running) >= max_runs:
                if not running:
                    break
            else:
                for t in ready():
                    if len(running) >= jobs:
                        break
                    spec = dict(t, config=config_of(t),
                                work_dir=osp.join(work_dir, t['id']),
                                snip_batches=snip_batches)
                    if t['needs']:
                        parent = by_id[t['needs']]['keys'][0]
                        spec['parent'] = store.get(parent)
                    running[pool.submit(execute_task, spec)] = t['id']
                    if max_runs is not None and \
                            len(ran) + len(running) >= max_runs:
                        break
            if not running:
                break  # nothing can run: every remaining need failed
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                task_id = running.pop(future)
                task = by_id[task_id]
                try:
                    result = future.result()
                except BrokenProcessPool as e:
                    # A worker died (killed, out of memory): record, go on.
                    result = dict(seconds=0.0, records=[
                        dict(zip(('method', 'ratio', 'seed', 'retrain'),
                                 _parse_key(k)), key=k, status='failed',
                             error=f'worker died: {e}')
                        for k in task['keys']])
                    pool.shutdown(cancel_futures=True)
                    pool = ProcessPoolExecutor(
                        jobs, mp_context=get_context('spawn'),
                        initializer=_init_worker)
                pending.discard(task_id)
                ran.append(task_id)
                busy += result['seconds']
                for record in result['records']:
                    store.put(record)
                ok = all(r['status'] == 'ok' for r in result['records'])
                if ok:
                    times.setdefault(task['kind'], []).append(
                        result['seconds'])
                else:
                    failed.append(task_id)
                    fail_dependents(task_id, f'{task_id} failed')
                log(_progress(task, result, len(ran), len(todo), start,
                              times, pending, by_id, jobs, metric))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    wall = time.time() - start
    share = busy / max(wall * jobs, 1e-9)
    log(f'[claims] {len(ran)} runs in {_fmt_time(wall)} with {jobs} '
        f'worker(s), {len(failed)} failed; {share:.1%} of the workers\' time '
        'was inside runs (building runners, training, evaluating), the rest '
        'process start-up, imports and waiting')
    return dict(ran=ran, skipped=skipped, failed=failed, wall=wall,
                busy=busy, share=share)


def _progress(task, result, done_count, total, start, times, pending,
              by_id, jobs, metric) -> str:
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
