"""The ticket contract: what a SuperTickets run writes and how it is read.

One place owns every name that the hooks, export, the S+P driver, transfer
and the tools agree on:

- a checkpoint carries the ticket in ``checkpoint['meta'][META_KEY]``:
  ``arch`` (``{unit name: channels}`` over every unit of the supernet, 0
  for a removed one), ``search`` (the search hook's state), ``pruning``
  (``masks``: ``{weight name: bool keep-mask}``, and the schedule state),
  ``transferred_from`` (the source ticket of a transfer run) and
  ``grafted_from`` (``{module: ticket}`` of the modules it grafted);
- the run's events go to ``<work_dir>/EVENTS_FILE``, one JSON line each;
- :func:`is_ticket_hook` says whether a ``custom_hooks`` entry searches,
  prunes or reactivates: those leave a config that only uses a ticket.
"""
import copy
from typing import Dict, Optional

import torch

from mmsupertickets.structures.arch import validate_arch
from mmsupertickets.structures.value_checks import check_ticket_section

__all__ = [
    'META_KEY', 'EVENTS_FILE', 'TICKET_HOOK_TYPES', 'is_ticket_hook',
    'ticket_meta', 'writable_ticket_meta', 'read_arch', 'read_masks',
    'read_section', 'write_section'
]

META_KEY = 'supertickets'
EVENTS_FILE = 'supertickets_events.jsonl'
# The hooks that search, prune and reactivate (subclasses count too).
TICKET_HOOK_TYPES = ('SuperNetSearchHook', 'ProgressivePruningHook',
                     'IterativeReactivationHook')


def is_ticket_hook(hook_cfg) -> bool:
    """Whether a ``custom_hooks`` entry is one of :data:`TICKET_HOOK_TYPES`
    or a subclass of one (by class, by plain or scoped registry name).

    Example:
        >>> is_ticket_hook(dict(type='ProgressivePruningHook'))
        True
        >>> is_ticket_hook(dict(type='EMAHook'))
        False
    """
    from mmengine.registry import HOOKS
    hook_type = hook_cfg.get('type') if isinstance(hook_cfg, dict) else None
    if isinstance(hook_type, str):
        if hook_type.split('.')[-1] in TICKET_HOOK_TYPES:
            return True
        try:
            hook_type = HOOKS.get(hook_type)
        except Exception:  # an unregistered project hook is not ours
            return False
    if not isinstance(hook_type, type):
        return False
    return any(cls.__name__ in TICKET_HOOK_TYPES
               and cls.__module__.startswith('mmsupertickets.')
               for cls in hook_type.__mro__)


def ticket_meta(checkpoint: dict) -> Optional[dict]:
    """``checkpoint['meta'][META_KEY]``, or None when it has none."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    return meta.get(META_KEY) if isinstance(meta, dict) else None


def writable_ticket_meta(checkpoint: dict) -> dict:
    """``checkpoint['meta'][META_KEY]``, created when missing."""
    return checkpoint.setdefault('meta', {}).setdefault(META_KEY, {})


def read_arch(checkpoint: dict,
              source: str = 'the checkpoint') -> Optional[Dict[str, int]]:
    """The searched architecture stored in ``checkpoint``, if any.

    Checked strictly (:func:`~mmsupertickets.structures.arch.validate_arch`);
    ``source`` names the file in the error.
    """
    arch = (ticket_meta(checkpoint) or {}).get('arch')
    if arch is None:
        return None
    return validate_arch(arch, f'meta.{META_KEY}.arch of {source}')


def read_section(checkpoint: dict, key: str,
                 source: str = 'the checkpoint') -> Optional[dict]:
    """``meta[META_KEY][key]`` of ``checkpoint`` with every field checked
    (:func:`~mmsupertickets.structures.value_checks.check_ticket_section`):
    the one way the ticket state of a file is read back.

    Raises:
        ValueError: naming ``source``, the field, its value and what is
            allowed.
    """
    return check_ticket_section(
        key, (ticket_meta(checkpoint) or {}).get(key),
        f'meta.{META_KEY}.{key}', source)


def read_masks(checkpoint: dict,
               source: str = 'the checkpoint') -> Dict[str, torch.Tensor]:
    """The pruning masks stored in ``checkpoint`` (empty when none),
    checked as :func:`read_section` checks them."""
    pruning = read_section(checkpoint, 'pruning', source) or {}
    return dict(pruning.get('masks') or {})


def write_section(checkpoint: dict, key: str, state,
                  arch: Optional[Dict[str, int]] = None) -> None:
    """Store ``state`` under ``meta[META_KEY][key]`` (and ``arch``)."""
    meta = writable_ticket_meta(checkpoint)
    if arch is not None:
        meta['arch'] = dict(arch)
    meta[key] = copy.copy(state)
