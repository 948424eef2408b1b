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
from typing import Iterable

import torch.nn as nn

__all__ = [
    'MASKED_STATE_KEY', 'EXPORT_ROUTE', 'TicketStateError',
    'mark_masked_state', 'unmark_masked_state', 'check_state_fits',
    'ExactStateLoading'
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


def check_state_fits(module: nn.Module, state_dict: dict, prefix: str,
                     local_metadata: dict) -> None:
    """Refuse a state that would load ``module`` only in part.

    A state with no key under ``prefix`` is left alone (nothing of it is
    loaded, as with a partial ``Pretrained`` init of another module).

    Raises:
        TicketStateError: the state carries pruning masks elsewhere, or its
            shapes differ from the module's (count and first mismatches).
    """
    masked = local_metadata.get(MASKED_STATE_KEY)
    if masked:
        raise TicketStateError(
            f'{type(module).__name__} {prefix.rstrip(".") or "(root)"}: '
            f'this is a SuperTickets training checkpoint whose {masked} '
            'pruning masks live in meta.supertickets, which this loader '
            f'does not read; {EXPORT_ROUTE}')
    own = {prefix + k: v for k, v in module.state_dict().items()}
    given = [k for k in state_dict if k.startswith(prefix)]
    if not given:
        return
    problems = []
    for k in sorted(own):
        if k not in state_dict:
            problems.append(f'{k} missing')
        elif tuple(state_dict[k].shape) != tuple(own[k].shape):
            problems.append(f'{k}: {tuple(state_dict[k].shape)} in the '
                            f'checkpoint, {tuple(own[k].shape)} in the model')
    problems += [f'{k} not in the model' for k in sorted(given)
                 if k not in own]
    if problems:
        raise TicketStateError(
            f'{type(module).__name__} {prefix.rstrip(".") or "(root)"}: the '
            f'checkpoint does not fit this model ({len(problems)} tensors '
            f'differ, first: {"; ".join(problems[:3])}). A checkpoint of a '
            f'searched subnet or of another architecture? {EXPORT_ROUTE}')


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
