"""Read what a demo run left in its work dir: checkpoint, ticket, logs."""
import glob
import json
import os.path as osp
from typing import Dict, List, Optional

from mmsupertickets.engine.ticket_meta import ticket_meta
from mmsupertickets.utils.checkpoint_io import load_checkpoint_file

from .tasks import REPO


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


def read_checkpoint(checkpoint: Optional[str]) -> dict:
    """The checkpoint (safe, weights-only load); ``{}`` without a file."""
    if not checkpoint or not osp.isfile(checkpoint):
        return {}
    return load_checkpoint_file(checkpoint)


def read_ticket_meta(checkpoint: Optional[str]) -> dict:
    """The ticket meta of a checkpoint file (``{}`` when it has none)."""
    return ticket_meta(read_checkpoint(checkpoint)) or {}


def read_test_metrics(test_dir: str) -> Dict[str, float]:
    """Metrics tools/test.py logged (``<timestamp>/<timestamp>.json``)."""
    found = sorted(glob.glob(osp.join(test_dir, '*', '*.json')),
                   key=osp.getmtime)
    if not found:
        return {}
    metrics = {}
    for line in read_jsonl(found[-1]):
        metrics.update({k: v for k, v in line.items()
                        if isinstance(v, (int, float))})
    return metrics


def read_jsonl(path: str) -> List[dict]:
    """The records of a JSON-lines file (none when it is missing)."""
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_scalars(train_dir: str) -> List[dict]:
    """The runner's ``vis_data/scalars.json`` of the latest run."""
    found = sorted(glob.glob(osp.join(train_dir, '*', 'vis_data',
                                      'scalars.json')))
    return read_jsonl(found[-1]) if found else []


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
