"""Accuracy against MACs of existing runs: SuperTickets work dirs and S+P
result dirs read back (``tools/analysis/compare_tradeoff.py``; the sweep
of :mod:`.sweep` keeps its own records).

Two kinds of folders are read:

- **SuperTickets work dirs** (one training run each, one point): the cost of
  the final ticket from the last prune event in
  ``supertickets_events.jsonl`` (falling back to the ``supertickets/*``
  scalars of ``vis_data/scalars.json``), and the metric of the last
  validation in ``<timestamp>/vis_data/scalars.json`` (or the runner's log
  JSON ``<timestamp>/vis_data/<timestamp>.json``); a resumed run's later
  timestamps win. A run without prune events is the searched subnet alone.
- **S+P result dirs** written by ``tools/prune_oneshot.py``: every
  ``<scorer>_<ratio>.json`` gives one point without retraining and, when it
  was retrained, one with.

MACs follow :mod:`mmsupertickets.flops`: Conv2d and Linear only, sparse MACs
exact per layer (Σ layer MACs × density), at the size the search profiled
at.
"""
import glob
import json
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

from mmsupertickets.engine.ticket_meta import EVENTS_FILE
from mmsupertickets.flops import format_count

__all__ = [
    'DEFAULT_METRICS', 'find_metric', 'read_supertickets_dir',
    'read_sp_dir', 'collect_points', 'tradeoff_table', 'plot_tradeoff',
    'compare_tradeoff'
]

# Tried in this order when no metric is named: mmseg, mmpose, mmpretrain.
DEFAULT_METRICS = ('mIoU', 'AP', 'accuracy/top1')
SUPERTICKETS = 'SuperTickets'
SEARCH_ONLY = 'search only (dense subnet)'
X_KEYS = {'sparse': 'macs', 'global': 'macs_x_global_density'}


def find_metric(metrics: Dict[str, float], metric: str) -> Optional[float]:
    """The value of ``metric`` in ``metrics``, also under a prefix.

    ``'AP'`` matches ``'coco/AP'`` (but not ``'coco/AP .5'``);
    ``'accuracy/top1'`` matches itself.
    """
    if not metrics:
        return None
    if metric in metrics:
        return float(metrics[metric])
    for key, value in metrics.items():
        if key.endswith('/' + metric):
            return float(value)
    return None


def _read_jsonl(path: str) -> List[dict]:
    records = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                # A line cut off by a crash: the others still count.
                warnings.warn(f'{path}: skipped a line that is not JSON')
    return records


def _log_dirs(work_dir: str) -> List[str]:
    """The runner's timestamped log folders, oldest first."""
    dirs = [d for d in glob.glob(osp.join(work_dir, '*', 'vis_data'))
            if osp.isdir(d)]
    return sorted(dirs)


def _scalar_records(work_dir: str) -> List[dict]:
    records = []
    for vis in _log_dirs(work_dir):
        scalars = osp.join(vis, 'scalars.json')
        stamp = osp.basename(osp.dirname(vis))
        log_json = osp.join(vis, f'{stamp}.json')
        if osp.isfile(scalars):
            records += _read_jsonl(scalars)
        elif osp.isfile(log_json):
            records += _read_jsonl(log_json)
    return records


def _final_cost(work_dir: str, scalars: List[dict]) -> Optional[dict]:
    """Sparsity and costs of the ticket at the end of a SuperTickets run."""
    path = osp.join(work_dir, EVENTS_FILE)
    events = _read_jsonl(path) if osp.isfile(path) else []
    if not events:
        # The same figures also reach the visualizer's scalars.
        prefix = 'supertickets/'
        events = [{k[len(prefix):]: v for k, v in r.items()
                   if k.startswith(prefix)} for r in scalars]
    with_cost = [e for e in events if 'macs' in e]
    if not with_cost:
        return None
    pruned = [e for e in with_cost if 'sparsity' in e]
    last = pruned[-1] if pruned else with_cost[-1]
    sparse = 'sparse_macs' in last
    return dict(
        pruned=bool(pruned),
        sparsity=float(last.get('sparsity', 0.0)),
        macs=last['sparse_macs'] if sparse else last['macs'],
        macs_x_global_density=last.get('macs_x_global_density',
                                       last['macs']),
        dense_macs=last['macs'],
        params=last.get('sparse_params', last.get('params')))


