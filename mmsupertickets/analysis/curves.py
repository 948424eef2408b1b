"""Accuracy-against-MACs curves compared at matched cost.

Pure functions over the sweep's run records (see :mod:`.sweep`): one curve
per method and retraining length, one point per pruning ratio, statistics
over seeds; each seed's curve interpolated linearly in log MACs onto common
points inside the range every curve covers; differences against
SuperTickets paired by seed; the area under each curve over that range.
"""
import math
import statistics
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'X_KEYS', 'SUPERTICKETS', 'curve_label', 'seed_curves', 'mean_curve',
    'interp_log', 'common_range', 'matched_points', 'curve_area',
    'compare_at_matched_macs', 'verdict'
]

SUPERTICKETS = 'supertickets'
# --macs: the record field the x axis reads.
X_KEYS = {'sparse': 'macs', 'global': 'macs_global'}
_NAMES = {'supertickets': 'SuperTickets', 'sp-random': 'S+P random',
          'sp-magnitude': 'S+P magnitude', 'sp-snip': 'S+P SNIP',
          'search-only': 'search only (dense subnet)'}

Curve = Tuple[str, int]  # (method, retrain iterations)


def curve_label(curve: Curve) -> str:
    """``('sp-snip', 100)`` → ``'S+P SNIP w/ RT'``."""
    method, retrain = curve
    return _NAMES.get(method, method) + (' w/ RT' if retrain else '')


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def seed_curves(records: Sequence[dict], metric: str, x_key: str = 'macs'
                ) -> Dict[Curve, Dict[int, List[Tuple[float, float, float]]]]:
    """``{(method, retrain): {seed: [(x, metric, ratio), ...]}}``, x
    ascending, from the successful records that carry ``metric``."""
    out: Dict[Curve, Dict[int, list]] = {}
    for r in records:
        value = (r.get('metrics') or {}).get(metric)
        if r.get('status') != 'ok' or value is None or r.get(x_key) is None:
            continue
        curve = (r['method'], int(r['retrain']))
        out.setdefault(curve, {}).setdefault(int(r['seed']), []).append(
            (float(r[x_key]), float(value), float(r['ratio'])))
    for seeds in out.values():
        for points in seeds.values():
            points.sort()
    return out


def mean_curve(seeds: Dict[int, list]) -> List[dict]:
    """Mean ± std over seeds per ratio, x ascending."""
    by_ratio: Dict[float, list] = {}
    for points in seeds.values():
        for x, y, ratio in points:
            by_ratio.setdefault(ratio, []).append((x, y))
    rows = []
    for ratio, pts in by_ratio.items():
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        rows.append(dict(ratio=ratio, x=statistics.mean(xs), x_std=_std(xs),
                         y=statistics.mean(ys), y_std=_std(ys), n=len(pts)))
    return sorted(rows, key=lambda r: r['x'])


def interp_log(xs: Sequence[float], ys: Sequence[float],
               at: Sequence[float]) -> np.ndarray:
    """``ys`` at ``at``, linear in log x between the given points.

    Points at equal x are averaged; ``at`` must lie inside
    ``[min(xs), max(xs)]`` (no extrapolation).

    Example:
        >>> interp_log([1e6, 1e8], [10.0, 30.0], [1e7]).round(6).tolist()
        [20.0]
    """
    xs = np.asarray(xs, dtype=float)
    ys = np.asarray(ys, dtype=float)
    at = np.asarray(at, dtype=float)
    if len(xs) == 0 or len(xs) != len(ys):
        raise ValueError(f'interp_log needs as many ys as xs, got '
                         f'{len(xs)} and {len(ys)}')
    if (xs <= 0).any() or (at <= 0).any():
        raise ValueError('MACs must be positive on a log axis')
    ux = np.unique(xs)
    uy = np.array([ys[xs == x].mean() for x in ux])
    if at.min() < ux[0] * (1 - 1e-9) or at.max() > ux[-1] * (1 + 1e-9):
        raise ValueError(f'points {at.min():.4g}..{at.max():.4g} lie outside '
                         f'the curve\'s range {ux[0]:.4g}..{ux[-1]:.4g}')
    return np.interp(np.log(at), np.log(ux), uy)


def common_range(curves: Sequence[Sequence[float]]
                 ) -> Optional[Tuple[float, float]]:
    """``(lo, hi)``: the x range every curve covers (each given by its
    xs), or None when they do not overlap."""
    lo = max(min(xs) for xs in curves)
    hi = min(max(xs) for xs in curves)
    return (lo, hi) if lo < hi else None


def matched_points(lo: float, hi: float, num: int = 5) -> List[float]:
    """``num`` points evenly spaced in log MACs from ``lo`` to ``hi``."""
    return np.geomspace(lo, hi, num).tolist()


