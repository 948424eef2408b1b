"""Checks that keep a ticket from being half-loaded.

A SuperTickets training checkpoint holds the weights of a (shrunk) subnet
and keeps its pruning masks in ``meta``. A loader that knows nothing of the
hooks (``init_model`` with the training config, ``load_from`` without the
hooks, a ``Pretrained`` init) would put those weights into the supernet
with only size-mismatch warnings, or ignore the masks. Two checks stop it:

- the pruning hook marks the checkpoint's ``state_dict`` metadata (the
  per-module ``_metadata`` torch keeps beside the tensors) over every
  module that holds a masked weight; its own load removes the mark after
  reading the masks, so only a loader without the hooks meets it;
- the searchable modules refuse, before any tensor is copied, a state whose
  shapes differ from theirs or that carries the mark.

The error names the export route, whose folder loads anywhere.
"""
from collections import OrderedDict
from typing import Iterable, Optional, Tuple

import torch
import torch.nn as nn

__all__ = [
    'MASKED_STATE_KEY', 'EXPORT_ROUTE', 'TicketStateError',
    'mark_masked_state', 'unmark_masked_state', 'state_difference',
    'check_state_fits', 'ExactStateLoading'
]

MASKED_STATE_KEY = 'supertickets_masked_weights'
EXPORT_ROUTE = ('export the ticket first: python tools/export_ticket.py '
                'CONFIG CHECKPOINT --out DIR (or mim run mmsupertickets '
                'export_ticket ...), then load DIR/config.py with '
                'DIR/ticket.pth; or keep the SuperTickets hooks in the '
                'config, which rebuild the subnet and its masks')


class TicketStateError(ValueError):
    """A state_dict that would leave a searchable module half-loaded."""


def _ancestors(name: str) -> Iterable[str]:
    parts = name.split('.')[:-1]  # the module path of a parameter
    for i in range(len(parts) + 1):
        yield '.'.join(parts[:i])


def mark_masked_state(state_dict: dict, masked: Iterable[str]) -> None:
    """Mark every module above a masked weight in ``state_dict``'s metadata.

    Example:
        >>> import torch.nn as nn
        >>> sd = nn.Sequential(nn.Conv2d(1, 2, 1)).state_dict()
        >>> mark_masked_state(sd, ['0.weight'])
        >>> sd._metadata['0'][MASKED_STATE_KEY]
        1
    """
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is None:
        metadata = state_dict._metadata = OrderedDict()
    for name in masked:
        for prefix in _ancestors(name):
            entry = metadata.setdefault(prefix, {})
            entry[MASKED_STATE_KEY] = entry.get(MASKED_STATE_KEY, 0) + 1


def unmark_masked_state(state_dict: dict) -> None:
    """Remove the marks of :func:`mark_masked_state` (in place)."""
    for entry in (getattr(state_dict, '_metadata', None) or {}).values():
        if isinstance(entry, dict):
            entry.pop(MASKED_STATE_KEY, None)


def state_difference(own: dict, given: dict) -> Tuple[int, Optional[str]]:
    """How many tensors of ``given`` differ from ``own`` (missing,
    unexpected, other shape), and a description with the first examples.

    Returns:
        tuple: ``(0, None)`` when ``given`` fits ``own`` strictly.

    Example:
        >>> import torch
        >>> state_difference(  # doctest: +ELLIPSIS
        ...     {'w': torch.zeros(2)}, {'w': torch.zeros(3)})
        (1, '1 shape mismatches (e.g. w: (3,) in the checkpoint, ...)')
    """
    missing = [k for k in own if k not in given]
    unexpected = [k for k in given if k not in own]
    mismatched = [k for k in own if k in given and torch.is_tensor(given[k])
                  and given[k].shape != own[k].shape]
    parts = []
    if missing:
        parts.append(f'{len(missing)} model tensors missing from it (e.g. '
                     f'{missing[:3]})')
    if unexpected:
        parts.append(f'{len(unexpected)} tensors the model does not have '
                     f'(e.g. {unexpected[:3]})')
    if mismatched:
        k = mismatched[0]
        parts.append(f'{len(mismatched)} shape mismatches (e.g. {k}: '
                     f'{tuple(given[k].shape)} in the checkpoint, '
                     f'{tuple(own[k].shape)} in the model)')
    count = len(missing) + len(unexpected) + len(mismatched)
    return count, '; '.join(parts) or None


def check_state_fits(module: nn.Module, state_dict: dict, prefix: str,
                     local_metadata: dict) -> None:
    """Refuse a state that would load ``module`` only in part.

    A state with no key under ``prefix`` is left alone (nothing of it is
    loaded, as with a partial ``Pretrained`` init of another module).

    Raises:
        TicketStateError: the state carries pruning masks elsewhere, or its
            shapes differ from the module's (count and first mismatches).
    """
    name = f'{type(module).__name__} {prefix.rstrip(".") or "(root)"}'
    masked = local_metadata.get(MASKED_STATE_KEY)
    if masked:
        raise TicketStateError(
            f'{name}: this is a SuperTickets training checkpoint whose '
            f'{masked} pruning masks live in its supertickets state, '
            f'which this loader does not read; {EXPORT_ROUTE}')
    given = {k[len(prefix):]: v for k, v in state_dict.items()
             if k.startswith(prefix)}
    if not given:
        return
    count, difference = state_difference(module.state_dict(), given)
    if count:
        raise TicketStateError(
            f'{name}: the checkpoint does not fit this model ({count} '
            f'tensors differ: {difference}). A checkpoint of a searched '
            f'subnet or of another architecture? {EXPORT_ROUTE}')


class ExactStateLoading:
    """Mixin of modules holding searchable units: load exactly or refuse.

    Runs :func:`check_state_fits` before any of the module's tensors is
    copied (a parent's ``_load_from_state_dict`` runs before its
    children's, in torch's and in mmengine's loaders).

    Example:
        >>> class MyNeck(ExactStateLoading, BaseModule):  # doctest: +SKIP
        ...     ...
    """

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              *args, **kwargs):
        check_state_fits(self, state_dict, prefix, local_metadata)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      *args, **kwargs)
