"""Choosing the checkpoint that ``--resume`` continues from."""
import logging
import os
import os.path as osp
import re
from pathlib import Path
from typing import Optional, Union

from mmengine.logging import print_log

from .checkpoint_io import zip_damage

__all__ = ['find_resumable_checkpoint']

_CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


def _checkpoint_damage(path: str) -> Optional[str]:
    """Why ``path`` cannot be a complete checkpoint, or None if it can.

    Checks existence and the zip structure with its CRCs; the pickle itself
    is only read when the runner loads the file.
    """
    if not osp.isfile(path):
        return 'the file does not exist'
    if osp.getsize(path) == 0:
        return 'the file is empty'
    return zip_damage(path)


def find_resumable_checkpoint(work_dir: Union[str, Path]) -> Optional[str]:
    """The newest complete checkpoint in ``work_dir`` to resume from.

    mmengine resumes from the file named in ``<work_dir>/last_checkpoint``.
    After a crash that file may point at a checkpoint that was truncated
    while being written (the stock local backend writes in place), or that
    was deleted: the checkpoint hook removes the oldest file *before* it
    writes the next one. It may also be empty or lag behind the newest
    checkpoint. This looks at every ``iter_<n>.pth`` / ``epoch_<n>.pth`` in
    ``work_dir`` and at the recorded one, and returns the complete file of
    the highest step; damaged ones are skipped with a warning naming them.
    Nothing is changed on disk.

    Args:
        work_dir (str | Path): The run's work dir.

    Returns:
        str | None: The checkpoint path, or None when there is none.
    """
    work_dir = os.fspath(work_dir)
    candidates = {}
    if osp.isdir(work_dir):
        for name in os.listdir(work_dir):
            match = _CHECKPOINT_NAME.match(name)
            if match:
                candidates[osp.join(work_dir, name)] = int(match.group(1))
    recorded = None
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            recorded = f.read().strip() or None
    if recorded is not None and recorded not in candidates:
        match = _CHECKPOINT_NAME.match(osp.basename(recorded))
        candidates[recorded] = int(match.group(1)) if match else -1
    # Highest step first; the recorded file wins a tie.
    for path in sorted(candidates,
                       key=lambda p: (candidates[p], p == recorded),
                       reverse=True):
        damage = _checkpoint_damage(path)
        if damage is None:
            if path != recorded:
                print_log(
                    f'Resuming from {path}: it is the newest complete '
                    f'checkpoint (last_checkpoint names {recorded!r}).',
                    logger='current')
            return path
        print_log(
            f'Skipping checkpoint {path} for resuming: {damage}.',
            logger='current',
            level=logging.WARNING)
    return None
