"""Draw a SuperTicket on a small synthetic dataset and report on it.

One command runs the whole pipeline on a CPU:

1. generates the task's synthetic dataset under ``data/demo`` if it is not
   there yet (``tools/dataset_converters/generate_data.py``);
2. trains the demo config with ``tools/train.py`` (the stock mmengine
   runner with the SuperTickets hooks; its log shows the progress);
3. evaluates the final checkpoint, the sparse ticket, with
   ``tools/test.py``;
4. writes ``<work-dir>/report.md`` and PNG plots: the metric and MACs over
   training, sparsity (achieved vs target) and live channels per event, and
   the final architecture per stage and branch.

Usage::

    python tools/run_demo.py --task seg            # make demo
    python tools/run_demo.py --task pose --work-dir work_dirs/demo-pose
    python tools/run_demo.py --task seg --report-only   # re-plot a run

The data go to ``data/demo`` (where the demo configs read them).

Layout of the work dir: ``train/`` (tools/train.py's work dir: log,
checkpoints, ``supertickets_events.jsonl``, ``<timestamp>/vis_data``),
``test/`` (tools/test.py's), ``report.md`` and ``*.png``.
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
MARKER = '.run_demo'
# Where the demo configs read their data (relative to the repository).
DATA_ROOT = 'data/demo'

# task: demo config, generator dataset name, folder of that dataset under
# the data root, headline metric key in the evaluator's output, its label.
TASKS = OrderedDict(
    seg=dict(
        config='configs/supertickets/demo/'
        'supertickets_hrnas_1xb4-demo_cityscapes-128x256.py',
        dataset='cityscapes',
        folder='cityscapes',
        metric='mIoU',
        label='mIoU (%)'),
    ade20k=dict(
        config='configs/supertickets/demo/'
        'supertickets_hrnas_1xb8-demo_ade20k-128x128.py',
        dataset='ade20k',
        folder='ade/ADEChallengeData2016',
        metric='mIoU',
        label='mIoU (%)'),
    pose=dict(
        config='configs/supertickets/demo/'
        'supertickets_td-hm_hrnas_1xb16-demo_coco-128x96.py',
        dataset='coco',
        folder='coco',
        metric='coco/AP',
        label='AP (OKS)',
        digits=3),
    cls=dict(
        config='configs/supertickets/demo/'
        'supertickets_hrnas_1xb32-demo_in1k-64px.py',
        dataset='imagenet',
        folder='imagenet',
        metric='accuracy/top1',
        label='top-1 accuracy (%)'),
)


TITLES = dict(
    seg='Cityscapes semantic segmentation (synthetic)',
    ade20k='ADE20K semantic segmentation (synthetic)',
    pose='COCO top-down keypoints (synthetic)',
    cls='ImageNet classification (synthetic, 10 classes)')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a demo SuperTicket on synthetic data, evaluate '
        'it and write a report with plots.')
    parser.add_argument(
        '--task', choices=list(TASKS), default='seg', help='demo to run')
    parser.add_argument(
        '--work-dir',
        help='output folder; defaults to work_dirs/demo for seg and '
        'work_dirs/demo-<task> for the others')
    parser.add_argument(
        '--report-only',
        action='store_true',
        help='skip data, training and testing; rewrite the report from '
        'the files of an earlier run in the work dir')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='passed to tools/train.py and tools/test.py')
    args = parser.parse_args(argv)
    if args.work_dir is None:
        args.work_dir = 'work_dirs/demo' if args.task == 'seg' else \
            f'work_dirs/demo-{args.task}'
    return args


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


def last_checkpoint(train_dir: str) -> str:
    """The checkpoint the runner wrote last (the ticket)."""
    pointer = osp.join(train_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            path = f.read().strip()
        if not osp.isabs(path):
            path = osp.join(REPO, path)
        if osp.isfile(path):
            return path
    found = sorted(glob.glob(osp.join(train_dir, '*.pth')),
                   key=osp.getmtime)
    if not found:
        raise SystemExit(f'[run_demo] no checkpoint in {train_dir}')
    return found[-1]


def read_test_metrics(test_dir: str) -> Dict[str, float]:
    """Metrics tools/test.py logged (``<timestamp>/<timestamp>.json``)."""
    found = sorted(glob.glob(osp.join(test_dir, '*', '*.json')),
                   key=osp.getmtime)
    if not found:
        return {}
    with open(found[-1]) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    metrics = {}
    for line in lines:
        metrics.update({k: v for k, v in line.items()
                        if isinstance(v, (int, float))})
    return metrics


# -- reading a run ----------------------------------------------------------
def read_jsonl(path: str) -> List[dict]:
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_scalars(train_dir: str) -> List[dict]:
    """The runner's ``vis_data/scalars.json`` of the latest run."""
    found = sorted(glob.glob(osp.join(train_dir, '*', 'vis_data',
                                      'scalars.json')))
    return read_jsonl(found[-1]) if found else []