def curve_area(xs: Sequence[float], ys: Sequence[float], lo: float,
               hi: float, num: int = 64) -> float:
    """Area under the curve over ``[lo, hi]`` in log MACs, divided by the
    width: the curve's mean metric over the range (metric units)."""
    grid = np.geomspace(lo, hi, num)
    values = interp_log(xs, ys, grid)
    # The trapezoid rule by hand: NumPy 1 and 2 name it differently.
    steps = np.diff(np.log(grid))
    area = float(np.sum((values[1:] + values[:-1]) / 2 * steps))
    return area / (math.log(hi) - math.log(lo))


def _reference(curve: Curve) -> Curve:
    # Retrained arms are compared with retrained tickets (the same number
    # of training iterations); the others with tickets as trained.
    return (SUPERTICKETS, curve[1])


def compare_at_matched_macs(curves: Dict[Curve, Dict[int, list]],
                            num: int = 5) -> Optional[dict]:
    """The matched-cost comparison of every curve with SuperTickets.

    Each seed's curve is interpolated (log MACs) onto ``num`` points inside
    the range that every seed's curve of every method covers. Δ is taken
    against SuperTickets with the same retraining, paired by seed (seeds
    missing on either side are left out); its spread is the std over those
    seeds.

    Returns:
        dict | None: ``range``, ``points`` and per curve ``rows[label]``
        with ``values`` (mean, std, n per point), ``delta`` (mean, std, n
        per point, None without a reference), ``area`` (mean, std) and
        ``reference``; None when the curves share no range.
    """
    usable = {c: s for c, s in curves.items()
              if c[0] != 'search-only'
              and all(len({p[0] for p in pts}) > 1 for pts in s.values())}
    if not usable:
        return None
    rng = common_range([[p[0] for p in pts] for s in usable.values()
                        for pts in s.values()])
    if rng is None:
        return None
    points = matched_points(*rng, num)
    at = {}
    area = {}
    for curve, seeds in usable.items():
        at[curve] = {s: interp_log([p[0] for p in pts], [p[1] for p in pts],
                                   points) for s, pts in seeds.items()}
        area[curve] = [curve_area([p[0] for p in pts], [p[1] for p in pts],
                                  *rng) for pts in seeds.values()]
    rows = {}
    for curve in sorted(usable, key=lambda c: (c[1], c[0] != SUPERTICKETS,
                                               c[0])):
        vals = np.array(list(at[curve].values()))
        ref = _reference(curve)
        delta = None
        if ref in at and ref != curve:
            paired = sorted(set(at[curve]) & set(at[ref]))
            if paired:
                d = np.array([at[curve][s] - at[ref][s] for s in paired])
                delta = [dict(mean=float(d[:, k].mean()),
                              std=_std(d[:, k].tolist()), n=len(paired))
                         for k in range(len(points))]
        rows[curve_label(curve)] = dict(
            curve=list(curve), reference=curve_label(ref) if delta else None,
            values=[dict(mean=float(vals[:, k].mean()),
                         std=_std(vals[:, k].tolist()), n=len(vals))
                    for k in range(len(points))],
            delta=delta,
            area=dict(mean=statistics.mean(area[curve]),
                      std=_std(area[curve]), n=len(area[curve])))
    return dict(range=list(rng), points=points, rows=rows)


def verdict(task: str, comparison: Optional[dict], metric: str) -> str:
    """One line: which arm is ahead of SuperTickets where, and whether the
    gaps exceed the seed spread."""
    if comparison is None:
        return (f'{task}: no comparison yet (the curves share no MACs '
                'range, or a method has fewer than two ratios done).')
    ahead, behind, tied = [], [], []
    for label, row in comparison['rows'].items():
        if not row['delta']:
            continue
        d = row['delta']
        beyond = [abs(p['mean']) > p['std'] and p['n'] > 1 for p in d]
        spread = (f'gap beyond the seed spread at {sum(beyond)}/{len(d)} '
                  'points' if d[0]['n'] > 1 else 'one seed: no spread yet')
        what = (f'{label} (Δ {statistics.mean(p["mean"] for p in d):+.2f} '
                f'{metric} on average, {spread})')
        # Points where it leads by what the table prints (0.01), so that
        # float noise at a crossing is no lead.
        wins = sum(round(p['mean'], 2) > 0 for p in d)
        if wins == len(d):
            ahead.append(what)
        elif wins == 0:
            behind.append(what)
        else:
            tied.append(what.replace(' (', f' (ahead at {wins}/{len(d)} '
                                     'points, ', 1))
    best = max(comparison['rows'].items(), key=lambda kv: kv[1]['area'][
        'mean'])
    lo, hi = comparison['range']
    parts = [f'{task}: between {lo / 1e6:.3g} and {hi / 1e6:.3g} MMACs the '
             f'largest area is {best[0]}\'s (mean {metric} '
             f'{best[1]["area"]["mean"]:.2f})']
    if behind:
        parts.append('SuperTickets is ahead of ' + '; '.join(behind))
    if ahead:
        parts.append('SuperTickets is BEHIND ' + '; '.join(ahead))
    if tied:
        parts.append('The curves cross for ' + '; '.join(tied))
    return '. '.join(parts) + '.'
