"""The claims report: matched-MACs tables, verdict, figures, from the
stored run records alone."""
import json
import os
import os.path as osp
from typing import List, Optional, Sequence

from .curves import (
    X_KEYS,
    compare_at_matched_macs,
    curve_label,
    mean_curve,
    seed_curves,
    verdict,
)
from .figures import plot_claims, task_metrics
from .sweep_store import RunStore

__all__ = ['write_report']


def _pm(mean: float, std: float) -> str:
    return f'{mean:.2f} ± {std:.2f}'


def _matched_table(comp: dict, metric: str, macs: str) -> List[str]:
    pts = comp['points']
    head = ' | '.join(f'{p / 1e6:.3g} M' for p in pts)
    lines = [f'{metric} at matched {macs} MACs (interpolated in log MACs; '
             'in brackets Δ vs SuperTickets with the same retraining, '
             'paired by seed, ± its std over seeds); area = mean '
             f'{metric} over the common range:', '',
             f'| arm | {head} | area |',
             '|---|' + '---:|' * (len(pts) + 1)]
    for label, row in comp['rows'].items():
        cells = []
        for k, v in enumerate(row['values']):
            cell = _pm(v['mean'], v['std'])
            if row['delta']:
                d = row['delta'][k]
                cell += f' ({d["mean"]:+.2f} ± {d["std"]:.2f})'
            cells.append(cell)
        a = row['area']
        lines.append(f'| {label} (n={a["n"]}) | {" | ".join(cells)} | '
                     f'{_pm(a["mean"], a["std"])} |')
    return lines


def _curve_table(records: Sequence[dict], metric: str) -> List[str]:
    curves = seed_curves(records, metric, 'macs')
    lines = ['Every point (mean ± std over seeds; n = seeds done):', '',
             f'| arm | ratio | n | {metric} | sparse MMACs | '
             'MMACs (dense x global density) |', '|---|---:|---:|---:|---:|'
             '---:|']
    glob_x = seed_curves(records, metric, 'macs_global')
    for curve in sorted(curves, key=lambda c: (c[1], c[0])):
        g = {r['ratio']: r for r in mean_curve(glob_x.get(curve, {}))}
        for r in sorted(mean_curve(curves[curve]),
                        key=lambda r: r['ratio']):
            gx = g.get(r['ratio'], {}).get('x', float('nan'))
            lines.append(f'| {curve_label(curve)} | {r["ratio"]:g} | '
                         f'{r["n"]} | {_pm(r["y"], r["y_std"])} | '
                         f'{r["x"] / 1e6:.3g} | {gx / 1e6:.3g} |')
    return lines


def write_report(out_dir: str, task: Optional[str], macs: str = 'sparse',
                 command: str = '', protocol: str = '',
                 seeds: Optional[Sequence[int]] = None) -> dict:
    """Write ``claims.md``, ``claims.json`` and the figures
    (``claims_<task>_sparse.png``, ``claims_<task>_global.png``) of the
    records stored in ``out_dir`` (of ``seeds`` only, when given: a seed
    still running would move the matched range).

    Returns:
        dict: What ``claims.json`` holds.
    """
    if macs not in X_KEYS:
        raise ValueError(f'macs={macs!r} is unknown; choose one of '
                         f'{sorted(X_KEYS)}')
    records = RunStore(out_dir).records()
    if seeds is not None:
        wanted = set(seeds)
        records = [r for r in records if r.get('seed') in wanted]
    name = task or 'config'
    metrics = task_metrics(task, records)
    figures = {}
    if metrics:
        for axis in X_KEYS:
            path = osp.join(out_dir, f'claims_{name}_{axis}.png')
            plot_claims(records, metrics, axis, path, title=f'{name}: '
                        f'{metrics[0]} vs {axis} MACs')
            figures[axis] = osp.basename(path)
    headline = metrics[0] if metrics else None
    comparisons = {axis: compare_at_matched_macs(
        seed_curves(records, headline, key)) if headline else None
        for axis, key in X_KEYS.items()}
    line = verdict(name, comparisons[macs], headline or '-')
    failed = [r for r in records if r.get('status') != 'ok']
    ok = len(records) - len(failed)
    md = [f'# SuperTickets vs S+P at matched MACs: {name}', '',
          protocol, '', f'Regenerate: `{command}`' if command else '',
          '', f'**Verdict ({macs} MACs).** {line}', '',
          f'{ok} runs stored, {len(failed)} failed'
          + (f' (seeds {", ".join(map(str, seeds))}).' if seeds is not None
             else '.'), '']
    for axis, fig in figures.items():
        md += [f'![{name}, {axis} MACs]({fig})', '']
    if headline and comparisons[macs]:
        md += _matched_table(comparisons[macs], headline, macs) + ['']
    if headline:
        md += _curve_table(records, headline) + ['']
    if failed:
        md += ['Failed runs (marked, the sweep went on):', '']
        md += [f'- `{r["key"]}`: {r.get("error")}' for r in failed]
    data = dict(task=name, macs=macs, metrics=metrics, verdict=line,
                comparisons=comparisons, figures=figures,
                runs=dict(ok=ok, failed=[r['key'] for r in failed]),
                seeds=sorted({r['seed'] for r in records}), command=command)
    with open(osp.join(out_dir, 'claims.md'), 'w') as f:
        f.write('\n'.join(md).replace('\n\n\n', '\n\n') + '\n')
    with open(osp.join(out_dir, 'claims.json') + '.tmp', 'w') as f:
        json.dump(data, f, indent=1)
    os.replace(osp.join(out_dir, 'claims.json') + '.tmp',
               osp.join(out_dir, 'claims.json'))
    return data
