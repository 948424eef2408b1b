"""Choosing the checkpoint that ``--resume`` continues from."""
import logging
import os
import os.path as osp
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from mmengine.logging import print_log

from .checkpoint_io import CheckpointLoadError, load_checkpoint_file

__all__ = [
    'find_resumable_checkpoint', 'ResumeRefusedError',
    'NoResumableCheckpointError', 'OutsideWorkDirError'
]

_CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')
# Top-level config lines that differ between the runs of one experiment
# (a resumed run sets load_from and resume; work_dir may be given anew).
_RUN_SPECIFIC_LINE = re.compile(r'^(?:load_from|resume|work_dir|launcher)\s*=')


class ResumeRefusedError(RuntimeError):
    """``--resume`` without a path found no checkpoint it may safely pick."""


class NoResumableCheckpointError(ResumeRefusedError):
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


class OutsideWorkDirError(ResumeRefusedError):
    """``last_checkpoint`` names a file outside the work dir.

    Args:
        work_dir (str): The run's work dir.
        recorded (str): The file ``last_checkpoint`` names.
        own (str, optional): The checkpoint the work dir's own files would
            resume from, None when it holds none.
    """

    def __init__(self, work_dir: str, recorded: str, own: Optional[str]):
        mine = (f'the newest complete checkpoint in the work dir is {own}'
                if own else 'the work dir holds no complete checkpoint')
        super().__init__(
            f'--resume: {osp.join(work_dir, "last_checkpoint")} names '
            f'{recorded}, which is outside the work dir {work_dir} (another '
            f'run\'s file?); {mine}. Nothing was changed. Bare --resume '
            'continues only from files inside the work dir: pass the one '
            'you mean explicitly with --resume PATH.')
        self.work_dir = work_dir
        self.recorded = recorded
        self.own = own


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` lies directly in ``folder`` (links resolved)."""
    return osp.dirname(osp.realpath(path)) == osp.realpath(folder)


def _checkpoint_folders(work_dir: str, cfg: Any) -> List[str]:
    """Where the run writes its checkpoints: the work dir, and
    ``<out_dir>/<work dir name>`` with ``CheckpointHook(out_dir=...)``."""
    folders = [work_dir]
    try:
        out_dir = cfg.default_hooks.checkpoint.get('out_dir')
    except (AttributeError, KeyError, TypeError):
        out_dir = None
    if isinstance(out_dir, str) and '://' not in out_dir:
        folders.append(osp.join(
            osp.abspath(out_dir), osp.basename(work_dir.rstrip(os.sep))))
    return folders


def _read_meta(path: str) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """``(meta, None)`` of a resumable checkpoint, else ``(None, reason)``.

    The file is read with the project's loader (zip CRCs, then
    ``weights_only`` unpickling); the step comes from ``meta['iter']`` /
    ``meta['epoch']``, which is what mmengine resumes from, never from the
    file name.
    """
    # Any unreadable file is just not a candidate.
    try:
        checkpoint = load_checkpoint_file(path)
    except FileNotFoundError:
        return None, 'the file does not exist'
    except CheckpointLoadError as err:
        return None, err.reason
    except Exception as err:
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


def _newest(metas: Dict[str, Dict[str, Any]], candidates) -> str:
    # Highest stored step; the name only breaks ties, for determinism.
    return max(candidates, key=lambda p: (_step(metas[p]), p))


def _newest_own(metas: Dict[str, Dict[str, Any]], cfg: Any) -> str:
    """The newest of ``metas``, preferring files saved with ``cfg``."""
    candidates = list(metas)
    text = _current_config_text(cfg)
    if text is not None:
        own = [p for p in candidates
               if _config_text(metas[p].get('cfg')) == text]
        if own:
            candidates = own
    return _newest(metas, candidates)


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
    5. Only files inside the work dir (or the checkpoint hook's
       ``out_dir`` of ``cfg``) are resumed. A recorded file outside it is
       taken as the file of the same name inside (the work dir was moved or
       copied); without such a file,
       :class:`OutsideWorkDirError` names the recorded file and the one the
       work dir's own files would give: resuming another run's checkpoint
       needs ``--resume PATH``.

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
        OutsideWorkDirError: ``last_checkpoint`` names a file outside the
            work dir.

    Example:
        >>> find_resumable_checkpoint('work_dirs/run', cfg)  # doctest: +SKIP
        '/home/me/work_dirs/run/iter_8000.pth'
    """
    # Absolute paths: last_checkpoint holds one (the runner's work_dir).
    work_dir = osp.abspath(os.fspath(work_dir))
    paths = _checkpoint_files(work_dir)
    pointer = osp.join(work_dir, 'last_checkpoint')
    recorded, pointer_problem = _read_pointer(pointer)
    recorded, foreign = _resolve_recorded(work_dir, cfg, recorded)
    if recorded is not None and recorded not in paths:
        paths.append(recorded)

    metas, rejected = _read_candidates(paths)
    if foreign is not None:
        own = _newest_own(metas, cfg) if metas else None
        raise OutsideWorkDirError(work_dir, foreign, own)
    if not metas:
        if rejected or pointer_problem:
            if pointer_problem:
                rejected.append((pointer, pointer_problem))
            raise NoResumableCheckpointError(work_dir, rejected)
        return None
    if recorded in metas:
        return _recorded_or_later(metas, recorded)
    return _newest_complete(metas, cfg, recorded)


def _checkpoint_files(work_dir: str) -> List[str]:
    """The ``iter_<n>.pth`` / ``epoch_<n>.pth`` files in ``work_dir``."""
    if not osp.isdir(work_dir):
        return []
    return sorted(
        osp.join(work_dir, name) for name in os.listdir(work_dir)
        if _CHECKPOINT_NAME.match(name))


def _read_pointer(pointer: str) -> Tuple[Optional[str], Optional[str]]:
    """``(recorded path, None)`` from ``last_checkpoint``, ``(None,
    problem)`` when it is empty, ``(None, None)`` without the file."""
    if not osp.isfile(pointer):
        return None, None
    with open(pointer) as f:
        recorded = f.read().strip() or None
    if recorded is None:
        return None, 'the file is empty'
    return osp.abspath(osp.expanduser(recorded)), None


def _resolve_recorded(work_dir: str, cfg: Any, recorded: Optional[str]
                      ) -> Tuple[Optional[str], Optional[str]]:
    """``(file to resume, foreign file)`` for the recorded file: itself
    when it is inside the work dir, else the file of its name inside, else
    ``(None, recorded)``."""
    if recorded is None or any(
            _inside(recorded, folder)
            for folder in _checkpoint_folders(work_dir, cfg)):
        return recorded, None
    here = osp.join(work_dir, osp.basename(recorded))
    if not osp.isfile(here):
        return None, recorded
    # A moved or copied work dir still names its old place.
    print_log(
        f'last_checkpoint names {recorded}, outside the work dir; '
        f'taking {here}, the file of that name inside it.',
        logger='current',
        level=logging.WARNING)
    return here, None


def _read_candidates(
        paths: List[str]
) -> Tuple[Dict[str, Dict[str, Any]], List[Tuple[str, str]]]:
    """The meta of each resumable file, and each other file with why."""
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
    return metas, rejected


def _recorded_or_later(metas: Dict[str, Dict[str, Any]],
                       recorded: str) -> str:
    """The complete recorded file, or the newest file the same run saved
    after it (``last_checkpoint`` lags)."""
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
    chosen = _newest(metas, later)
    print_log(
        f'Resuming from {chosen}: the same run saved it after '
        f'{recorded}, which last_checkpoint still names.',
        logger='current')
    return chosen


def _newest_complete(metas: Dict[str, Dict[str, Any]], cfg: Any,
                     recorded: Optional[str]) -> str:
    """The complete file of the highest step, this run's own first, when
    the recorded file is not complete."""
    chosen = _newest_own(metas, cfg)
    why = (f'last_checkpoint names {recorded!r}, which is not complete'
           if recorded is not None else 'there is no usable last_checkpoint')
    print_log(
        f'Resuming from {chosen}: it is the complete checkpoint of the '
        f'highest stored step (iter {metas[chosen].get("iter")}, epoch '
        f'{metas[chosen].get("epoch")}); {why}.',
        logger='current')
    return chosen
