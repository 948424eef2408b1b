"""Crash-proof writes: a file holds its old or its complete new content.

mmengine writes a checkpoint by opening the target path and writing into it,
so a crash during the write leaves a truncated file where the last good one
was. :func:`save_checkpoint_atomically` and the ``atomic_local`` file backend
(:class:`AtomicLocalBackend`) write to a temporary file beside the target and
rename it over the target only once it is complete.
"""
import os
import os.path as osp
import re
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, List, Optional, Union

import torch
from mmengine.fileio import LocalBackend, register_backend

__all__ = [
    'save_checkpoint_atomically', 'AtomicLocalBackend',
    'remove_stale_temp_files'
]

# ``.<target name>.<pid>.<8 hex digits>.tmp``, as _write_atomically names
# its temporary files.
_TEMP_NAME = re.compile(r'^\.(?P<target>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$')
# Temporary files this process is writing right now.
_IN_FLIGHT = set()
_IN_FLIGHT_LOCK = threading.Lock()


def _temp_name(path: str) -> str:
    return (f'.{osp.basename(path)}.{os.getpid()}.'
            f'{uuid.uuid4().hex[:8]}.tmp')


def _writer_alive(pid: int, tmp_path: str) -> bool:
    """Whether the write that owns ``tmp_path`` may still be going on."""
    if pid == os.getpid():
        # Our own pid: a killed run's container may have had the same one.
        with _IN_FLIGHT_LOCK:
            return tmp_path in _IN_FLIGHT
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: the process exists
        return True
    return True


def remove_stale_temp_files(folder: Union[str, Path],
                            target: Optional[str] = None) -> List[str]:
    """Remove temporary files that killed atomic writes left in ``folder``.

    A write killed before its rename leaves ``.<name>.<pid>.<hex>.tmp``
    beside its target; nothing else would ever remove it. Only files of
    exactly that pattern are removed, and only when the process that wrote
    them is gone; any other file stays.

    Args:
        folder (str | Path): Where to look (not recursively).
        target (str, optional): Only the temporary files of this target
            name (a base name such as ``'iter_12.pth'``). Defaults to None,
            any target.

    Returns:
        list[str]: The removed files.
    """
    folder = os.fspath(folder)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    removed = []
    for name in names:
        match = _TEMP_NAME.match(name)
        if match is None or (target is not None
                             and match.group('target') != target):
            continue
        tmp_path = osp.join(folder, name)
        if _writer_alive(int(match.group('pid')), tmp_path):
            continue
        try:
            os.remove(tmp_path)
        except OSError:  # already gone, or not ours to remove
            continue
        removed.append(tmp_path)
    return removed


def _write_atomically(path: Union[str, Path],
                      write: Callable[[Any], None]) -> None:
    """Write a file through ``write(file)`` so that ``path`` only ever holds
    either its old content or the complete new one.

    The data goes to a temporary file in the target's folder (so that the
    final rename stays on one file system), is flushed to disk, then
    ``os.replace`` swaps it in. On any failure the temporary file is removed
    and ``path`` is untouched.
    """
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # Earlier writes of this target that were killed left these behind.
    remove_stale_temp_files(folder, osp.basename(path))
    tmp_path = osp.join(folder, _temp_name(path))
    with _IN_FLIGHT_LOCK:
        _IN_FLIGHT.add(tmp_path)
    try:
        # 'x' creates with the usual umask permissions (unlike mkstemp's
        # 0600), so the final file looks like any other written file.
        with open(tmp_path, 'xb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if osp.lexists(tmp_path):
            os.remove(tmp_path)
        raise
    finally:
        with _IN_FLIGHT_LOCK:
            _IN_FLIGHT.discard(tmp_path)
    # Persist the rename itself; not every platform can open a folder.
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def save_checkpoint_atomically(obj: Any, path: Union[str, Path]) -> None:
    """``torch.save`` ``obj`` to ``path`` without ever leaving a partial file.

    Args:
        obj: What to save (usually a checkpoint dict).
        path (str | Path): Target file; its folder is created if needed. An
            existing file is replaced only once the new one is complete.
    """
    _write_atomically(path, lambda f: torch.save(obj, f))


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """Local file backend whose writes replace the target atomically.

    mmengine's ``LocalBackend.put`` opens the target and writes into it, so
    a crash while the runner saves a checkpoint truncates the file. This
    backend writes to a temporary file beside the target and renames it
    into place, so a reader sees either the old or the complete new file.
    Reading, listing and removing behave as in ``LocalBackend``.

    Select it through the checkpoint hook's ``backend_args``; the runner
    passes them on to every checkpoint it writes:

    .. code-block:: python

        custom_imports = dict(
            imports=['mmsupertickets'], allow_failed_imports=False)
        default_hooks = dict(
            checkpoint=dict(
                type='CheckpointHook', interval=1000, max_keep_ckpts=2,
                backend_args=dict(backend='atomic_local')))
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write bytes to ``filepath`` atomically (creating its folder)."""
        _write_atomically(filepath, lambda f: f.write(obj))

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically (creating its folder)."""
        self.put(obj.encode(encoding), filepath)
