"""The sweep's results: one small JSON record per run, keyed by (method,
ratio, seed, retrain) under ``<out>/runs``; a rerun reads them to resume."""
import glob
import json
import os
import os.path as osp
from typing import List, Optional

__all__ = ['run_key', 'parse_key', 'failed_record', 'RunStore']


def run_key(method: str, ratio: float, seed: int, retrain: int) -> str:
    """The store key of one result, e.g. ``'sp-snip_r0.9_s0_rt100'``."""
    return f'{method}_r{ratio:g}_s{seed}_rt{retrain}'


def parse_key(key: str) -> tuple:
    """``(method, ratio, seed, retrain)`` of a :func:`run_key`.

    Example:
        >>> parse_key('sp-snip_r0.9_s0_rt100')
        ('sp-snip', 0.9, 0, 100)
    """
    method, ratio, seed, rt = key.rsplit('_', 3)
    return method, float(ratio[1:]), int(seed[1:]), int(rt[2:])


def failed_record(key: str, error: str) -> dict:
    """The record of a run that produced no result, with ``error``.

    Example:
        >>> failed_record('search-only_r0_s1_rt0', 'worker died')['status']
        'failed'
    """
    method, ratio, seed, rt = parse_key(key)
    return dict(key=key, method=method, ratio=ratio, seed=seed, retrain=rt,
                status='failed', error=error)


class RunStore:
    """One small JSON file per result under ``<root>/runs``."""

    def __init__(self, root: str):
        self.root = osp.join(root, 'runs')
        os.makedirs(self.root, exist_ok=True)

    def path(self, key: str) -> str:
        return osp.join(self.root, key + '.json')

    def get(self, key: str) -> Optional[dict]:
        try:
            with open(self.path(key)) as f:
                return json.load(f)
        except (OSError, json.JSONDecodeError):
            return None

    def ok(self, key: str) -> bool:
        record = self.get(key)
        return record is not None and record.get('status') == 'ok'

    def put(self, record: dict) -> None:
        path = self.path(record['key'])
        with open(path + '.tmp', 'w') as f:
            json.dump(record, f, indent=1, sort_keys=True)
        os.replace(path + '.tmp', path)

    def records(self) -> List[dict]:
        out = []
        for path in sorted(glob.glob(osp.join(self.root, '*.json'))):
            try:
                with open(path) as f:
                    out.append(json.load(f))
            except (OSError, json.JSONDecodeError):
                continue  # a file cut off by a kill: rerun it
        return out
