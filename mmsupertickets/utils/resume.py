"""Choosing the checkpoint that ``--resume`` continues from."""
import logging
import os
import os.path as osp
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from mmengine.logging import print_log

from .checkpoint_io import load_checkpoint_file, zip_damage

__all__ = ['find_resumable_checkpoint', 'NoResumableCheckpointError']

_CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')
# Top-level config lines that differ between the runs of one experiment
# (a resumed run sets load_from and resume; work_dir may be given anew).
_RUN_SPECIFIC_LINE = re.compile(r'^(?:load_from|resume|work_dir|launcher)\s*=')


class NoResumableCheckpointError(RuntimeError):
    """The work dir holds checkpoint files but none of them can be resumed.

    Args:
        work_dir (str): The run's work dir.
        rejected (list[tuple[str, str]]): Each file found and why it was
            rejected.
    """

    def __init__(self, work_dir: str, rejected: List[Tuple[str, str]]):
        found = '\n'.join(f'  {path}: {why}' for path, why in rejected)
        super().__init__(
            f'--resume: {work_dir} holds checkpoint files but none is '
            f'complete and readable, so there is nothing safe to resume '
            f'from:\n{found}\nNothing was changed. Resume from a file '
            'explicitly with --resume PATH, or move these files away to '
            'start from scratch.')
        self.work_dir = work_dir
        self.rejected = rejected


def _checkpoint_damage(path: str) -> Optional[str]:
    """Why ``path`` cannot be a complete checkpoint, or None if it can.

    Checks existence and the zip structure with its CRCs; the pickle itself
    is read by :func:`_read_meta`.
    """
    if not osp.isfile(path):
        return 'the file does not exist'
    if osp.getsize(path) == 0:
        return 'the file is empty'
    return zip_damage(path)


def _read_meta(path: str) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """``(meta, None)`` of a resumable checkpoint, else ``(None, reason)``.

    The file is unpickled with the project's ``weights_only`` loader; the
    step comes from ``meta['iter']`` / ``meta['epoch']``, which is what
    mmengine resumes from, never from the file name.
    """
    damage = _checkpoint_damage(path)
    if damage is not None:
        return None, damage
    try:
        checkpoint = load_checkpoint_file(path)
    except Exception as err:  # any unreadable file is just not a candidate
        return None, str(err)
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict) or not any(
            isinstance(meta.get(k), int) for k in ('iter', 'epoch')):
        return None, "it stores no step (no meta['iter'] / meta['epoch'])"
    # Keep only the small fields; the tensors are dropped right here.
    return {k: meta.get(k)
            for k in ('iter', 'epoch', 'experiment_name', 'cfg')}, None


def _step(meta: Dict[str, Any]) -> Tuple[int, int]:
    return (meta.get('iter') or 0, meta.get('epoch') or 0)


def _config_text(text: Optional[str]) -> Optional[str]:
    """A config's pretty text without the lines that differ between runs."""
    if not isinstance(text, str):
        return None
    return '\n'.join(line for line in text.splitlines()
                     if not _RUN_SPECIFIC_LINE.match(line)).strip()


def _current_config_text(cfg: Any) -> Optional[str]:
    if cfg is None:
        return None
    try:
        return _config_text(cfg.pretty_text)
    except Exception:  # yapf may fail on odd values: no preference then
        return None


