"""The ticket contract: what a SuperTickets run writes and how it is read.

One place owns every name that the hooks, export, the S+P driver, transfer
and the tools agree on:

- a checkpoint carries the ticket under its own top-level key,
  ``checkpoint[TICKET_KEY]`` (as mmengine's ``EMAHook`` keeps
  ``ema_state_dict``; ``meta`` is for small scalars), versioned by
  ``version`` (:data:`TICKET_STATE_VERSION`): ``arch`` (``{unit name:
  channels}`` over every unit of the supernet, 0 for a removed one),
  ``search`` (the search hook's state), ``pruning``
  (``masks``: ``{weight name: bool keep-mask}``, and the schedule state),
  ``transferred_from`` (the source ticket of a transfer run) and
  ``grafted_from`` (``{module: ticket}`` of the modules it grafted).
  Checkpoints written before version 2 kept the same fields in
  ``checkpoint['meta'][META_KEY]``; :func:`migrate_ticket_state` reads
  them, so they still resume, test and export;
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
    'TICKET_KEY', 'TICKET_STATE_VERSION', 'META_KEY', 'EVENTS_FILE',
    'TICKET_HOOK_TYPES', 'is_ticket_hook', 'ticket_meta',
    'writable_ticket_meta', 'migrate_ticket_state', 'read_arch',
    'read_masks', 'read_section', 'write_section'
]

# The checkpoint's top-level key of the ticket state, and its layout's
# version (1: the same fields in meta[META_KEY]).
TICKET_KEY = 'supertickets'
TICKET_STATE_VERSION = 2
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


def migrate_ticket_state(checkpoint: dict) -> Optional[dict]:
    """The ticket state of a checkpoint written before version 2 (in
    ``meta[META_KEY]``), in the current layout; None when it has none.

    Example:
        >>> old = {'meta': {'supertickets': {'arch': {'u': 8}}}}
        >>> migrate_ticket_state(old)
        {'arch': {'u': 8}, 'version': 2}
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    state = meta.get(META_KEY) if isinstance(meta, dict) else None
    if not isinstance(state, dict):
        return state
    # Version 1 -> 2: the same fields, moved to the top level.
    return dict(state, version=TICKET_STATE_VERSION)


def ticket_meta(checkpoint: dict) -> Optional[dict]:
    """The ticket state of ``checkpoint`` (``checkpoint[TICKET_KEY]``, or an
    earlier checkpoint's, migrated), or None when it has none.

    Raises:
        ValueError: the state is of a later version than this code reads.

    Example:
        >>> ticket_meta({'supertickets': {'version': 2, 'arch': {'u': 8}}})
        {'version': 2, 'arch': {'u': 8}}
        >>> ticket_meta({'state_dict': {}}) is None
        True
    """
    if not isinstance(checkpoint, dict):
        return None
    state = checkpoint.get(TICKET_KEY)
    if state is None:
        return migrate_ticket_state(checkpoint)
    version = state.get('version') if isinstance(state, dict) else None
    if not isinstance(version, int) or isinstance(version, bool) or \
            not 2 <= version <= TICKET_STATE_VERSION:
        raise ValueError(
            f'{TICKET_KEY}.version={version!r} of the checkpoint: this '
            f'mmsupertickets reads versions up to {TICKET_STATE_VERSION}; '
            'a later version was written by a newer mmsupertickets')
    return state


def writable_ticket_meta(checkpoint: dict) -> dict:
    """``checkpoint[TICKET_KEY]``, created (or migrated from an earlier
    checkpoint's ``meta``, which then loses it) when missing."""
    state = ticket_meta(checkpoint)
    if state is None:
        state = {'version': TICKET_STATE_VERSION}
    checkpoint[TICKET_KEY] = state
    meta = checkpoint.get('meta')
    if isinstance(meta, dict):
        meta.pop(META_KEY, None)
    return state


def read_arch(checkpoint: dict,
              source: str = 'the checkpoint') -> Optional[Dict[str, int]]:
    """The searched architecture stored in ``checkpoint``, if any.

    Checked strictly (:func:`~mmsupertickets.structures.arch.validate_arch`);
    ``source`` names the file in the error.
    """
    arch = (ticket_meta(checkpoint) or {}).get('arch')
    if arch is None:
        return None
    return validate_arch(arch, f'{TICKET_KEY}.arch of {source}')


def read_section(checkpoint: dict, key: str,
                 source: str = 'the checkpoint') -> Optional[dict]:
    """``checkpoint[TICKET_KEY][key]`` with every field checked
    (:func:`~mmsupertickets.structures.value_checks.check_ticket_section`):
    the one way the ticket state of a file is read back.

    Raises:
        ValueError: naming ``source``, the field, its value and what is
            allowed.
    """
    return check_ticket_section(
        key, (ticket_meta(checkpoint) or {}).get(key),
        f'{TICKET_KEY}.{key}', source)


def read_masks(checkpoint: dict,
               source: str = 'the checkpoint') -> Dict[str, torch.Tensor]:
    """The pruning masks stored in ``checkpoint`` (empty when none),
    checked as :func:`read_section` checks them."""
    pruning = read_section(checkpoint, 'pruning', source) or {}
    return dict(pruning.get('masks') or {})


def write_section(checkpoint: dict, key: str, state,
                  arch: Optional[Dict[str, int]] = None) -> None:
    """Store ``state`` under ``checkpoint[TICKET_KEY][key]`` (and
    ``arch``)."""
    meta = writable_ticket_meta(checkpoint)
    if arch is not None:
        meta['arch'] = dict(arch)
    meta[key] = copy.copy(state)
