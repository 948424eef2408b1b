"""Checkpoint reading and writing that stays safe and crash-proof.

torch >= 2.6 unpickles checkpoints with ``weights_only=True``: only tensors,
plain containers and explicitly allow-listed globals may appear. The runner
state that mmengine 0.10.7 puts into its checkpoints (the message hub's
``HistoryBuffer`` objects and numpy values) is not on torch's list, so
``resume=True`` fails out of the box. :func:`register_safe_globals` allows
exactly those types instead of turning ``weights_only`` off.

mmengine writes a checkpoint by opening the target path and writing into it,
so a crash during the write leaves a truncated file where the last good one
was. :func:`save_checkpoint_atomically` and the ``atomic_local`` file backend
(:class:`AtomicLocalBackend`) write to a temporary file beside the target and
rename it over the target only once it is complete.
"""
import logging
import os
import os.path as osp
import pickle
import re
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import HistoryBuffer, print_log
from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler
from numpy import dtype as np_dtype
from numpy import dtypes as np_dtypes
from numpy import ndarray as np_ndarray
from numpy._core.multiarray import _reconstruct as np_reconstruct
from numpy._core.multiarray import scalar as np_scalar

__all__ = [
    'register_safe_globals', 'load_checkpoint_file',
    'find_resumable_checkpoint',
    'save_checkpoint_atomically', 'AtomicLocalBackend', 'CheckpointLoadError',
    'CorruptCheckpointError', 'UnsafeCheckpointError'
]

# The attributes a checkpoint may look up with ``getattr``: the statistics
# methods mmengine's HistoryBuffer registers for itself, and the annealing
# function mmengine's OneCycle schedulers keep in their state.
_ALLOWED_ATTRIBUTES = {
    HistoryBuffer: ('min', 'max', 'current', 'mean'),
    OneCycleParamScheduler: ('_annealing_cos', '_annealing_linear'),
}


