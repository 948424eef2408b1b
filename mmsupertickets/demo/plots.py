"""The report's PNG figures: metric and MACs, sparsity, architecture."""
from collections import OrderedDict
from typing import Dict, List, Optional

from .architecture import all_groups, group_channels


def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def plot_metric_and_macs(path: str, series: List[tuple], events: List[dict],
                         label: str) -> None:
    """The validation metric and the dense and sparse MACs over training."""
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
    _save(plt, fig, path)


def plot_sparsity_and_channels(path: str, events: List[dict]) -> None:
    """Sparsity (target and achieved) per prune event, live channels."""
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
    _save(plt, fig, path)


def plot_architecture(path: str, arch: Dict[str, int],
                      supernet: Optional[Dict[str, int]]) -> None:
    """Channels per stage and branch: the supernet's, the ticket's by
    kernel."""
    plt = _plt()
    ticket = group_channels(arch)
    full = group_channels(supernet) if supernet else OrderedDict()
    names = all_groups(ticket, full)
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
    _save(plt, fig, path)


def _save(plt, fig, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