def read_ticket_meta(checkpoint: Optional[str]) -> dict:
    """``checkpoint['meta']['supertickets']`` (safe, weights-only load)."""
    if not checkpoint or not osp.isfile(checkpoint):
        return {}
    import torch

    import mmsupertickets  # noqa: F401  (allow-lists mmengine's types)
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
    return ckpt.get('meta', {}).get('supertickets', {}) or {}


def supernet_arch(config: str) -> Dict[str, int]:
    """Channels of every searchable unit of the config's full supernet."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    import mmsupertickets  # noqa: F401
    from mmsupertickets.searchable import find_searchable_units
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = MODELS.build(cfg.model)
    return {u.name: u.channels for u in find_searchable_units(model)}


def epoch_length(scalars: List[dict]) -> Optional[float]:
    """Iterations per epoch of an epoch-based run, from its train logs.

    There each training entry has the epoch (1-based), the iteration inside
    that epoch and the global step; iteration-based runs log no epoch.
    """
    for s in scalars:
        if 'loss' in s and s.get('epoch', 0) > 1 and 'iter' in s:
            return (s['step'] - s['iter']) / (s['epoch'] - 1)
    return None


def val_series(scalars: List[dict], metric: str) -> List[tuple]:
    """(iteration, value) of every validation of ``metric``.

    mmengine logs validations of iteration-based loops at their iteration
    and those of epoch-based loops at their epoch; the latter are turned
    into iterations with :func:`epoch_length`.
    """
    train = [s for s in scalars if 'loss' in s]
    by_epoch = bool(train) and 'epoch' in train[0]
    length = epoch_length(scalars) if by_epoch else None
    out = []
    for s in scalars:
        if metric in s and 'loss' not in s:
            step = s['step']
            if by_epoch and length:
                step = step * length
            out.append((step, float(s[metric])))
    return out


# -- summaries --------------------------------------------------------------
def stage_of(unit: str) -> str:
    """Group a unit name by stage and branch for the architecture chart.

    ``backbone.stage3.branch1.block0.paths.k5`` -> ``stage3.branch1``,
    ``backbone.stage3.fuse.blocks.out1_in2.paths.k3`` -> ``stage3.fuse``,
    ``decode_head.block.paths.k3`` -> ``decode_head``,
    ``neck.down0.paths.k7`` -> ``neck``.
    """
    parts = unit.split('.')
    if parts[0] == 'backbone' and len(parts) > 2:
        return f'{parts[1]}.{parts[2]}'
    return parts[0]


def kernel_of(unit: str) -> str:
    return unit.rsplit('.', 1)[-1]


def group_channels(arch: Dict[str, int]) -> 'OrderedDict[str, Dict]':
    """``{group: {kernel: channels}}`` in network order."""
    groups = OrderedDict()
    for unit, channels in arch.items():
        g = groups.setdefault(stage_of(unit), OrderedDict())
        k = kernel_of(unit)
        g[k] = g.get(k, 0) + channels
    return groups


def _sort_groups(names: Sequence[str]) -> List[str]:

    def key(name):
        if name.startswith('stage'):
            stage, _, branch = name.partition('.')
            order = (0 if branch == 'fuse' else 1,
                     int(branch[6:]) if branch.startswith('branch') else -1)
            return (0, int(stage[5:]), order)
        return (1, 0, (0, 0))

    return sorted(names, key=key)


def fmt_count(n: Optional[float]) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return 'n/a'
    for unit, scale in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if abs(n) >= scale:
            return f'{n / scale:.3f} {unit}'
    return f'{int(n)}'


def summarize(events: List[dict]) -> dict:
    """The three models the report compares, from the event log."""
    supernet = next((e for e in events if e['event'] == 'supernet'), None)
    prunes = [e for e in events if 'sparsity' in e]
    shrinks = [e for e in events if e['event'].endswith('shrink')]
    final = prunes[-1] if prunes else None
    # The subnet the ticket lives in: the last shrink (or the supernet).
    last_structure = (final or (shrinks[-1] if shrinks else supernet))
    return dict(supernet=supernet, prunes=prunes, shrinks=shrinks,
                final=final, subnet=last_structure)


# -- plots ------------------------------------------------------------------
def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def plot_metric_and_macs(path: str, series: List[tuple], events: List[dict],
                         label: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    if series:
        xs, ys = zip(*series)
        ax.plot(xs, ys, 'o-', color='tab:blue', label=label)
    ax.set_xlabel('iteration')
    ax.set_ylabel(label, color='tab:blue')
    ax2 = ax.twinx()
    cost = [e for e in events if 'macs' in e]
    if cost:
        xs = [e['iter'] for e in cost]
        ax2.step(xs, [e['macs'] / 1e6 for e in cost], where='post',
                 color='tab:red', label='dense MACs (subnet)')
        sparse = [(e['iter'], e['sparse_macs'] / 1e6) for e in cost
                  if 'sparse_macs' in e]
        if sparse:
            ax2.step(*zip(*sparse), where='post', color='tab:orange',
                     linestyle='--', label='sparse MACs (exact per layer)')
        ax2.set_ylim(bottom=0)
    ax2.set_ylabel('MMACs at the profiling input')
    for e in events:
        if e['event'].endswith('shrink'):
            ax.axvline(e['iter'], color='grey', alpha=0.3, linewidth=1)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc='center right',
              fontsize=8)
    ax.set_title('Validation metric and cost over training '
                 '(grey lines: shrink events)', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_sparsity_and_channels(path: str, events: List[dict]) -> None:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    prunes = [e for e in events if 'sparsity' in e]
    if prunes:
        idx = list(range(1, len(prunes) + 1))
        ax1.plot(idx, [e['target_sparsity'] for e in prunes], 's--',
                 label='target')
        ax1.plot(idx, [e['sparsity'] for e in prunes], 'o-',
                 label='achieved')
        ax1.set_xticks(idx)
    ax1.set_xlabel('prune event')
    ax1.set_ylabel('sparsity of the prunable weights')
    ax1.set_ylim(0, 1)
    ax1.legend(fontsize=8)
    ax1.set_title('Progressive pruning', fontsize=10)
    live = [e for e in events if 'live_channels' in e]
    if live:
        ax2.plot([e['iter'] for e in live],
                 [e['live_channels'] for e in live], 'o-')
        for e in live:
            if e['event'].endswith('shrink'):
                ax2.annotate('shrink', (e['iter'], e['live_channels']),
                             fontsize=7, rotation=45)
    ax2.set_xlabel('iteration of the event')
    ax2.set_ylabel('live searchable channels')
    ax2.set_title('Architecture search', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_architecture(path: str, arch: Dict[str, int],
                      supernet: Optional[Dict[str, int]]) -> None:
    plt = _plt()
    ticket = group_channels(arch)
    full = group_channels(supernet) if supernet else OrderedDict()
    names = _sort_groups(list(OrderedDict.fromkeys(list(full) +
                                                   list(ticket))))
    kernels = sorted({k for g in list(ticket.values()) + list(full.values())
                      for k in g}, key=lambda k: int(k[1:]) if
                     k[1:].isdigit() else 0)
    fig, ax = plt.subplots(figsize=(max(7, 0.45 * len(names)), 4))
    xs = list(range(len(names)))
    if full:
        ax.bar(xs, [sum(full.get(n, {}).values()) for n in names],
               width=0.8, color='none', edgecolor='black',
               label='supernet')
    bottom = [0] * len(names)
    for k in kernels:
        vals = [ticket.get(n, {}).get(k, 0) for n in names]
        ax.bar(xs, vals, width=0.6, bottom=bottom, label=f'ticket {k}')
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=60, ha='right', fontsize=7)
    ax.set_ylabel('searchable channels (depthwise)')
    ax.set_title('Final architecture per stage and branch', fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- the report -------------------------------------------------------------
def write_report(out_dir: str, info: dict) -> str:
    """Write ``report.md`` and its PNGs into ``out_dir``.

    Args:
        out_dir (str): Where the report and plots go.
        info (dict): What the report states: ``task``, ``config``,
            ``metric`` (key), ``metric_label``, ``events`` (the event log),
            ``scalars`` (the runner's scalars), ``test_metrics``,
            ``chance`` (dict with ``value`` and ``how``), ``arch`` (final
            ``{unit: channels}``), ``supernet_arch`` (optional),
            ``input_shape``, ``timings`` (seconds by step),
            ``checkpoint`` (path) and optionally ``digits`` (decimals of
            the metric, default 2).

    Returns:
        str: Path of the report.
    """
    os.makedirs(out_dir, exist_ok=True)
    events = info.get('events', [])
    s = summarize(events)
    metric, label = info['metric'], info['metric_label']
    series = val_series(info.get('scalars', []), metric)
    test = info.get('test_metrics', {})
    digits = info.get('digits', 2)
    measured = test.get(metric, series[-1][1] if series else None)
    chance = info.get('chance') or {}

    plots = dict(
        metric='metric_and_macs.png',
        sparsity='sparsity_and_channels.png',
        arch='architecture.png')
    plot_metric_and_macs(osp.join(out_dir, plots['metric']), series, events,
                         label)
    plot_sparsity_and_channels(osp.join(out_dir, plots['sparsity']), events)
    arch = info.get('arch') or {}
    if arch:
        plot_architecture(osp.join(out_dir, plots['arch']), arch,
                          info.get('supernet_arch'))

    final, supernet, subnet = s['final'], s['supernet'], s['subnet']
    target = final.get('target_sparsity') if final else None
    achieved = final.get('sparsity') if final else None
    shape = info.get('input_shape')
    shape_txt = f'{shape[0]}x{shape[1]}' if shape else 'n/a'

    md = []
    title = TITLES.get(info['task'], info['task'])
    md.append(f'# SuperTickets demo: {title}\n')
    md.append(f'Config: `{info["config"]}`  ')
    if info.get('checkpoint'):
        md.append(f'Ticket checkpoint: `{info["checkpoint"]}`\n')
    md.append('\n## Result\n')
    md.append('| | value |\n|---|---|')
    md.append(f'| {label} of the ticket (tools/test.py) | '
              f'{_num(measured, digits)} |')
    if chance:
        md.append(f'| chance level | {_num(chance.get("value"), digits)} |')
    md.append(f'| sparsity achieved / target | {_num(achieved, 4)} / '
              f'{_num(target, 4)} |')
    if final:
        md.append(f'| prunable weights (conv + linear, classifier '
                  f'excluded) | {fmt_count(final.get("prunable_weights"))} |')
    md.append('')
    if chance.get('how'):
        md.append(f'Chance: {chance["how"]}\n')
    if measured is not None and chance.get('value') is not None:
        ratio = measured / chance['value'] if chance['value'] else math.inf
        md.append(f'The ticket scores {_num(measured, digits)} against '
                  f'{_num(chance["value"], digits)} for chance '
                  f'({ratio:.1f}x).\n')

    md.append('## Size and cost\n')
    md.append(f'Counted: weights and biases of every Conv2d and Linear '
              f'(params); multiply-accumulates of Conv2d and Linear '
              f'(MACs), BN, activations, additions and resizes count 0; '
              f'the whole model (backbone, neck and head, classifier '
              f'included) on one {shape_txt} input.\n')
    md.append('| model | params | MACs |\n|---|---|---|')
    if supernet:
        md.append(f'| supernet (dense) | {fmt_count(supernet["params"])} | '
                  f'{fmt_count(supernet["macs"])} |')
    if subnet:
        md.append(f'| shrunk subnet (dense, physically smaller) | '
                  f'{fmt_count(subnet.get("params"))} | '
                  f'{fmt_count(subnet.get("macs"))} |')
    if final and 'sparse_macs' in final:
        md.append(f'| sparse ticket (exact: each layer\'s MACs x its '
                  f'density) | {fmt_count(final.get("sparse_params"))} | '
                  f'{fmt_count(final["sparse_macs"])} |')
        md.append(f'| sparse ticket, paper\'s figure (dense subnet MACs x '
                  f'global density) | | '
                  f'{fmt_count(final.get("macs_x_global_density"))} |')
    md.append('')
    md.append('The shrunk subnet is smaller and faster on any hardware; '
              'the mask only saves storage in a sparse format and time '
              'with a sparse runtime.\n')

    md.append('## Events\n')
    md.append('| iter | event | target | sparsity | live channels | '
              'kernel paths | MACs | sparse MACs |')
    md.append('|---|---|---|---|---|---|---|---|')
    for e in events:
        md.append(
            f'| {e.get("iter")} | {e["event"]} | '
            f'{_num(e.get("target_sparsity"), 3)} | '
            f'{_num(e.get("sparsity"), 4)} | {e.get("live_channels", "")} | '
            f'{e.get("kernel_paths", "")} | {fmt_count(e.get("macs"))} | '
            f'{fmt_count(e.get("sparse_macs"))} |')
    md.append('')

    md.append('## Plots\n')
    md.append(f'![metric and MACs]({plots["metric"]})\n')
    md.append(f'![sparsity and channels]({plots["sparsity"]})\n')
    if arch:
        md.append('## Final architecture\n')
        md.append(f'![architecture]({plots["arch"]})\n')
        full = group_channels(info.get('supernet_arch') or {})
        ticket = group_channels(arch)
        md.append('| stage / branch | supernet channels | ticket channels '
                  '(per kernel) |\n|---|---|---|')
        for name in _sort_groups(list(OrderedDict.fromkeys(
                list(full) + list(ticket)))):
            per_k = ', '.join(f'{k}: {c}'
                              for k, c in ticket.get(name, {}).items())
            total = sum(full.get(name, {}).values()) if full else 'n/a'
            md.append(f'| {name} | {total} | '
                      f'{sum(ticket.get(name, {}).values())} ({per_k}) |')
        md.append('')
    if final:
        stages = {k.split('/', 1)[1]: v for k, v in final.items()
                  if k.startswith('sparsity/')}
        if stages:
            md.append('Sparsity of the ticket per stage: ' + ', '.join(
                f'{k} {v:.3f}' for k, v in stages.items()) + '\n')

    md.append('## Export\n')
    summary = osp.join(out_dir, 'ticket', 'summary.json')
    if osp.isfile(summary):
        md.append('`ticket/` (tools/export_ticket.py): `config.py` builds '
                  'the shrunk subnet with no SuperTickets hooks and loads '
                  '`ticket.pth` (masks baked in); `arch.json`, '
                  '`ticket_sparse.pth` (kept values + positions) and '
                  '`summary.json`:\n')
        with open(summary) as f:
            md.append('```json\n' + f.read().strip() + '\n```\n')
    else:
        md.append('Not exported in this run: `tools/export_ticket.py '
                  'CONFIG CKPT --out DIR` writes the deployable ticket.\n')

    timings = info.get('timings') or {}
    if timings:
        md.append('## Wall time\n')
        md.append('| step | seconds |\n|---|---|')
        for k, v in timings.items():
            md.append(f'| {k} | {v:.0f} |')
        md.append(f'\nThreads per process: '
                  f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", 1)}; '
                  f'CPU cores: {os.cpu_count()}.\n')
    path = osp.join(out_dir, 'report.md')
    with open(path, 'w') as f:
        f.write('\n'.join(md))
    return path


def _num(v, digits: int = 2) -> str:
    if v is None:
        return 'n/a'
    return f'{v:.{digits}f}'


# -- chance levels ----------------------------------------------------------
def seg_chance(label_files: Sequence[str], num_classes: int,
               reduce_zero_label: bool = False) -> dict:
    """mIoU (%) of the better of two image-independent predictors.

    Computed exactly on the validation labels: always the most frequent
    class (mIoU = its pixel share / number of classes present), or a
    uniformly random class (expected IoU of class c = (n_c/C) /
    (n_c + N/C - n_c/C), over all C classes).
    """
    import numpy as np
    from PIL import Image
    counts = np.zeros(num_classes, dtype=np.float64)
    for path in label_files:
        label = np.asarray(Image.open(path)).astype(np.int64)
        if reduce_zero_label:
            label = np.where(label == 0, 255, label - 1)
        valid = label[(label >= 0) & (label < num_classes)]
        counts += np.bincount(valid, minlength=num_classes)[:num_classes]
    total = counts.sum()
    if total == 0:
        return dict(value=None, how='no labelled pixels')
    present = int((counts > 0).sum())
    majority = 100 * counts.max() / total / present
    c = num_classes
    random_iou = (counts / c) / (counts + total / c - counts / c)
    random = 100 * random_iou.mean()
    best = max(majority, random)
    return dict(
        value=best,
        how=(f'best image-independent predictor on the validation labels: '
             f'always the most frequent class gives mIoU {majority:.2f}, a '
             f'uniformly random class {random:.2f} (in expectation); '
             f'{present} of {num_classes} classes occur'))


def cls_chance(val_list: str, num_classes: int) -> dict:
    """Top-1 accuracy (%) of always predicting the most frequent class."""
    labels = []
    with open(val_list) as f:
        for line in f:
            if line.strip():
                labels.append(int(line.split()[-1]))
    if not labels:
        return dict(value=None, how='no validation labels')
    top = max(labels.count(k) for k in set(labels))
    value = 100 * top / len(labels)
    return dict(value=value,
                how=f'always the most frequent class of the validation set '
                f'({len(labels)} images, {num_classes} classes; a uniform '
                f'guess scores {100 / num_classes:.1f})')


def pose_chance(root: str) -> dict:
    """AP of the mean pose placed in every person box (image-independent).

    The mean pose is the average of the training keypoints normalised to
    their boxes; it is placed in each box of the detection file the demo
    config evaluates with and scored with the COCO keypoint OKS AP.
    """
    import numpy as np
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval
    with open(osp.join(root, 'annotations',
                       'person_keypoints_train2017.json')) as f:
        train = json.load(f)
    sums, nums = np.zeros((17, 2)), np.zeros((17, 1))
    for ann in train['annotations']:
        x, y, w, h = ann['bbox']
        if w <= 0 or h <= 0:
            continue
        kpts = np.asarray(ann['keypoints'], dtype=np.float64).reshape(17, 3)
        vis = kpts[:, 2:] > 0
        norm = (kpts[:, :2] - [x, y]) / [w, h]
        sums += norm * vis
        nums += vis
    mean = sums / np.maximum(nums, 1)
    with open(osp.join(root, 'person_detection_results',
                       'COCO_val2017_detections_AP_H_56_person.json')) as f:
        dets = json.load(f)
    results = []
    for det in dets:
        x, y, w, h = det['bbox']
        pts = mean * [w, h] + [x, y]
        kpts = np.concatenate([pts, np.ones((17, 1))], axis=1)
        results.append(dict(image_id=det['image_id'], category_id=1,
                            keypoints=kpts.flatten().tolist(),
                            score=float(det.get('score', 1.0))))
    gt = COCO(osp.join(root, 'annotations', 'person_keypoints_val2017.json'))
    dt = gt.loadRes(results)
    sigmas = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62,
                       .62, 1.07, 1.07, .87, .87, .89, .89]) / 10.0
    ev = COCOeval(gt, dt, 'keypoints', sigmas, use_area=True)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return dict(value=float(ev.stats[0]),
                how='the mean training pose (normalised to its box) placed '
                'in every validation person box, COCO OKS AP')


def chance_level(task_name: str, data_root: str) -> dict:
    task = TASKS[task_name]
    root = osp.join(REPO, data_root, task['folder'])
    try:
        if task_name == 'seg':
            files = glob.glob(osp.join(root, 'gtFine', 'val', '*',
                                       '*_labelTrainIds.png'))
            return seg_chance(files, 19)
        if task_name == 'ade20k':
            files = glob.glob(osp.join(root, 'annotations', 'validation',
                                       '*.png'))
            return seg_chance(files, 150, reduce_zero_label=True)
        if task_name == 'cls':
            return cls_chance(osp.join(root, 'meta', 'val.txt'), 10)
        if task_name == 'pose':
            return pose_chance(root)
    except Exception as e:  # a report without chance beats no report
        return dict(value=None, how=f'could not be computed ({e!r})')
    return {}


# -- main -------------------------------------------------------------------
def gather(task_name: str, work_dir: str, data_root: str,
           test_metrics: Dict[str, float], timings: Dict[str, float]
           ) -> dict:
    """Everything the report states, read from a finished run."""
    task = TASKS[task_name]
    train_dir = osp.join(work_dir, 'train')
    checkpoint = last_checkpoint(train_dir)
    meta = read_ticket_meta(checkpoint)
    events = read_jsonl(osp.join(train_dir, 'supertickets_events.jsonl'))
    search = meta.get('search', {})
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
        digits=task.get('digits', 2),
        events=events,
        scalars=read_scalars(train_dir),
        test_metrics=test_metrics,
        chance=chance_level(task_name, data_root),
        arch=meta.get('arch', {}),
        supernet_arch=full,
        input_shape=search.get('input_shape'),
        timings=timings,
        checkpoint=osp.relpath(checkpoint, REPO))


def main(argv=None) -> int:
    args = parse_args(argv)
    task = TASKS[args.task]
    work_dir = osp.join(REPO, args.work_dir) if not osp.isabs(
        args.work_dir) else args.work_dir
    train_dir, test_dir = osp.join(work_dir, 'train'), osp.join(
        work_dir, 'test')
    timings = OrderedDict()
    start = time.time()
    test_metrics = {}
    extra = ['--cfg-options', *args.cfg_options] if args.cfg_options else []
    if not args.report_only:
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
            checkpoint, '--out', osp.join(work_dir, 'ticket'), '--force',
            *extra
        ], 'export')
    test_metrics = read_test_metrics(test_dir)

    report_start = time.time()
    info = gather(args.task, work_dir, DATA_ROOT, test_metrics, timings)
    timings_file = osp.join(work_dir, 'timings.json')
    if args.report_only:
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
    digits = task.get('digits', 2)
    print(f'[run_demo] {task["label"]}: {_num(metric, digits)} (chance '
          f'{_num(chance, digits)}), sparsity '
          f'{_num(final.get("sparsity"), 4)}, '
          f'{timings.get("total", 0):.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
