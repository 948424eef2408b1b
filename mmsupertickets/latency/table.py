"""The latency table: measured milliseconds per searchable unit and width.

A table holds, for every searchable unit of one supernet, the latency of the
unit alone at a grid of kept channels (:func:`width_grid`) for each channel
divisor it was measured for, and the latency of the model outside the units
(the supernet with every unit removed). It also states where and how it was
measured: device, runtime, threads, input shape, library versions, rounds
and the spread of every median. It is plain JSON, so a table measured on the
deployment machine can be copied to wherever the search runs.
"""
import bisect
import json
import math
from typing import Dict, List, Optional, Sequence

from mmsupertickets.utils.atomic_write import _write_atomically

__all__ = ['TABLE_FORMAT', 'RUNTIMES', 'LatencyTable', 'width_grid',
           'interpolate']

TABLE_FORMAT = 'mmsupertickets.latency_table/1'
RUNTIMES = ('pytorch', 'onnxruntime')


def width_grid(channels: int, divisor: int, points: int = 6) -> List[int]:
    """The kept-channel counts at which a unit of ``channels`` is timed for
    the search's ``divisor``: deterministic, sorted, without repeats.

    ``points`` evenly spaced widths ``channels * i / points`` rounded to a
    multiple of ``divisor``, the smallest width a search can leave
    (``divisor``) and the supernet's own width (where every search starts).
    For divisor 1 the inner widths are made odd: a free width is rarely a
    multiple of 8, and timing aligned widths would promise a speed that
    free widths do not get. A unit narrower than ``divisor`` can only stay
    whole or go: its grid is its own width.

    Example:
        >>> width_grid(96, 8)
        [8, 16, 32, 48, 64, 80, 96]
        >>> width_grid(96, 1)
        [1, 15, 31, 47, 63, 79, 96]
        >>> width_grid(12, 16)
        [12]
    """
    for value, key in ((channels, 'channels'), (divisor, 'divisor'),
                       (points, 'points')):
        if isinstance(value, bool) or not isinstance(value, int) or \
                value < 1:
            raise ValueError(f'{key}={value!r} must be a positive integer')
    if divisor > channels:
        return [channels]
    widths = {divisor, channels}
    for i in range(1, points):
        w = max(divisor, int(round(channels * i / points / divisor)) *
                divisor)
        if divisor == 1 and w % 2 == 0:
            w -= 1
        widths.add(max(w, 1))
    return sorted(w for w in widths if w <= channels)


def interpolate(widths: Sequence[int], values: Sequence[float],
                n: float) -> float:
    """Piecewise-linear value at ``n`` kept channels; 0 for a removed unit
    (``n == 0``), the first value below the first width and a straight
    line through the last two widths above the last one.

    Example:
        >>> interpolate([8, 16, 32], [1.0, 2.0, 3.0], 24)
        2.5
        >>> interpolate([8, 16, 32], [1.0, 2.0, 3.0], 0)
        0.0
    """
    if n <= 0:
        return 0.0
    if len(widths) == 1 or n <= widths[0]:
        return float(values[0])
    i = min(max(bisect.bisect_left(widths, n), 1), len(widths) - 1)
    w0, w1 = widths[i - 1], widths[i]
    v0, v1 = values[i - 1], values[i]
    return float(v0 + (v1 - v0) * (n - w0) / (w1 - w0))


def _check_grid(grid, where: str) -> None:
    widths, ms = grid.get('widths'), grid.get('ms')
    if not isinstance(widths, list) or not isinstance(ms, list) or \
            not widths or len(widths) != len(ms):
        raise ValueError(f'{where} needs equally long, non-empty "widths" '
                         f'and "ms" lists, got {grid!r}')
    if any(not isinstance(w, int) or w < 1 for w in widths) or \
            widths != sorted(set(widths)):
        raise ValueError(f'{where}.widths={widths} must be increasing '
                         'positive integers')
    if any(not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0
           for v in ms):
        raise ValueError(f'{where}.ms={ms} must be finite numbers >= 0')