def read_supertickets_dir(work_dir: str,
                          metric: str) -> Optional[dict]:
    """The point of one SuperTickets training run (None without data).

    Example:
        >>> read_supertickets_dir(  # doctest: +SKIP
        ...     'work_dirs/st_cityscapes', 'mIoU')
        {'method': 'SuperTickets', 'sparsity': 0.9, 'macs': ..., ...}
    """
    scalars = _scalar_records(work_dir)
    cost = _final_cost(work_dir, scalars)
    if cost is None:
        warnings.warn(f'{work_dir}: no supertickets event with MACs '
                      f'({EVENTS_FILE} or vis_data/scalars.json); skipped')
        return None
    value = None
    for record in reversed(scalars):
        value = find_metric(record, metric)
        if value is not None:
            break
    if value is None:
        warnings.warn(f'{work_dir}: no validation with {metric!r} in the '
                      'logs; skipped')
        return None
    return dict(method=SUPERTICKETS if cost.pop('pruned') else SEARCH_ONLY,
                metric=value, source=work_dir, input_shape=None, **cost)


def _sp_results(result_dir: str) -> List[Tuple[str, dict]]:
    out = []
    for path in sorted(glob.glob(osp.join(result_dir, '*.json'))):
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(record, dict) and record.get('method') == 'S+P':
            out.append((path, record))
    return out


def read_sp_dir(result_dir: str, metric: str) -> List[dict]:
    """Points of the ``tools/prune_oneshot.py`` results in ``result_dir``.

    Example:
        >>> read_sp_dir('work_dirs/sp', 'mIoU')  # doctest: +SKIP
        [{'method': 'S+P magnitude', 'sparsity': 0.5, ...}, ...]
    """
    points = []
    for path, r in _sp_results(result_dir):
        cost = r.get('complexity', {})
        name = f'S+P {r["scorer"]}'
        if r.get('scope', 'global') != 'global':
            name += f' ({r["scope"]})'
        common = dict(
            sparsity=float(r['sparsity']),
            macs=cost['sparse']['macs'],
            macs_x_global_density=cost['macs_x_global_density'],
            dense_macs=cost['dense_subnet']['macs'],
            params=cost['sparse']['params'],
            input_shape=cost.get('input_shape', r.get('input_shape')),
            source=path)
        metrics = r.get('metrics', {})
        for label, key in ((name, 'oneshot'),
                           (f'{name} + retrain', 'retrained')):
            value = find_metric(metrics.get(key) or {}, metric)
            if value is not None:
                points.append(dict(method=label, metric=value, **common))
    return points


def _available_metrics(work_dirs: Sequence[str]) -> List[str]:
    keys = set()
    for d in work_dirs:
        for _, r in _sp_results(d):
            for m in (r.get('metrics') or {}).values():
                keys.update(m or {})
        for record in _scalar_records(d):
            keys.update(record)
    return sorted(keys)


def collect_points(work_dirs: Sequence[str],
                   metric: Optional[str] = None) -> Tuple[List[dict], str]:
    """Points of every folder, and the metric used.

    Args:
        work_dirs: SuperTickets work dirs and/or S+P result dirs.
        metric: Metric to read; by default the first of
            :data:`DEFAULT_METRICS` found in the folders.
    """
    for d in work_dirs:
        if not osp.isdir(d):
            raise FileNotFoundError(f'{d!r} is not a folder')
    if metric is None:
        keys = _available_metrics(work_dirs)
        metric = next((m for m in DEFAULT_METRICS
                       if any(k == m or k.endswith('/' + m) for k in keys)),
                      None)
        if metric is None:
            raise ValueError(f'none of {list(DEFAULT_METRICS)} is logged in '
                             f'{list(work_dirs)}: name the metric')
    points = []
    for d in work_dirs:
        if _sp_results(d):
            sp = read_sp_dir(d, metric)
            if not sp:
                warnings.warn(f'{d}: no S+P result has {metric!r}')
            points += sp
        elif osp.isfile(osp.join(d, EVENTS_FILE)) or _log_dirs(d):
            point = read_supertickets_dir(d, metric)
            if point is not None:
                points.append(point)
        else:
            warnings.warn(f'{d}: neither S+P results nor a SuperTickets '
                          'work dir; skipped')
    if not points:
        raise ValueError(f'no point with {metric!r} in {list(work_dirs)}')
    return points, metric


def _method_order(method: str) -> tuple:
    # SuperTickets first, then each scorer without and with retraining.
    return (method != SUPERTICKETS, method != SEARCH_ONLY, method)


