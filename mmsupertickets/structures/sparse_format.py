"""The sparse storage form of a masked state_dict (``ticket_sparse.pth``)."""
import os
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Union

import torch

from mmsupertickets.utils.atomic_write import save_checkpoint_atomically
from mmsupertickets.utils.checkpoint_io import load_checkpoint_file

__all__ = [
    'SPARSE_FORMAT', 'sparse_state_dict', 'dense_state_dict',
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


def dense_state_dict(obj: dict) -> 'OrderedDict[str, torch.Tensor]':
    """The dense state_dict of a :func:`sparse_state_dict` object.

    Args:
        obj (dict): A sparse state_dict (format :data:`SPARSE_FORMAT`,
            version 1).

    Returns:
        OrderedDict: The tensors in their original order, zeros at the
        positions the masks dropped.

    Raises:
        ValueError: ``obj`` is not of that format or version.

    Example:
        >>> obj = sparse_state_dict({'w': torch.tensor([0., 5.])},
        ...                         {'w': torch.tensor([False, True])})
        >>> dense_state_dict(obj)['w'].tolist()
        [0.0, 5.0]
        >>> dense_state_dict({'w': torch.ones(1)})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: not a sparse state_dict of format ... (found None)
    """
    if not isinstance(obj, dict) or obj.get('format') != SPARSE_FORMAT:
        found = obj.get('format') if isinstance(obj, dict) else \
            type(obj).__name__
        raise ValueError(f'not a sparse state_dict of format '
                         f'{SPARSE_FORMAT!r} (found {found!r})')
    if obj.get('version') != 1:
        raise ValueError(f'sparse state_dict version {obj.get("version")!r} '
                         'is not supported (only 1)')
    out = OrderedDict()
    for name in obj['order']:
        if name in obj['dense']:
            out[name] = obj['dense'][name]
            continue
        entry = obj['sparse'][name]
        values = entry['values']
        flat = torch.zeros(int(torch.Size(entry['shape']).numel()),
                           dtype=values.dtype)
        flat[entry['indices'].long()] = values
        out[name] = flat.view(entry['shape'])
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
        path: Union[str, Path]) -> 'OrderedDict[str, torch.Tensor]':
    """Read ``ticket_sparse.pth`` back into the dense state_dict.

    The result equals ``ticket.pth`` key by key (same order, same values,
    zeros at the pruned positions). The file is loaded with
    ``weights_only=True``.

    Args:
        path (str | Path): A file written by :func:`save_sparse_state_dict`
            (e.g. by ``export_ticket``).

    Returns:
        OrderedDict: The dense state_dict.

    Example:
        >>> state = load_sparse_state_dict(
        ...     'ticket/ticket_sparse.pth')  # doctest: +SKIP
        >>> model.load_state_dict(state, strict=True)  # doctest: +SKIP
    """
    return dense_state_dict(load_checkpoint_file(path))
