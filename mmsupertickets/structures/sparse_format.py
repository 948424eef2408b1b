"""The sparse storage form of a masked state_dict (``ticket_sparse.pth``)."""
import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import torch

from mmsupertickets.utils.atomic_write import save_checkpoint_atomically
from mmsupertickets.utils.checkpoint_io import load_checkpoint_file

__all__ = [
    'SPARSE_FORMAT', 'MAX_EXPANSION', 'SparseFormatError',
    'sparse_state_dict', 'check_sparse_state_dict', 'dense_state_dict',
    'save_sparse_state_dict', 'load_sparse_state_dict'
]

SPARSE_FORMAT = 'mmsupertickets.sparse_state_dict'


def sparse_state_dict(state: Dict[str, torch.Tensor],
                      masks: Dict[str, torch.Tensor]) -> dict:
    """Sparse storage form of a state_dict whose masked weights are zero.

    Every masked tensor is stored as its kept values and their flat int32
    indices; the other tensors stay dense.

    Args:
        state: The dense state_dict (masks baked in).
        masks: ``{weight name: bool keep-mask}``.

    Returns:
        dict: ``format``, ``version``, ``order`` (the key order),
        ``dense`` (tensors without a mask) and ``sparse``
        (``{name: {'shape', 'indices' (flat, int32), 'values'}}``); only
        tensors, strings, ints and lists, so ``torch.load`` reads it with
        ``weights_only=True``.

    Raises:
        KeyError: a mask names a tensor that ``state`` does not have.
        ValueError: a mask's shape differs from its tensor's, or a tensor
            is too large for int32 indices.

    Example:
        >>> state = {'w': torch.tensor([[0., 2.], [3., 0.]]),
        ...          'b': torch.ones(2)}
        >>> obj = sparse_state_dict(state, {'w': state['w'] != 0})
        >>> obj['sparse']['w']['indices'].tolist(), list(obj['dense'])
        ([1, 2], ['b'])
        >>> torch.equal(dense_state_dict(obj)['w'], state['w'])
        True
    """
    unknown = sorted(set(masks) - set(state))
    if unknown:
        raise KeyError(f'masks for tensors not in the state_dict: '
                       f'{unknown[:3]}')
    dense, sparse = OrderedDict(), OrderedDict()
    for name, tensor in state.items():
        mask = masks.get(name)
        if mask is None:
            dense[name] = tensor
            continue
        if mask.shape != tensor.shape:
            raise ValueError(f'mask of {name} has shape {tuple(mask.shape)} '
                             f'but the tensor has {tuple(tensor.shape)}')
        if tensor.numel() > torch.iinfo(torch.int32).max:
            raise ValueError(f'{name} has {tensor.numel()} elements, too '
                             'many for int32 indices')
        flat_idx = mask.flatten().nonzero().flatten()
        sparse[name] = dict(
            shape=list(tensor.shape),
            indices=flat_idx.to(torch.int32),
            values=tensor.flatten()[flat_idx].clone())
    return dict(format=SPARSE_FORMAT, version=1, order=list(state),
                dense=dense, sparse=sparse)


class SparseFormatError(ValueError):
    """A sparse state_dict that does not hold what its format says."""


# A dense tensor may be at most this many times the bytes the sparse form
# took: a ticket up to 99.9 % sparse (the paper's curves stop at 98 %)
# expands ~500x; a crafted shape that would allocate gigabytes from a
# small file does not pass.
MAX_EXPANSION = 1000

_INDEX_DTYPES = (torch.int32, torch.int64)


def _stored_bytes(obj: dict) -> int:
    tensors = list(obj['dense'].values()) + [
        t for e in obj['sparse'].values() if isinstance(e, dict)
        for t in (e.get('indices'), e.get('values')) if torch.is_tensor(t)]
    return sum(t.numel() * t.element_size() for t in tensors
               if torch.is_tensor(t))