def find_resumable_checkpoint(work_dir: Union[str, Path],
                              cfg: Any = None) -> Optional[str]:
    """The checkpoint in ``work_dir`` that ``--resume`` should continue from.

    mmengine resumes from the file named in ``<work_dir>/last_checkpoint``.
    After a crash that file may name a checkpoint that was truncated while
    being written or that was deleted (the checkpoint hook may remove the
    oldest file before it writes the next one), it may be empty, or it may
    lag: it is written only after the checkpoint itself. The work dir may
    also hold leftovers of an earlier run. The rules:

    1. Every ``iter_<n>.pth`` / ``epoch_<n>.pth`` and the recorded file are
       candidates. A candidate is *complete* when its zip CRCs pass and it
       unpickles with the project's ``weights_only`` loader; its step is
       the ``meta['iter']`` (then ``meta['epoch']``) stored inside it, never
       the number in its name.
    2. If the recorded file is complete, it is chosen, whatever other files
       hold. The one exception is a lagging ``last_checkpoint``: a complete
       file of a higher stored step saved by the same process as the
       recorded one (same ``meta['experiment_name']``) is newer output of
       this very run, and the newest such file is chosen.
    3. Otherwise (recorded file damaged, missing or not named) the complete
       file of the highest stored step is chosen. When ``cfg`` is given,
       files whose stored config (``meta['cfg']``, ignoring ``load_from``,
       ``resume``, ``work_dir`` and ``launcher``) equals ``cfg`` are
       preferred as this run's own; the others are taken only when no file
       matches (e.g. the config was edited before resuming).
    4. If checkpoint files exist but none is complete,
       :class:`NoResumableCheckpointError` lists each and why it was
       rejected: training is never silently restarted over damaged files.
       Without any checkpoint file, None is returned.

    Skipped files are named in warnings. Nothing is changed on disk.

    Args:
        work_dir (str | Path): The run's work dir.
        cfg (Config, optional): The config about to be run, to tell this
            run's checkpoints from other runs'. Defaults to None.

    Returns:
        str | None: The checkpoint path, or None when the work dir holds no
        checkpoint file at all.

    Raises:
        NoResumableCheckpointError: checkpoint files exist, none complete.
    """
    # Absolute paths: last_checkpoint holds one (the runner's work_dir).
    work_dir = osp.abspath(os.fspath(work_dir))
    paths = []
    if osp.isdir(work_dir):
        paths = sorted(
            osp.join(work_dir, name) for name in os.listdir(work_dir)
            if _CHECKPOINT_NAME.match(name))
    pointer = osp.join(work_dir, 'last_checkpoint')
    recorded, pointer_problem = None, None
    if osp.isfile(pointer):
        with open(pointer) as f:
            recorded = f.read().strip() or None
        if recorded is not None:
            recorded = osp.abspath(osp.expanduser(recorded))
        else:
            pointer_problem = 'the file is empty'
    if recorded is not None and recorded not in paths:
        paths.append(recorded)

    metas, rejected = {}, []
    for path in paths:
        meta, why = _read_meta(path)
        if meta is None:
            rejected.append((path, why))
            print_log(
                f'Skipping checkpoint {path} for resuming: {why}.',
                logger='current',
                level=logging.WARNING)
        else:
            metas[path] = meta
    if not metas:
        if rejected or pointer_problem:
            if pointer_problem:
                rejected.append((pointer, pointer_problem))
            raise NoResumableCheckpointError(work_dir, rejected)
        return None

    def newest(candidates):
        # Highest stored step; the name only breaks ties, for determinism.
        return max(candidates, key=lambda p: (_step(metas[p]), p))

    if recorded in metas:
        run = metas[recorded].get('experiment_name')
        later = [
            p for p in metas if p != recorded
            and metas[p].get('experiment_name') == run
            and _step(metas[p]) > _step(metas[recorded])
        ]
        if not later:
            print_log(
                f'Resuming from {recorded} (named in last_checkpoint, '
                f'step {_step(metas[recorded])[0]}).',
                logger='current')
            return recorded
        chosen = newest(later)
        print_log(
            f'Resuming from {chosen}: the same run saved it after '
            f'{recorded}, which last_checkpoint still names.',
            logger='current')
        return chosen

    candidates = list(metas)
    text = _current_config_text(cfg)
    if text is not None:
        own = [p for p in candidates
               if _config_text(metas[p].get('cfg')) == text]
        if own:
            candidates = own
    chosen = newest(candidates)
    why = (f'last_checkpoint names {recorded!r}, which is not complete'
           if recorded is not None else 'there is no usable last_checkpoint')
    print_log(
        f'Resuming from {chosen}: it is the complete checkpoint of the '
        f'highest stored step (iter {metas[chosen].get("iter")}, epoch '
        f'{metas[chosen].get("epoch")}); {why}.',
        logger='current')
    return chosen