def _allowed_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` while unpickling a checkpoint.

    Pickle protocol 2 (the one ``torch.save`` uses) writes a method or a
    static method as ``getattr(cls, 'name')``. Allow-listing the real
    ``getattr`` would let a file reach any attribute of any allowed object
    (module globals included), so only the lookups in
    ``_ALLOWED_ATTRIBUTES`` are answered.
    """
    allowed = _ALLOWED_ATTRIBUTES.get(obj, ()) if isinstance(obj,
                                                             type) else ()
    if name in allowed:
        return getattr(obj, name)
    choices = '; '.join(f'{cls.__name__}.{{{",".join(names)}}}'
                        for cls, names in _ALLOWED_ATTRIBUTES.items())
    raise pickle.UnpicklingError(
        f'Unsupported global: refused getattr({obj!r}, {name!r}); only '
        f'{choices} are allowed')


# Everything a checkpoint written by mmengine 0.10.7 through the stock
# runner holds besides tensors and plain containers, found by saving real
# checkpoints and loading them with ``weights_only=True``.
_SAFE_GLOBALS = [
    # MessageHub.log_scalars values ('message_hub' key).
    HistoryBuffer,
    # OneCycleLR / OneCycleMomentum state ('param_schedulers' key) holds
    # the class's annealing function, reached through getattr.
    OneCycleParamScheduler,
    # The allowed attribute look-ups (see above).
    (_allowed_getattr, 'builtins.getattr'),
    # numpy arrays: a HistoryBuffer's value and count history; mmpose's
    # dataset_meta (sigmas, keypoint weights, colours) in 'meta'.
    np_reconstruct,
    np_ndarray,
    # numpy scalars in the message hub's runtime_info (e.g. 'eta').
    np_scalar,
    # dtypes are pickled as np.dtype('f8', ...) and then given their state,
    # which needs the concrete dtype class of each dtype that occurs:
    np_dtype,
    np_dtypes.Float64DType,  # history values, np.float64 scalars
    np_dtypes.Int64DType,  # history counts
    np_dtypes.Float32DType,  # mmpose sigmas and keypoint weights
    np_dtypes.UInt8DType,  # mmpose keypoint and skeleton colours
]


def register_safe_globals() -> None:
    """Allow-list the non-tensor types of mmengine checkpoints for loading.

    Calls :func:`torch.serialization.add_safe_globals` with the types listed
    in ``_SAFE_GLOBALS``. Idempotent; ``mmsupertickets`` calls it at import,
    so ``resume=True`` and ``load_from`` work with torch's default
    ``weights_only=True``.
    """
    torch.serialization.add_safe_globals(_SAFE_GLOBALS)


class CheckpointLoadError(RuntimeError):
    """A checkpoint file could not be loaded.

    Args:
        path (str): The checkpoint file.
        reason (str): What went wrong.
    """

    def __init__(self, path: str, reason: str):
        super().__init__(f'cannot load checkpoint {path!r}: {reason}')
        self.path = path


class CorruptCheckpointError(CheckpointLoadError):
    """The file is truncated or is not a torch zip/pickle file at all."""


class UnsafeCheckpointError(CheckpointLoadError):
    """The file pickles an object outside the ``weights_only`` allow-list.

    Attributes:
        refused (str): The global (``module.qualname``) or object that was
            refused.
    """

    def __init__(self, path: str, refused: str):
        super().__init__(
            path, f'it holds a pickled object that weights_only loading '
            f'refuses: {refused}. Load only files you trust; allow-list a '
            'type with torch.serialization.add_safe_globals if it is safe')
        self.refused = refused


# Messages of torch's weights_only unpickler that name refused content.
_REFUSAL_PATTERNS = (
    re.compile(r'GLOBAL (\S+) was not an allowed global'),
    re.compile(r'unsupported GLOBAL (\S+) whose module'),
    re.compile(r'refused (getattr\(.*?\))'),
    re.compile(r'reduce for unrecognized function (.+?)(?:$| which)', re.M),
    re.compile(r'allowlisted via `add_safe_globals`,? but got (.+)$', re.M),
)
_ZIP_MAGIC = b'PK\x03\x04'


def _refused_object(message: str) -> Optional[str]:
    for pattern in _REFUSAL_PATTERNS:
        match = pattern.search(message)
        if match:
            return match.group(1).strip()
    return None


def _zip_damage(path: str) -> Optional[str]:
    """What is damaged in the zip archive ``path``, or None if it is sound.

    torch's reader does not check the CRCs the archive carries; this does.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            member = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f'unreadable zip structure: {err}'
    return None if member is None else f'member {member!r} fails its CRC check'


def _short_reason(err: BaseException) -> str:
    """The line of ``err`` that says what failed, without torch's advice."""
    text = str(err)
    # torch wraps unpickler errors in a long explanation; keep the error.
    text = text.split('WeightsUnpickler error:', 1)[-1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f'{type(err).__name__}: {lines[0]}' if lines else type(
        err).__name__


def load_checkpoint_file(path: Union[str, Path],
                         map_location: Any = 'cpu') -> Any:
    """Load a local checkpoint with ``weights_only=True``.

    The types of mmengine checkpoints are allow-listed first
    (:func:`register_safe_globals`). The file is only read.

    Args:
        path (str | Path): The checkpoint file.
        map_location: Same as :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        The unpickled checkpoint (usually a dict).

    Raises:
        FileNotFoundError: ``path`` is not an existing file.
        CorruptCheckpointError: the file is truncated or not a torch
            zip/pickle file.
        UnsafeCheckpointError: the file pickles an object outside the
            allow-list; ``err.refused`` names it.
        CheckpointLoadError: any other load failure, naming the file.
    """
    path = os.fspath(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file {path!r} does not exist')
    if osp.getsize(path) == 0:
        raise CorruptCheckpointError(path, 'the file is empty')
    with open(path, 'rb') as f:
        is_zip = f.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC
    # A zip's directory is at its end: a truncated archive has none.
    if is_zip and not zipfile.is_zipfile(path):
        raise CorruptCheckpointError(
            path, 'the zip archive is truncated (no central directory)')
    register_safe_globals()
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _refused_object(str(err))
        if refused is not None:
            raise UnsafeCheckpointError(path, refused) from err
        raise CorruptCheckpointError(
            path, f'its pickle is corrupted ({_short_reason(err)})') from err
    except Exception as err:
        if not is_zip:
            # torch's pre-zip format is a bare pickle stream; a damaged
            # stream fails with whatever error the bad bytes trigger.
            raise CorruptCheckpointError(
                path, 'it is neither a torch zip archive nor a readable '
                f'legacy pickle ({_short_reason(err)})') from err
        damage = _zip_damage(path)
        if damage is not None:
            raise CorruptCheckpointError(
                path, f'the zip archive is corrupted ({damage}; '
                f'{_short_reason(err)})') from err
        raise CheckpointLoadError(path, _short_reason(err)) from err


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
    return _zip_damage(path)


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


def install_local_checkpoint_loader() -> None:
    """Make mmengine load local checkpoints through
    :func:`load_checkpoint_file`.

    ``load_from``, ``--resume`` and ``tools/test.py`` then load with
    ``weights_only=True`` and the allow-list, and a missing, corrupted or
    unsafe file gets an error naming it instead of torch's bare message.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=lambda filename, map_location=None:
        load_checkpoint_file(filename, map_location or 'cpu'), force=True)