def _check_entry(name: str, entry, fail, shapes) -> int:
    """Check one sparse tensor; return its dense size in elements."""
    if not isinstance(entry, dict) or not {'shape', 'indices', 'values'
                                           } <= set(entry):
        fail(name, "must be a dict with 'shape', 'indices' and 'values'")
    shape, indices, values = (entry['shape'], entry['indices'],
                              entry['values'])
    if not isinstance(shape, (list, tuple)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0
            for d in shape):
        fail(name, f'shape {shape!r} must be a list of non-negative ints')
    numel = math.prod(shape)
    if shapes is not None and tuple(shapes[name]) != tuple(shape):
        fail(name, f'shape {list(shape)} differs from the model\'s '
             f'{list(shapes[name])}')
    if not torch.is_tensor(indices) or indices.dtype not in _INDEX_DTYPES \
            or indices.dim() != 1:
        fail(name, 'indices must be a 1-D int32 or int64 tensor, got '
             + (f'{indices.dtype} of shape {tuple(indices.shape)}'
                if torch.is_tensor(indices) else type(indices).__name__))
    if not torch.is_tensor(values) or not values.is_floating_point() or \
            values.dim() != 1:
        fail(name, 'values must be a 1-D floating-point tensor, got '
             + (f'{values.dtype} of shape {tuple(values.shape)}'
                if torch.is_tensor(values) else type(values).__name__))
    if values.numel() != indices.numel():
        fail(name, f'{values.numel()} values for {indices.numel()} indices')
    if indices.numel():
        low, high = int(indices.min()), int(indices.max())
        if low < 0 or high >= numel:
            fail(name, f'index {low if low < 0 else high} is outside '
                 f'[0, {numel}) of shape {list(shape)}')
        if indices.numel() > 1 and not bool(
                (indices[1:] > indices[:-1]).all()):
            fail(name, 'indices must be strictly increasing (each position '
                 'once)')
    return numel * values.element_size()


def check_sparse_state_dict(obj, source: str = 'the sparse state_dict',
                            stored_bytes: Optional[int] = None,
                            shapes: Optional[Dict[str, Sequence[int]]] = None
                            ) -> None:
    """Check a :func:`sparse_state_dict` object fully before it is used.

    Args:
        obj: What was read.
        source (str): Where it was read (the file), for the message.
        stored_bytes (int, optional): Its size on disk; the dense tensors
            may take at most :data:`MAX_EXPANSION` times that. Defaults to
            the bytes of its own tensors.
        shapes (dict, optional): ``{name: shape}`` the tensors must have
            (e.g. the model's ``state_dict`` at the ticket's arch); every
            name must be present. Defaults to None (only the file's own
            consistency is checked).

    Raises:
        SparseFormatError: naming ``source`` and the tensor.
    """
    if not isinstance(obj, dict) or obj.get('format') != SPARSE_FORMAT:
        found = obj.get('format') if isinstance(obj, dict) else \
            type(obj).__name__
        raise SparseFormatError(f'{source}: not a sparse state_dict of '
                                f'format {SPARSE_FORMAT!r} (found {found!r})')
    if obj.get('version') != 1:
        raise SparseFormatError(
            f'{source}: sparse state_dict version {obj.get("version")!r} '
            'is not supported (only 1)')

    def fail(name, problem):
        raise SparseFormatError(f'{source}: tensor {name!r}: {problem}')

    order, dense, sparse = obj.get('order'), obj.get('dense'), obj.get(
        'sparse')
    if not isinstance(order, list) or not isinstance(
            dense, dict) or not isinstance(sparse, dict):
        raise SparseFormatError(f'{source}: order must be a list, dense and '
                                'sparse dicts')
    if len(set(order)) != len(order):
        dup = next(n for n in order if order.count(n) > 1)
        fail(dup, 'listed twice in order')
    for name in order:
        if name not in dense and name not in sparse:
            fail(name, 'in order but stored nowhere')
        if name in dense and name in sparse:
            fail(name, 'stored both dense and sparse')
        if name in dense and not torch.is_tensor(dense[name]):
            fail(name, f'a {type(dense[name]).__name__}, not a tensor')
    stray = [n for n in list(dense) + list(sparse) if n not in order]
    if stray:
        fail(stray[0], 'stored but not in order')
    if shapes is not None:
        missing = [n for n in shapes if n not in order]
        if missing:
            fail(missing[0], 'in the model but missing from the file')
        unknown = [n for n in order if n not in shapes]
        if unknown:
            fail(unknown[0], 'not a tensor of the model')
        for name, t in dense.items():
            if tuple(t.shape) != tuple(shapes[name]):
                fail(name, f'shape {list(t.shape)} differs from the '
                     f'model\'s {list(shapes[name])}')
    budget = MAX_EXPANSION * max(
        stored_bytes if stored_bytes is not None else _stored_bytes(obj), 1)
    total = 0
    for name, entry in sparse.items():
        total += _check_entry(name, entry, fail, shapes)
        if total > budget:
            fail(name, f'the dense tensors would take over {total:,} bytes, '
                 f'more than {MAX_EXPANSION}x the {budget // MAX_EXPANSION:,}'
                 ' bytes stored: refused')


