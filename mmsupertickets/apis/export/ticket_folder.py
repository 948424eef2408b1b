"""The ticket folder on disk: checks, temporary folder, swap-in, file sizes.

Every function here follows symbolic links in the output path
(:func:`resolve_out_dir`): a link to a folder, empty or holding an earlier
export, or a dangling link, gets the export written into its target and
still points at it afterwards.
"""
import os
import os.path as osp
import shutil
import tempfile
from typing import List, Optional, Sequence

__all__ = [
    'FILES', 'resolve_out_dir', 'check_out_dir', 'make_parents',
    'make_temp_folder', 'move_into_place', 'discard', 'file_sizes'
]

# Every file an export can write, in the order summary.json lists them.
FILES = ('arch.json', 'ticket.pth', 'ticket_sparse.pth', 'config.py',
         'ticket.onnx', 'summary.json')


def _inside(path: str, folder: str) -> bool:
    path, folder = osp.realpath(path), osp.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def resolve_out_dir(out_dir: str) -> str:
    """The real folder an export to ``out_dir`` writes.

    Symbolic links anywhere in the path are followed, dangling ones too (to
    the folder they name), so the export replaces the link's target, never
    the link itself.

    Args:
        out_dir (str): The requested output folder.

    Returns:
        str: An absolute path without symbolic links.

    Raises:
        ValueError: the path is a loop of symbolic links.

    Example:
        >>> resolve_out_dir('tickets/latest')  # doctest: +SKIP
        '/data/tickets/2024-05-01'
    """
    real = osp.realpath(osp.abspath(out_dir))
    if osp.islink(real):  # realpath stops inside a loop
        raise ValueError(f'--out {out_dir!r} is a loop of symbolic links')
    return real


def check_out_dir(out_dir: str, force: bool, keep: Sequence[str]) -> None:
    """Refuse an output folder the export must not replace.

    Args:
        out_dir (str): The folder to write.
        force (bool): Whether an earlier export in ``out_dir`` may be
            replaced; a folder holding any other file is never replaced.
        keep (Sequence[str]): Inputs (None entries are skipped) that must
            not lie inside ``out_dir``.

    Raises:
        FileExistsError: ``out_dir`` is a file, not empty without
            ``force``, or holds files other than :data:`FILES`.
        ValueError: ``out_dir`` contains one of ``keep`` or is a loop of
            symbolic links.

    Example:
        >>> check_out_dir('tickets/new', force=False,
        ...               keep=['work_dirs/xxx/iter_8.pth'])  # doctest: +SKIP
    """
    given, out_dir = out_dir, resolve_out_dir(out_dir)
    if given != out_dir:
        given = f'{given} (-> {out_dir})'
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise FileExistsError(f'--out {given!r} exists and is not a folder')
    for path in keep:
        if path and _inside(path, out_dir):
            raise ValueError(f'--out {given!r} contains {path!r}; the '
                             'export writes a fresh folder and must not '
                             'replace its own inputs')
    present = sorted(os.listdir(out_dir)) if osp.isdir(out_dir) else []
    if present and not force:
        raise FileExistsError(
            f'--out {given!r} exists and is not empty; pass --force to '
            'replace an earlier export there')
    # --force replaces an earlier export, never files the export did not
    # write (the whole folder is swapped for the new one).
    foreign = [name for name in present if name not in FILES]
    if foreign:
        raise FileExistsError(
            f'--out {given!r} holds files an export does not write '
            f'({", ".join(map(repr, foreign[:5]))}'
            f'{", ..." if len(foreign) > 5 else ""}); --force only replaces '
            'an earlier export: choose another --out or move them')


def make_parents(folder: str) -> List[str]:
    """Create missing ancestors of ``folder``; return those created.

    Args:
        folder (str): The folder whose parents must exist.

    Returns:
        list[str]: The created folders, innermost first.

    Example:
        >>> make_parents('tickets/a/b/ticket')  # doctest: +SKIP
        ['tickets/a/b', 'tickets/a', 'tickets']
    """
    created = []
    parent = osp.dirname(resolve_out_dir(folder))
    while parent and not osp.isdir(parent):
        created.append(parent)
        parent = osp.dirname(parent)
    for path in reversed(created):
        os.mkdir(path)
    return created


def make_temp_folder(out_dir: str) -> str:
    """A new empty folder beside ``out_dir`` to write the export into.

    Its permissions are those of a folder the user creates (not mkdtemp's
    private 0700), so that it can become ``out_dir`` as it is.

    Args:
        out_dir (str): The final folder (its parent must exist).

    Returns:
        str: The temporary folder's path.

    Example:
        >>> tmp_dir = make_temp_folder('tickets/ticket')  # doctest: +SKIP
    """
    out_dir = resolve_out_dir(out_dir)  # beside the target: one rename
    tmp_dir = tempfile.mkdtemp(prefix=f'.{osp.basename(out_dir)}.tmp-',
                               dir=osp.dirname(out_dir))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_dir, 0o777 & ~umask)
    except BaseException:
        os.rmdir(tmp_dir)
        raise
    return tmp_dir


def move_into_place(tmp_dir: str, out_dir: str) -> None:
    """Rename the finished temp folder to ``out_dir`` (replacing it).

    Args:
        tmp_dir (str): The complete folder from :func:`make_temp_folder`.
        out_dir (str): Its final path; an existing folder there is
            replaced, and restored if the rename fails; a link there
            keeps pointing at the new folder.

    Example:
        >>> move_into_place(tmp_dir, 'tickets/ticket')  # doctest: +SKIP
    """
    out_dir = resolve_out_dir(out_dir)
    if not osp.isdir(out_dir):
        os.rename(tmp_dir, out_dir)
        return
    if not os.listdir(out_dir):
        os.rmdir(out_dir)
        os.rename(tmp_dir, out_dir)
        return
    old = tempfile.mkdtemp(prefix=f'.{osp.basename(out_dir)}.old-',
                           dir=osp.dirname(out_dir))
    os.rmdir(old)
    os.rename(out_dir, old)
    try:
        os.rename(tmp_dir, out_dir)
    except BaseException:
        os.rename(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def discard(tmp_dir: Optional[str], created: Sequence[str]) -> None:
    """Remove a failed export: its temp folder and the parents it made.

    Args:
        tmp_dir (str, optional): The temporary folder, None when it was not
            made.
        created (Sequence[str]): From :func:`make_parents`, innermost
            first; removal stops at the first one that is not empty.

    Example:
        >>> discard(tmp_dir, make_parents(out_dir))  # doctest: +SKIP
    """
    if tmp_dir is not None:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    for path in created:  # innermost first
        try:
            os.rmdir(path)
        except OSError:
            break


def file_sizes(folder: str, ckpt_path: str) -> dict:
    """Sizes in bytes of the checkpoint and of the files in ``folder``.

    Args:
        folder (str): An export folder (``summary.json`` is left out).
        ckpt_path (str): The exported checkpoint.

    Returns:
        dict: ``{'checkpoint': bytes, file name: bytes, ...}`` in the order
        of :data:`FILES`, for the files present.

    Example:
        >>> file_sizes('tickets/ticket', 'iter_8.pth')  # doctest: +SKIP
        {'checkpoint': 812345, 'arch.json': 2345, 'ticket.pth': 301234, ...}
    """
    sizes = {'checkpoint': osp.getsize(ckpt_path)}
    for name in FILES:
        path = osp.join(folder, name)
        if osp.isfile(path) and name != 'summary.json':
            sizes[name] = osp.getsize(path)
    return sizes