class LatencyTable:
    """A measured latency table (see the module docstring), as a JSON dict.

    Keys: ``format``, ``device``, ``runtime``, ``threads``, ``shape``
    ([H, W]), ``fixed_ms`` (the model outside the units), ``supernet_ms``,
    ``divisors`` (``{"8": {"unit_scale": s, "offset_ms": o, ...}}``, the
    calibration from units alone to the whole model), ``default_divisor``
    and ``units``: ``{unit name: {"channels": c, "signature": ...,
    "grids": {"8": {"widths": [...], "ms": [...], "spread": [...]}}}}``;
    what the measurement was (rounds, versions, spread of the model
    timings) is kept under ``measurement``.

    Args:
        data (dict): The table.
        source (str): Where it was read, for error messages.

    Example:
        >>> table = LatencyTable.load('table.json')  # doctest: +SKIP
        >>> table.unit_ms('backbone.stage1.branch0.block0.paths.k3', 40,
        ...               8)  # doctest: +SKIP
    """

    def __init__(self, data: dict, source: str = 'the latency table'):
        self.source = source
        self.data = self._checked(data, source)

    # -- reading and writing ------------------------------------------------
    @staticmethod
    def _checked(data, source: str) -> dict:
        if not isinstance(data, dict) or data.get('format') != TABLE_FORMAT:
            raise ValueError(
                f'{source} is not a latency table: its "format" must be '
                f'{TABLE_FORMAT!r} (write one with '
                'tools/analysis/latency_table.py)')
        for key in ('runtime', 'shape', 'threads', 'fixed_ms', 'units',
                    'divisors', 'default_divisor'):
            if key not in data:
                raise ValueError(f'{source} has no {key!r}')
        if data['runtime'] not in RUNTIMES:
            raise ValueError(f'{source}: runtime={data["runtime"]!r} is not '
                             f'one of {RUNTIMES}')
        divisors = set(data['divisors'])
        if str(data['default_divisor']) not in divisors:
            raise ValueError(
                f'{source}: default_divisor={data["default_divisor"]} has '
                f'no grid (divisors {sorted(divisors, key=int)})')
        for name, unit in data['units'].items():
            missing = divisors - set(unit.get('grids', {}))
            if missing:
                raise ValueError(f'{source}: unit {name} has no grid for '
                                 f'divisor(s) {sorted(missing, key=int)}')
            for d, grid in unit['grids'].items():
                _check_grid(grid, f'{source}: units.{name}.grids.{d}')
        return data

    @classmethod
    def load(cls, path: str) -> 'LatencyTable':
        with open(path) as f:
            try:
                data = json.load(f)
            except ValueError as e:
                raise ValueError(f'{path} is not valid JSON: {e}') from None
        return cls(data, path)

    def save(self, path: str) -> None:
        text = json.dumps(self.data, indent=1, allow_nan=False) + '\n'
        _write_atomically(path, lambda f: f.write(text.encode()))

    # -- facts --------------------------------------------------------------
    @property
    def runtime(self) -> str:
        return self.data['runtime']

    @property
    def measured_on(self) -> str:
        """Where its times hold: runtime, threads and input size."""
        return (f'{self.runtime} with {self.data["threads"]} thread(s) at '
                f'{self.shape[0]}x{self.shape[1]}')

    @property
    def shape(self) -> List[int]:
        return [int(s) for s in self.data['shape']]

    @property
    def units(self) -> Dict[str, dict]:
        return self.data['units']

    @property
    def fixed_ms(self) -> float:
        return float(self.data['fixed_ms'])

    @property
    def divisors(self) -> List[int]:
        return sorted(int(d) for d in self.data['divisors'])

    @property
    def default_divisor(self) -> int:
        return int(self.data['default_divisor'])

    def unit_scale(self, divisor: int) -> float:
        """Factor from units timed alone to units inside the model (1 on a
        hand-built table)."""
        return float(self.data['divisors'][str(divisor)].get('unit_scale',
                                                             1.0))

    def offset_ms(self, divisor: int) -> float:
        """The predicted time of a subnet beyond its units' (fitted on a
        measured table; ``fixed_ms`` on a hand-built or older one)."""
        return float(self.data['divisors'][str(divisor)].get(
            'offset_ms', self.fixed_ms))

    def grid(self, name: str, divisor: int) -> dict:
        unit = self.units.get(name)
        if unit is None:
            raise KeyError(f'{self.source} has no unit named {name}')
        grid = unit['grids'].get(str(divisor))
        if grid is None:
            raise KeyError(f'{self.source} has no grid for divisor '
                           f'{divisor} (divisors {self.divisors})')
        return grid

    def unit_ms(self, name: str, channels: float, divisor: int) -> float:
        """Milliseconds of unit ``name`` alone with ``channels`` kept,
        interpolated in its grid for ``divisor``."""
        grid = self.grid(name, divisor)
        return interpolate(grid['widths'], grid['ms'], channels)

    def check_divisor(self, divisor: Optional[int]) -> int:
        """``divisor`` (None: the table's default), refused when the table
        has no grid for it."""
        if divisor is None:
            return self.default_divisor
        if str(divisor) not in self.data['divisors']:
            raise ValueError(
                f'channel_divisor={divisor} has no grid in {self.source} '
                f'(measured for divisors {self.divisors}): build the table '
                f'with --divisors {divisor} or use one of those')
        return int(divisor)