def dense_state_dict(obj: dict, source: str = 'the sparse state_dict',
                     stored_bytes: Optional[int] = None,
                     shapes: Optional[Dict[str, Sequence[int]]] = None
                     ) -> 'OrderedDict[str, torch.Tensor]':
    """The dense state_dict of a :func:`sparse_state_dict` object.

    ``obj`` is checked fully first (:func:`check_sparse_state_dict`, with
    ``source``, ``stored_bytes`` and ``shapes``): a negative, repeated or
    out-of-range index, a float index or a shape that does not match its
    values is refused rather than wrapped, overwritten or truncated.

    Args:
        obj (dict): A sparse state_dict (format :data:`SPARSE_FORMAT`,
            version 1).

    Returns:
        OrderedDict: The tensors in their original order, zeros at the
        positions the masks dropped.

    Raises:
        SparseFormatError: ``obj`` is not of that format or version, or
            does not hold what it says.

    Example:
        >>> obj = sparse_state_dict({'w': torch.tensor([0., 5.])},
        ...                         {'w': torch.tensor([False, True])})
        >>> dense_state_dict(obj)['w'].tolist()
        [0.0, 5.0]
        >>> dense_state_dict({'w': torch.ones(1)})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mmsupertickets.structures.sparse_format.SparseFormatError: the ...
    """
    check_sparse_state_dict(obj, source, stored_bytes, shapes)
    out = OrderedDict()
    for name in obj['order']:
        if name in obj['dense']:
            out[name] = obj['dense'][name]
            continue
        entry = obj['sparse'][name]
        values = entry['values']
        flat = torch.zeros(math.prod(entry['shape']), dtype=values.dtype)
        flat[entry['indices'].long()] = values
        out[name] = flat.view(list(entry['shape']))
    return out


def save_sparse_state_dict(state: Dict[str, torch.Tensor],
                           masks: Dict[str, torch.Tensor],
                           path: Union[str, Path]) -> None:
    """Write the :func:`sparse_state_dict` of ``state`` to ``path``.

    The file is written atomically (a complete file or none at all).

    Args:
        state: The dense state_dict (masks baked in).
        masks: ``{weight name: bool keep-mask}``.
        path (str | Path): Target file, e.g. ``ticket/ticket_sparse.pth``.

    Example:
        >>> save_sparse_state_dict(  # doctest: +SKIP
        ...     model.state_dict(), masks.state_dict(),
        ...     'ticket/ticket_sparse.pth')
    """
    save_checkpoint_atomically(sparse_state_dict(state, masks),
                               os.fspath(path))


def load_sparse_state_dict(
        path: Union[str, Path],
        shapes: Optional[Dict[str, Sequence[int]]] = None
) -> 'OrderedDict[str, torch.Tensor]':
    """Read ``ticket_sparse.pth`` back into the dense state_dict.

    The result equals ``ticket.pth`` key by key (same order, same values,
    zeros at the pruned positions). The file is loaded with
    ``weights_only=True``.

    The content is checked fully before any tensor is built
    (:func:`check_sparse_state_dict`): the dense tensors may take at most
    :data:`MAX_EXPANSION` times the file's size.

    Args:
        path (str | Path): A file written by :func:`save_sparse_state_dict`
            (e.g. by ``export_ticket``).
        shapes (dict, optional): ``{name: shape}`` of the model the state
            is for, e.g. ``{k: v.shape for k, v in
            model.state_dict().items()}`` of the model built from the
            ticket's ``config.py``; every tensor must match. Defaults to
            None.

    Returns:
        OrderedDict: The dense state_dict.

    Example:
        >>> state = load_sparse_state_dict(
        ...     'ticket/ticket_sparse.pth')  # doctest: +SKIP
        >>> model.load_state_dict(state, strict=True)  # doctest: +SKIP
    """
    path = os.fspath(path)
    return dense_state_dict(load_checkpoint_file(path), f'file {path!r}',
                            stored_bytes=os.path.getsize(path),
                            shapes=shapes)