def tradeoff_table(points: Sequence[dict], metric: str) -> str:
    """A markdown table, one row per point, grouped by method."""
    rows = sorted(points, key=lambda p: (_method_order(p['method']),
                                         p['sparsity'], -p['macs']))
    shapes = sorted({tuple(p['input_shape']) for p in points
                     if p.get('input_shape')})
    at = ', '.join('x'.join(map(str, s)) for s in shapes) or \
        'the search\'s profiling size'
    lines = [
        f'# {metric} against MACs', '',
        f'MACs and params count Conv2d and Linear layers at {at}; sparse '
        'MACs are exact per layer (layer MACs x layer density), '
        '"dense x density" is the dense subnet\'s MACs times the global '
        'density of the masked weights (the figure the paper reports); '
        'params are the non-zero weights plus biases.', '',
        f'| method | sparsity | MACs (sparse exact) | MACs (dense x density) '
        f'| params | {metric} |',
        '|---|---:|---:|---:|---:|---:|'
    ]
    for p in rows:
        params = format_count(p['params']) if p.get('params') is not None \
            else '-'
        lines.append(
            f'| {p["method"]} | {p["sparsity"]:.4f} | '
            f'{format_count(p["macs"])} | '
            f'{format_count(p["macs_x_global_density"])} | {params} | '
            f'{p["metric"]:.2f} |')
    return '\n'.join(lines) + '\n'


def _unit(values: Sequence[float]) -> Tuple[str, float]:
    top = max(values) if values else 0
    for unit, scale in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if top >= scale:
            return unit, scale
    return '', 1.0


def plot_tradeoff(points: Sequence[dict], metric: str, out_file: str,
                  macs: str = 'sparse') -> None:
    """Plot ``metric`` against MACs, one line per method, to ``out_file``.

    Args:
        points: From :func:`collect_points`.
        metric: Y-axis label.
        out_file: Image path (the format follows the extension).
        macs: ``'sparse'`` (exact per layer) or ``'global'`` (dense MACs ×
            global density, as the paper reports).
    """
    if macs not in X_KEYS:
        raise ValueError(f'macs={macs!r} is unknown; choose one of '
                         f'{sorted(X_KEYS)}')
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    key = X_KEYS[macs]
    unit, scale = _unit([p[key] for p in points])
    by_method: Dict[str, List[dict]] = {}
    for p in points:
        by_method.setdefault(p['method'], []).append(p)
    colours = {'random': 'tab:gray', 'magnitude': 'tab:blue',
               'snip': 'tab:green'}
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for method in sorted(by_method, key=_method_order):
        pts = sorted(by_method[method], key=lambda p: p[key])
        xs = [p[key] / scale for p in pts]
        ys = [p['metric'] for p in pts]
        if method == SUPERTICKETS:
            style = dict(color='tab:red', marker='*', markersize=11,
                         linewidth=2.2, linestyle='-')
        elif method == SEARCH_ONLY:
            style = dict(color='black', marker='s', linestyle='none')
        else:
            # Retrained: solid line, filled dots; one-shot: dashed, open.
            retrained = method.endswith('retrain')
            style = dict(color=colours.get(method.split()[1]), marker='o',
                         markersize=5, linewidth=1.4,
                         linestyle='-' if retrained else '--')
            if not retrained:
                style['markerfacecolor'] = 'none'
        ax.plot(xs, ys, label=method, **style)
    shapes = sorted({tuple(p['input_shape']) for p in points
                     if p.get('input_shape')})
    at = f' at {"x".join(map(str, shapes[0]))}' if len(shapes) == 1 else ''
    what = 'sparse, exact per layer' if macs == 'sparse' else \
        'dense x global density'
    ax.set_xlabel(f'MACs{at} ({what}) [{unit or "count"}]')
    ax.set_ylabel(metric)
    ax.set_title(f'{metric} vs MACs: SuperTickets and S+P baselines')
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_file, dpi=150)
    plt.close(fig)


def compare_tradeoff(work_dirs: Sequence[str], out_dir: str,
                     metric: Optional[str] = None,
                     macs: str = 'sparse') -> dict:
    """Write ``tradeoff.png`` and ``tradeoff.md`` for the given folders.

    Example:
        >>> compare_tradeoff(  # doctest: +SKIP
        ...     ['work_dirs/st_90', 'work_dirs/st_95', 'work_dirs/sp'],
        ...     'work_dirs/compare')
        {'png': 'work_dirs/compare/tradeoff.png', ...}
    """
    points, metric = collect_points(work_dirs, metric)
    shapes = {tuple(p['input_shape']) for p in points if p.get('input_shape')}
    if len(shapes) > 1:
        warnings.warn(f'the S+P results were counted at different input '
                      f'sizes {sorted(shapes)}: their MACs do not compare')
    os.makedirs(out_dir, exist_ok=True)
    png = osp.join(out_dir, 'tradeoff.png')
    md = osp.join(out_dir, 'tradeoff.md')
    plot_tradeoff(points, metric, png, macs=macs)
    with open(md, 'w') as f:
        f.write(tradeoff_table(points, metric))
    return dict(png=png, md=md, metric=metric, points=points)
