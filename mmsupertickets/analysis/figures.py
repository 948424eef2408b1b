"""Figures of the claims sweep: each metric against MACs, one line per arm."""
from typing import Dict, Optional, Sequence

from .curves import X_KEYS, curve_label, mean_curve, seed_curves

__all__ = ['PANELS', 'task_metrics', 'plot_claims']

# The paper's panels per task (the evaluators' keys).
PANELS = {
    'seg': ('mIoU', 'mAcc', 'aAcc'),
    'ade20k': ('mIoU', 'mAcc', 'aAcc'),
    'pose': ('coco/AP', 'coco/AP (M)', 'coco/AP (L)'),
    'cls': ('accuracy/top1', 'accuracy/top5'),
}
_COLOURS = {'supertickets': 'tab:red', 'sp-random': 'tab:gray',
            'sp-magnitude': 'tab:blue', 'sp-snip': 'tab:green',
            'search-only': 'black'}
_AXIS = {'sparse': 'sparse MACs (exact per layer)',
         'global': 'dense subnet MACs x global density (the paper\'s)'}


def task_metrics(task: Optional[str], records: Sequence[dict]) -> list:
    """The panels of ``task`` that the records hold; for another task the
    first family whose headline metric is there."""
    have = {k for r in records for k in (r.get('metrics') or {})}
    families = [PANELS[task]] if task in PANELS else list(PANELS.values())
    for panels in families:
        found = [m for m in panels if m in have]
        if found:
            return found
    return sorted(have)[:3]


def _order(curve) -> tuple:
    method, retrain = curve
    return (retrain, method != 'supertickets', method)


def plot_claims(records: Sequence[dict], metrics: Sequence[str],
                macs: str, out_file: str, title: str = '') -> None:
    """One panel per metric: mean over seeds against MACs (log axis), a
    band of ± std, dashed lines for the retrained (w/ RT) arms.

    Args:
        records: The sweep's run records.
        metrics: Metric keys, one panel each.
        macs: ``'sparse'`` or ``'global'`` (the x axis).
        out_file: Image path.
    """
    if macs not in X_KEYS:
        raise ValueError(f'macs={macs!r} is unknown; choose one of '
                         f'{sorted(X_KEYS)}')
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, NullFormatter
    fig, axes = plt.subplots(1, max(len(metrics), 1),
                             figsize=(5.2 * max(len(metrics), 1), 4.4),
                             squeeze=False)
    seeds = sorted({r['seed'] for r in records if r.get('status') == 'ok'})
    for ax, metric in zip(axes[0], metrics):
        curves: Dict = seed_curves(records, metric, X_KEYS[macs])
        for curve in sorted(curves, key=_order):
            method, retrain = curve
            rows = mean_curve(curves[curve])
            xs = [r['x'] / 1e6 for r in rows]
            ys = [r['y'] for r in rows]
            sd = [r['y_std'] for r in rows]
            colour = _COLOURS.get(method)
            if method == 'search-only':
                ax.errorbar(xs, ys, yerr=sd, fmt='s', color=colour,
                            label=curve_label(curve), capsize=3)
                continue
            ax.plot(xs, ys, color=colour, linestyle='--' if retrain else '-',
                    marker='*' if method == 'supertickets' else 'o',
                    markersize=8 if method == 'supertickets' else 4,
                    linewidth=2 if method == 'supertickets' else 1.3,
                    label=curve_label(curve))
            ax.fill_between(xs, [y - s for y, s in zip(ys, sd)],
                            [y + s for y, s in zip(ys, sd)], color=colour,
                            alpha=0.12, linewidth=0)
        ax.set_xscale('log')
        # Plain numbers on the major ticks, none on the crowded minor ones.
        ax.xaxis.set_major_formatter(FormatStrFormatter('%g'))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f'{_AXIS[macs]} [M]')
        ax.set_ylabel(metric)
        ax.grid(True, which='both', alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f'{title} (mean ± std over seeds {seeds})', fontsize=10)
    fig.tight_layout()
    fig.savefig(out_file, dpi=120)
    plt.close(fig)
