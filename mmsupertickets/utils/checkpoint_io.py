"""Loading checkpoint files safely, with errors that name the file.

:func:`load_checkpoint_file` unpickles only tensors and the allow-listed
types of mmengine checkpoints and tells a missing, truncated, corrupted or
unsafe file apart. :func:`safe_checkpoint_loading` makes mmengine's own
loading (``load_from``, ``resume``, ``Pretrained``) go through it for the
duration of a block: the project's tools and the SuperTickets hooks use it
for their runs; importing the package changes nothing.
"""
import hashlib
import os
import os.path as osp
import pickle
import re
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, Union
from urllib.parse import urlparse

import mmengine.runner.checkpoint as mm_checkpoint
import torch
from mmengine.dist import get_dist_info
from mmengine.runner.checkpoint import CheckpointLoader

from .safe_globals import weights_only_load

__all__ = [
    'load_checkpoint_file', 'safe_checkpoint_loading', 'zip_damage',
    'download_checkpoint', 'local_checkpoint_path',
    'CheckpointLoadError', 'CorruptCheckpointError', 'UnsafeCheckpointError'
]


class CheckpointLoadError(RuntimeError):
    """A checkpoint file could not be loaded.

    Args:
        path (str): The checkpoint file.
        reason (str): What went wrong.
    """

    def __init__(self, path: str, reason: str):
        super().__init__(f'cannot load checkpoint {path!r}: {reason}')
        self.path = path
        self.reason = reason


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


def zip_damage(path: str) -> Optional[str]:
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

    Tensors and the types of mmengine checkpoints
    (:data:`~mmsupertickets.utils.safe_globals.SAFE_GLOBALS`) are allowed,
    on every supported torch. The CRC of every member of a zip checkpoint
    is checked before anything is unpickled. The file is only read.

    Args:
        path (str | Path): The checkpoint file.
        map_location: Same as :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        The unpickled checkpoint (usually a dict).

    Raises:
        FileNotFoundError: ``path`` is not an existing file.
        CorruptCheckpointError: the file is truncated, fails a CRC check
            or is not a torch zip/pickle file.
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
    if is_zip:
        # torch's reader skips the CRCs the archive carries: a flipped byte
        # would load as a wrong weight. This reads the whole file once.
        damage = zip_damage(path)
        if damage is not None:
            raise CorruptCheckpointError(
                path, f'the zip archive is corrupted ({damage})')
    try:
        return weights_only_load(path, map_location=map_location)
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
        raise CheckpointLoadError(path, _short_reason(err)) from err


def load_from_local_safely(filename, map_location=None):
    return load_checkpoint_file(
        osp.expanduser(filename), map_location or 'cpu')


# torch.hub's convention: a file named ``<name>-<first hex digits of its
# sha256>.<ext>`` carries its own hash.
_HASH_IN_NAME = re.compile(r'-([0-9a-f]{8,64})\.[^.]+$')
# ``scheme://`` at the start of a path.
_SCHEME = re.compile(r'^[A-Za-z][\w+.-]*://')


def download_checkpoint(url: str, model_dir: Optional[str] = None,
                        progress: bool = False) -> str:
    """The local copy of the http(s) ``url``, downloaded if absent.

    The cache is keyed by the whole URL:
    ``<model_dir>/<sha256 of the URL, 16 hex digits>/<file name>``, so two
    URLs with the same file name never share a file. When the file name
    carries a hash (torch.hub's ``name-<sha256 prefix>.pth``), the download
    must match it. Rank 0 downloads first, the other ranks then find it.

    Args:
        url (str): An ``http://`` or ``https://`` URL.
        model_dir (str, optional): The cache. Defaults to torch's hub cache
            (``<torch.hub.get_dir()>/checkpoints``).
        progress (bool): Show a progress bar. Defaults to False.

    Returns:
        str: The cached file.

    Raises:
        CheckpointLoadError: the URL names no file, the download failed,
            or the file does not match the hash in its name.
    """
    name = osp.basename(urlparse(url).path)
    if not name:
        raise CheckpointLoadError(url, 'the URL names no file')
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    key = hashlib.sha256(url.encode('utf-8')).hexdigest()[:16]
    cached = osp.join(model_dir, key, name)
    match = _HASH_IN_NAME.search(name)
    rank, world_size = get_dist_info()
    for turn in range(2):
        if (rank == 0) == (turn == 0) and not osp.isfile(cached):
            os.makedirs(osp.dirname(cached), exist_ok=True)
            try:
                # Written to a temporary file, hash checked, then renamed.
                torch.hub.download_url_to_file(
                    url, cached, hash_prefix=match and match.group(1),
                    progress=progress)
            except RuntimeError as err:
                if 'invalid hash value' not in str(err):
                    raise
                raise CheckpointLoadError(
                    url, f'the download does not match the sha256 prefix '
                    f'{match.group(1)!r} its file name carries ({err}); '
                    'nothing was cached') from err
            except OSError as err:
                raise CheckpointLoadError(
                    url, f'the download failed: {err}') from err
        if world_size > 1 and turn == 0:
            torch.distributed.barrier()
    return cached


def load_from_http_safely(filename, map_location=None, model_dir=None,
                          progress=False):
    """Download ``filename`` with :func:`download_checkpoint` (cached by
    its whole URL), then load it with :func:`load_checkpoint_file`.

    mmengine's own http loader unpickles with ``weights_only=False``.
    """
    cached = download_checkpoint(filename, model_dir, progress)
    return load_checkpoint_file(cached, map_location or 'cpu')


