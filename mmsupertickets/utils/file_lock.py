"""One writer per folder: an exclusive lock file that names its holder.

Two training runs on one work dir interleave their events and replace each
other's checkpoints; two exports to one ``--out`` silently replace each
other. :class:`FolderLock` lets the first writer in and refuses the second
with an error naming the first (pid, host, command, since when).

The lock file sits *beside* the folder (``<parent>/.<name>.lock``), not in
it: an export swaps its whole folder in by a rename, and a folder that does
not exist yet can be locked too. The kernel holds the lock
(``fcntl.flock``), so it ends with its process however that ends; a file
left by a killed process is taken over. Where ``flock`` is not supported,
the pid written in the file decides whether its holder is still alive.
"""
import datetime
import errno
import fcntl
import json
import os
import os.path as osp
import socket
import sys
import threading
from pathlib import Path
from typing import Dict, List, Union

from mmengine.logging import print_log

__all__ = ['FolderLock', 'FolderLockedError', 'lock_file_of']

# Locks this process holds: lock file -> [fd, depth, parents created]. A
# process may enter the lock of one folder several times (e.g.
# tools/train.py, then each SuperTickets hook of the run).
_HELD: Dict[str, list] = {}
_HELD_LOCK = threading.Lock()


class FolderLockedError(RuntimeError):
    """Another process is writing the folder.

    Args:
        what (str): What the folder is to the user (``'work dir'``,
            ``'--out'``).
        folder (str): The folder.
        lock_path (str): Its lock file.
        holder (dict): What the holder wrote into the lock file (``pid``,
            ``host``, ``command``, ``since``); may be empty.
    """

    def __init__(self, what: str, folder: str, lock_path: str,
                 holder: dict):
        pid = holder.get('pid', '?')
        gone = (' (no longer running: a process it started may still hold '
                'the lock)' if _dead(holder) else '')
        super().__init__(
            f'{what} {folder} is being written by another process: pid '
            f'{pid}{gone} on {holder.get("host", "?")}, running '
            f'{holder.get("command", "?")!r} since '
            f'{holder.get("since", "?")} (lock file {lock_path}). Wait for '
            f'it to finish or choose another {what}; nothing was written.')
        self.folder = folder
        self.lock_path = lock_path
        self.holder = holder


def lock_file_of(folder: Union[str, Path]) -> str:
    """The lock file of ``folder``: ``<parent>/.<name>.lock``.

    Example:
        >>> lock_file_of('/data/work_dirs/run1')
        '/data/work_dirs/.run1.lock'
    """
    folder = osp.abspath(os.fspath(folder))
    name = osp.basename(folder.rstrip(os.sep))
    if not name:
        raise ValueError(f'cannot lock the folder {folder!r}: it has no '
                         'parent to hold the lock file')
    return osp.join(osp.dirname(folder.rstrip(os.sep)), f'.{name}.lock')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists
        return True
    return True


def _dead(holder: dict) -> bool:
    """Whether the holder is known to be gone (same host, no such pid)."""
    pid = holder.get('pid')
    return (isinstance(pid, int) and holder.get('host') == socket.gethostname()
            and pid != os.getpid() and not _alive(pid))


def _read_holder(fd: int) -> dict:
    try:
        text = os.pread(fd, 4096, 0).decode('utf-8', 'replace')
        holder = json.loads(text)
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


class FolderLock:
    """An exclusive, inter-process lock on writing ``folder``.

    Use it as a context manager around everything that writes the folder.
    Entering refuses at once (no waiting) with :class:`FolderLockedError`
    while another process holds it; the same process may enter it again
    (nested). Missing parents of the lock file are created, and removed
    again on exit when still empty. On exit the lock file is removed.

    Args:
        folder (str | Path): The folder to write (need not exist).
        what (str): How errors call it. Defaults to ``'folder'``.

    Example:
        >>> with FolderLock('tickets/cityscapes', '--out'):  # doctest: +SKIP
        ...     export_ticket(cfg, ckpt, 'tickets/cityscapes')
    """

    def __init__(self, folder: Union[str, Path], what: str = 'folder'):
        self.folder = osp.realpath(osp.abspath(os.fspath(folder)))
        self.what = what
        self.lock_path = lock_file_of(self.folder)

    def __enter__(self) -> 'FolderLock':
        with _HELD_LOCK:
            held = _HELD.get(self.lock_path)
            if held is not None:
                held[1] += 1
                return self
            created = _make_parents(osp.dirname(self.lock_path))
            try:
                fd = self._acquire()
            except BaseException:
                _remove_empty(created)
                raise
            _HELD[self.lock_path] = [fd, 1, created]
        return self

    def __exit__(self, *exc_info) -> None:
        with _HELD_LOCK:
            held = _HELD.get(self.lock_path)
            if held is None:
                return
            held[1] -= 1
            if held[1] > 0:
                return
            del _HELD[self.lock_path]
            # Unlinked while still locked: a process that opened this file
            # meanwhile sees it gone after its flock and opens a new one.
            try:
                os.unlink(self.lock_path)
            except OSError:
                pass
            os.close(held[0])
            _remove_empty(held[2])

    def _acquire(self) -> int:
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                locked = self._lock(fd)
                if not locked:
                    raise FolderLockedError(self.what, self.folder,
                                            self.lock_path, _read_holder(fd))
                # The holder may have removed the file between our open and
                # our flock: then this lock is on a file nobody else sees.
                if os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino:
                    break
            except FileNotFoundError:
                pass
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        before = _read_holder(fd)
        if before.get('pid') is not None:
            print_log(
                f'{self.what} {self.folder}: taking over the lock file of '
                f'pid {before.get("pid")} (gone, its lock released).',
                logger='current')
        holder = dict(
            pid=os.getpid(),
            host=socket.gethostname(),
            command=' '.join([osp.basename(sys.executable)] + sys.argv)[:300],
            since=datetime.datetime.now().isoformat(timespec='seconds'),
            folder=self.folder)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode('utf-8'), 0)
        return fd

    def _lock(self, fd: int) -> bool:
        """Take the kernel lock of ``fd``; False if another process has it.

        Without ``flock`` support (some network file systems), the pid
        written in the file decides: its holder is alive or not.
        """
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP,
                                 errno.ENOSYS, errno.EINVAL):
                raise
        holder = _read_holder(fd)
        return not holder or holder.get('pid') == os.getpid() or _dead(holder)


def _make_parents(folder: str) -> List[str]:
    """Create ``folder`` and its missing parents; return those created,
    innermost first."""
    missing = []
    path = folder
    while path and not osp.isdir(path):
        missing.append(path)
        path = osp.dirname(path)
    created = []
    for path in reversed(missing):
        try:
            os.mkdir(path)
        except FileExistsError:  # another process made it meanwhile
            continue
        created.insert(0, path)
    return created


def _remove_empty(created: List[str]) -> None:
    for path in created:  # innermost first
        try:
            os.rmdir(path)
        except OSError:
            break
