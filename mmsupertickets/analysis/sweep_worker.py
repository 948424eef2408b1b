"""What a sweep worker runs: one task of the plan as a stock mmengine
runner in this process (or :func:`~mmsupertickets.apis.oneshot.
prune_oneshot` for S+P), its output in ``run.log``, its records back."""
import copy
import glob
import os
import os.path as osp
import time
import traceback
from typing import List

from mmengine.config import Config
from mmengine.runner import find_latest_checkpoint

from .sweep_store import failed_record, run_key

__all__ = ['execute_task', 'init_worker']


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
        # None when the run saved nothing: N retraining iterations of an
        # epoch-based config end before its CheckpointHook's first epoch.
        checkpoint = find_latest_checkpoint(cfg.work_dir)
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
        if res['checkpoint'] is None:
            raise RuntimeError(
                f'{task["id"]} saved no checkpoint in {work_dir}; the runs '
                'that start from it need one (check default_hooks.checkpoint)')
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
            record = failed_record(key, error or 'the run wrote no result')
        else:
            record['status'] = 'ok'
        record.update(key=key, seconds=round(seconds, 1),
                      work_dir=task['work_dir'])
        out.append(record)
    return dict(records=out, seconds=seconds)


def _drop_checkpoints(task: dict) -> None:
    # Only search and SuperTickets checkpoints are read again (by S+P and
    # by the retraining); the others would fill the disk.
    if task['kind'] in ('search', 'supertickets'):
        return
    for path in glob.glob(osp.join(task['work_dir'], '**', '*.pth'),
                          recursive=True):
        os.remove(path)


def init_worker() -> None:
    """Prepare a fresh worker process: the package's hooks registered,
    one thread per process (the pool runs ``jobs`` of them).

    Example:
        >>> from concurrent.futures import ProcessPoolExecutor
        >>> pool = ProcessPoolExecutor(  # doctest: +SKIP
        ...     2, initializer=init_worker)
    """
    import torch

    import mmsupertickets  # noqa: F401  (registers the hooks)
    torch.set_num_threads(1)

