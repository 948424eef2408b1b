"""Crash-proof writes: a file holds its old or its complete new content.

mmengine writes a checkpoint by opening the target path and writing into it,
so a crash during the write leaves a truncated file where the last good one
was. :func:`save_checkpoint_atomically` and the ``atomic_local`` file backend
(:class:`AtomicLocalBackend`) write to a temporary file beside the target and
rename it over the target only once it is complete.
"""
import os
import os.path as osp
import uuid
from pathlib import Path
from typing import Any, Callable, Union

import torch
from mmengine.fileio import LocalBackend, register_backend

__all__ = ['save_checkpoint_atomically', 'AtomicLocalBackend']

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
    tmp_path = osp.join(
        folder, f'.{osp.basename(path)}.{os.getpid()}.'
        f'{uuid.uuid4().hex[:8]}.tmp')
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
