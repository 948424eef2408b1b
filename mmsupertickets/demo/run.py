"""The demo pipeline: generate data, train, test, export, then report."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

from mmsupertickets.engine.ticket_meta import (
    EVENTS_FILE,
    read_arch,
    ticket_meta,
)

from .architecture import supernet_arch
from .chance import chance_level
from .report import fmt_num, summarize, write_report
from .run_files import (
    last_checkpoint,
    read_checkpoint,
    read_jsonl,
    read_scalars,
    read_test_metrics,
)
from .tasks import DATA_ROOT, REPO, TASKS

# Marks the folders this pipeline made and may empty again.
MARKER = '.run_demo'


# -- running the stock tools ------------------------------------------------
def _env() -> dict:
    env = dict(os.environ)
    # Small models on few cores: one thread per process is much faster
    # than oversubscribed OpenMP threads.
    env.setdefault('OMP_NUM_THREADS', '1')
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    return env


def _run(cmd: List[str], what: str) -> float:
    print(f'[run_demo] {what}: {" ".join(cmd)}', flush=True)
    start = time.time()
    result = subprocess.run(cmd, cwd=REPO, env=_env())
    if result.returncode != 0:
        raise SystemExit(f'[run_demo] {what} failed with exit code '
                         f'{result.returncode}')
    return time.time() - start


def generate_data(task: dict, data_root: str) -> float:
    """Generate the task's dataset unless a complete one is there."""
    marker = osp.join(REPO, data_root, task['folder'], '.generated.json')
    if osp.isfile(marker):
        print(f'[run_demo] data: {osp.dirname(marker)} is there')
        return 0.0
    return _run([
        sys.executable, 'tools/dataset_converters/generate_data.py',
        task['dataset'], '--out', data_root
    ], 'data')


def _fresh_dir(path: str) -> None:
    """Empty a folder this script made before; refuse any other."""
    if osp.exists(path):
        if not osp.isfile(osp.join(path, MARKER)):
            raise SystemExit(
                f'[run_demo] {path} exists and was not made by run_demo.py; '
                'move it away or pick another --work-dir')
        shutil.rmtree(path)
    os.makedirs(path)
    open(osp.join(path, MARKER), 'w').close()


def train_test_export(task: dict, work_dir: str,
                      cfg_options: Sequence[str]) -> Dict[str, float]:
    """Run the four stock tools in turn; their wall times by step."""
    train_dir, test_dir = osp.join(work_dir, 'train'), osp.join(
        work_dir, 'test')
    extra = ['--cfg-options', *cfg_options] if cfg_options else []
    timings = OrderedDict()
    timings['data generation'] = generate_data(task, DATA_ROOT)
    _fresh_dir(train_dir)
    timings['training (tools/train.py)'] = _run([
        sys.executable, 'tools/train.py', task['config'], '--work-dir',
        train_dir, *extra
    ], 'train')
    checkpoint = last_checkpoint(train_dir)
    _fresh_dir(test_dir)
    timings['evaluation (tools/test.py)'] = _run([
        sys.executable, 'tools/test.py', task['config'], checkpoint,
        '--work-dir', test_dir, *extra
    ], 'test')
    timings['export (tools/export_ticket.py)'] = _run([
        sys.executable, 'tools/export_ticket.py', task['config'],
        checkpoint, '--out', osp.join(work_dir, 'ticket'), '--force', *extra
    ], 'export')
    return timings


# -- reading the finished run -----------------------------------------------
def demo_task(task_name: str, config: Optional[str] = None) -> dict:
    """The settings of ``task_name``, with ``config`` (relative to the
    repository or the working folder) instead of its demo config."""
    task = TASKS[task_name]
    if config:
        task = dict(task, config=osp.relpath(osp.abspath(config), REPO))
    return task


def gather(task_name: str, work_dir: str, data_root: str,
           test_metrics: Dict[str, float], timings: Dict[str, float],
           config: Optional[str] = None) -> dict:
    """Everything the report states, read from a finished run."""
    task = demo_task(task_name, config)
    train_dir = osp.join(work_dir, 'train')
    checkpoint = last_checkpoint(train_dir)
    ckpt = read_checkpoint(checkpoint)
    events = read_jsonl(osp.join(train_dir, EVENTS_FILE))
    search = (ticket_meta(ckpt) or {}).get('search', {})
    config = osp.join(REPO, task['config'])
    try:
        full = supernet_arch(config)
    except Exception as e:
        print(f'[run_demo] supernet channels unavailable: {e!r}')
        full = None
    return dict(
        task=task_name,
        config=task['config'],
        metric=task['metric'],
        metric_label=task['label'],
        digits=task['digits'],
        events=events,
        scalars=read_scalars(train_dir),
        test_metrics=test_metrics,
        chance=chance_level(task_name, data_root),
        arch=read_arch(ckpt) or {},
        supernet_arch=full,
        input_shape=search.get('input_shape'),
        timings=timings,
        checkpoint=osp.relpath(checkpoint, REPO))


# -- the whole demo ---------------------------------------------------------
def run_demo(task_name: str, work_dir: str, report_only: bool = False,
             cfg_options: Sequence[str] = (),
             config: Optional[str] = None) -> str:
    """Run the demo of ``task_name`` in ``work_dir`` and write its report.

    Args:
        task_name (str): A key of :data:`~demo.tasks.TASKS`.
        work_dir (str): Output folder, relative to the repository unless
            absolute: ``train/``, ``test/``, ``ticket/``, ``timings.json``,
            ``report.md`` and its PNGs.
        report_only (bool): Skip data, training, testing and export; write
            the report from an earlier run's files (keeping its timings).
        cfg_options (Sequence[str]): ``--cfg-options`` of every tool.
        config (str, optional): Another config of the task (relative to
            the working folder), e.g. its MACs-budget demo. Defaults to the
            task's demo config.

    Returns:
        str: Path of ``report.md``.
    """
    task = demo_task(task_name, config)
    work_dir = osp.join(REPO, work_dir) if not osp.isabs(
        work_dir) else work_dir
    timings = OrderedDict()
    start = time.time()
    if not report_only:
        timings.update(train_test_export(task, work_dir, cfg_options))
    test_metrics = read_test_metrics(osp.join(work_dir, 'test'))

    report_start = time.time()
    info = gather(task_name, work_dir, DATA_ROOT, test_metrics, timings,
                  config)
    timings_file = osp.join(work_dir, 'timings.json')
    if report_only:
        # Keep the wall times of the run being re-reported.
        if osp.isfile(timings_file):
            with open(timings_file) as f:
                timings.update(json.load(f))
    else:
        timings['report'] = time.time() - report_start
        timings['total'] = time.time() - start
        with open(timings_file, 'w') as f:
            json.dump(timings, f, indent=2)
    path = write_report(work_dir, info)
    print(f'[run_demo] report: {osp.relpath(path, os.getcwd())}')
    metric = test_metrics.get(task['metric'])
    chance = info['chance'].get('value')
    final = summarize(info['events'])['final'] or {}
    digits = task['digits']
    print(f'[run_demo] {task["label"]}: {fmt_num(metric, digits)} (chance '
          f'{fmt_num(chance, digits)}), sparsity '
          f'{fmt_num(final.get("sparsity"), 4)}, '
          f'{timings.get("total", 0):.0f} s')
    return path
