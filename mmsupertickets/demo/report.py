"""The demo's ``report.md``: result, size and cost, events, plots, export."""
import json
import math
import os
import os.path as osp
from typing import List, Optional

from mmsupertickets.apis.export.ticket_export import format_search

from .architecture import all_groups, group_channels
from .plots import (
    plot_architecture,
    plot_metric_and_macs,
    plot_sparsity_and_channels,
)
from .run_files import val_series
from .tasks import task_title


def fmt_count(n: Optional[float]) -> str:
    """1.235 M / 12.000 K / 512: the report's way of printing counts."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return 'n/a'
    for unit, scale in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if abs(n) >= scale:
            return f'{n / scale:.3f} {unit}'
    return f'{int(n)}'


def fmt_num(v, digits: int = 2) -> str:
    """``v`` with ``digits`` decimals, ``'n/a'`` for None."""
    if v is None:
        return 'n/a'
    return f'{v:.{digits}f}'


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

def _draw_plots(out_dir: str, info: dict, series: list,
                events: List[dict]) -> dict:
    """Draw the report's PNGs into ``out_dir``; their file names."""
    plots = dict(
        metric='metric_and_macs.png',
        sparsity='sparsity_and_channels.png',
        arch='architecture.png')
    plot_metric_and_macs(osp.join(out_dir, plots['metric']), series, events,
                         info['metric_label'])
    plot_sparsity_and_channels(osp.join(out_dir, plots['sparsity']), events)
    arch = info.get('arch') or {}
    if arch:
        plot_architecture(osp.join(out_dir, plots['arch']), arch,
                          info.get('supernet_arch'))
    return plots


def _title_lines(info: dict) -> List[str]:
    md = [f'# SuperTickets demo: {task_title(info["task"])}\n',
          f'Config: `{info["config"]}`  ']
    if info.get('checkpoint'):
        md.append(f'Ticket checkpoint: `{info["checkpoint"]}`\n')
    return md


def _result_lines(info: dict, measured: Optional[float],
                  final: Optional[dict]) -> List[str]:
    """The ticket's metric against chance, and its sparsity."""
    label, digits = info['metric_label'], info.get('digits', 2)
    chance = info.get('chance') or {}
    target = final.get('target_sparsity') if final else None
    achieved = final.get('sparsity') if final else None
    md = ['\n## Result\n', '| | value |\n|---|---|',
          f'| {label} of the ticket (tools/test.py) | '
          f'{fmt_num(measured, digits)} |']
    if chance:
        md.append(f'| chance level | {fmt_num(chance.get("value"), digits)} |')
    md.append(f'| sparsity achieved / target | {fmt_num(achieved, 4)} / '
              f'{fmt_num(target, 4)} |')
    if final:
        md.append(f'| prunable weights (conv + linear, classifier '
                  f'excluded) | {fmt_count(final.get("prunable_weights"))} |')
    md.append('')
    if chance.get('how'):
        md.append(f'Chance: {chance["how"]}\n')
    if measured is not None and chance.get('value') is not None:
        ratio = measured / chance['value'] if chance['value'] else math.inf
        md.append(f'The ticket scores {fmt_num(measured, digits)} against '
                  f'{fmt_num(chance["value"], digits)} for chance '
                  f'({ratio:.1f}x).\n')
    return md


def _size_lines(s: dict, shape) -> List[str]:
    """Params and MACs of the supernet, the shrunk subnet and the ticket."""
    final, supernet, subnet = s['final'], s['supernet'], s['subnet']
    shape_txt = f'{shape[0]}x{shape[1]}' if shape else 'n/a'
    md = ['## Size and cost\n',
          f'Counted: weights and biases of every Conv2d and Linear '
          f'(params); multiply-accumulates of Conv2d and Linear '
          f'(MACs), BN, activations, additions and resizes count 0; '
          f'the whole model (backbone, neck and head, classifier '
          f'included) on one {shape_txt} input.\n',
          '| model | params | MACs |\n|---|---|---|']
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
    return md


def _event_lines(events: List[dict]) -> List[str]:
    md = ['## Events\n',
          '| iter | event | target | sparsity | live channels | '
          'kernel paths | MACs | sparse MACs |',
          '|---|---|---|---|---|---|---|---|']
    for e in events:
        md.append(
            f'| {e.get("iter")} | {e["event"]} | '
            f'{fmt_num(e.get("target_sparsity"), 3)} | '
            f'{fmt_num(e.get("sparsity"), 4)} | '
            f'{e.get("live_channels", "")} | '
            f'{e.get("kernel_paths", "")} | {fmt_count(e.get("macs"))} | '
            f'{fmt_count(e.get("sparse_macs"))} |')
    md.append('')
    return md


def _plot_and_architecture_lines(plots: dict, info: dict,
                                 final: Optional[dict]) -> List[str]:
    """The plots, the ticket's channels per stage and its sparsity."""
    md = ['## Plots\n', f'![metric and MACs]({plots["metric"]})\n',
          f'![sparsity and channels]({plots["sparsity"]})\n']
    arch = info.get('arch') or {}
    if arch:
        md.append('## Final architecture\n')
        md.append(f'![architecture]({plots["arch"]})\n')
        full = group_channels(info.get('supernet_arch') or {})
        ticket = group_channels(arch)
        md.append('| stage / branch | supernet channels | ticket channels '
                  '(per kernel) |\n|---|---|---|')
        for name in all_groups(ticket, full):
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
    return md


def _export_lines(out_dir: str) -> List[str]:
    """What ``tools/export_ticket.py`` wrote, with its ``summary.json``."""
    md = ['## Export\n']
    summary = osp.join(out_dir, 'ticket', 'summary.json')
    if not osp.isfile(summary):
        md.append('Not exported in this run: `tools/export_ticket.py '
                  'CONFIG CKPT --out DIR` writes the deployable ticket.\n')
        return md
    md.append('`ticket/` (tools/export_ticket.py): `config.py` builds '
              'the shrunk subnet with no SuperTickets hooks and loads '
              '`ticket.pth` (masks baked in); `arch.json`, '
              '`ticket_sparse.pth` (kept values + positions) and '
              '`summary.json`:\n')
    with open(summary) as f:
        text = f.read()
    searched = format_search(json.loads(text).get('search') or {})
    if searched:
        md.append('; '.join(searched) + '.\n')
    md.append('```json\n' + text.strip() + '\n```\n')
    return md


def _wall_time_lines(timings: dict) -> List[str]:
    if not timings:
        return []
    md = ['## Wall time\n', '| step | seconds |\n|---|---|']
    for k, v in timings.items():
        md.append(f'| {k} | {v:.0f} |')
    md.append(f'\nThreads per process: '
              f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", 1)}; '
              f'CPU cores: {os.cpu_count()}.\n')
    return md


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
    metric = info['metric']
    series = val_series(info.get('scalars', []), metric)
    test = info.get('test_metrics', {})
    measured = test.get(metric, series[-1][1] if series else None)
    plots = _draw_plots(out_dir, info, series, events)
    md = (_title_lines(info) + _result_lines(info, measured, s['final']) +
          _size_lines(s, info.get('input_shape')) + _event_lines(events) +
          _plot_and_architecture_lines(plots, info, s['final']) +
          _export_lines(out_dir) +
          _wall_time_lines(info.get('timings') or {}))
    path = osp.join(out_dir, 'report.md')
    with open(path, 'w') as f:
        f.write('\n'.join(md))
    return path