def local_checkpoint_path(filename: str) -> str:
    """The local file a tool reads for ``filename``.

    An ``http(s)://`` URL is downloaded as ``load_from`` and
    ``tools/test.py`` download it (:func:`download_checkpoint`); a local
    path is returned as it is; other schemes (``pavi://``, ``s3://``,
    ``petrel://``, ...) are refused. Read the file with
    :func:`load_checkpoint_file`.

    Args:
        filename (str): A local path or an http(s) URL.

    Returns:
        str: A local path.

    Raises:
        CheckpointLoadError: another scheme, or the download failed.

    Example:
        >>> local_checkpoint_path('work_dirs/xxx/iter_8.pth')
        'work_dirs/xxx/iter_8.pth'
    """
    filename = os.fspath(filename)
    if filename.startswith(('http://', 'https://')):
        return download_checkpoint(filename)
    if _SCHEME.match(filename):
        raise CheckpointLoadError(
            filename, 'only local files and http(s):// URLs are read here '
            '(remote storage such as pavi://, s3:// or petrel:// is not); '
            'copy the file to a local path')
    return filename


def load_from_openmmlab_safely(filename, map_location=None):
    """``open-mmlab://NAME``: the URL or file mmengine maps NAME to,
    loaded safely."""
    name = filename.split('://', 1)[1]
    name = mm_checkpoint.get_deprecated_model_names().get(name, name)
    target = mm_checkpoint.get_external_models()[name]
    if target.startswith(('http://', 'https://')):
        return load_from_http_safely(target, map_location)
    return load_checkpoint_file(
        osp.join(mm_checkpoint._get_mmengine_home(), target),
        map_location or 'cpu')


def _refuse_remote_storage(filename, map_location=None, **kwargs):
    raise CheckpointLoadError(
        filename, 'remote storage (pavi://, s3://, petrel://) is not read '
        'by the SuperTickets safe loader; copy the file to a local path')


def load_from_torchvision_safely(filename, map_location=None):
    """``torchvision://NAME`` (or ``modelzoo://NAME``): torchvision's URL
    for NAME, loaded safely."""
    name = filename.split('://', 1)[1]
    url = mm_checkpoint.get_torchvision_models()[name]
    return load_from_http_safely(url, map_location)


def load_from_mmcls_safely(filename, map_location=None):
    """``mmcls://NAME``: the URL mmengine maps NAME to, loaded safely and
    renamed to the mmcls 1.x layout as mmengine does."""
    url = mm_checkpoint.get_mmcls_models()[filename.split('://', 1)[1]]
    return mm_checkpoint._process_mmcls_checkpoint(
        load_from_http_safely(url, map_location))


# Scheme -> loader within safe_checkpoint_loading(). Every scheme whose
# mmengine loader downloads has its own safe loader here, so mmengine's
# module-level functions are never replaced.
SAFE_SCHEMES = (
    ('', load_from_local_safely),
    (('http://', 'https://'), load_from_http_safely),
    (('modelzoo://', 'torchvision://'), load_from_torchvision_safely),
    (('open-mmlab://', 'openmmlab://'), load_from_openmmlab_safely),
    ('mmcls://', load_from_mmcls_safely),
    ('pavi://', _refuse_remote_storage),
    ((r'(\S+\:)?s3://', r'(\S+\:)?petrel://'), _refuse_remote_storage),
)
# The top-level config key that turns the safe loader off for a run.
CONFIG_KEY = 'safe_checkpoint_loading'
_SCOPE_LOCK = threading.Lock()
_scope_depth = 0
_originals = None


def _prefixes(entry) -> tuple:
    return (entry, ) if isinstance(entry, str) else tuple(entry)


@contextmanager
def safe_checkpoint_loading(enabled: bool = True) -> Iterator[None]:
    """Within the block, mmengine loads every checkpoint with
    :func:`load_checkpoint_file`.

    Local paths directly; ``http(s)://``, ``torchvision://``, ``mmcls://``
    and ``open-mmlab://`` after downloading into torch's hub cache;
    ``pavi://``, ``s3://`` and ``petrel://`` are refused (copy the file
    locally).

    ``load_from``, ``--resume`` and ``tools/test.py`` then work with torch's
    ``weights_only`` protection on torch >= 2.6 (mmengine 0.10.7 calls
    ``torch.load`` without the types its own checkpoints hold), and a bad
    file gets an error naming it. The loaders go in through mmengine's
    public ``CheckpointLoader.register_scheme(..., force=True)`` and
    mmengine's own ones are registered back when the outermost block ends;
    blocks may nest. ``enabled=False`` makes the block do nothing (a run's
    config says so with ``safe_checkpoint_loading = False``).

    Example:
        >>> with safe_checkpoint_loading():
        ...     runner.train()  # doctest: +SKIP
    """
    global _scope_depth, _originals
    if not enabled:
        yield
        return
    with _SCOPE_LOCK:
        if _scope_depth == 0:
            # Read-only look at the registered loaders, to put them back.
            current = CheckpointLoader._schemes
            _originals = {
                prefix: current[prefix]
                for entry, _ in SAFE_SCHEMES for prefix in _prefixes(entry)
                if prefix in current
            }
            for prefixes, loader in SAFE_SCHEMES:
                CheckpointLoader.register_scheme(
                    prefixes=prefixes, loader=loader, force=True)
        _scope_depth += 1
    try:
        yield
    finally:
        with _SCOPE_LOCK:
            _scope_depth -= 1
            if _scope_depth == 0:
                for prefix, loader in _originals.items():
                    CheckpointLoader.register_scheme(
                        prefixes=prefix, loader=loader, force=True)
                _originals = None
