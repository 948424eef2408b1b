"""Subnet extraction: the model, its searched widths, the weights to load."""
import copy
import inspect
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config

from mmsupertickets.structures.arch import prefixed_arch
from mmsupertickets.structures.state_checks import state_difference

__all__ = [
    'WEIGHT_NOTES', 'build_model', 'arch_owners', 'select_weights',
    'state_dict_difference', 'plain_state_dict'
]

# What each origin of :func:`select_weights` means, for config.py and
# summary.json.
WEIGHT_NOTES = dict(
    ema='EMA-averaged weights (EMAHook saved them as the state_dict)',
    model='trained weights (the run kept no EMA)',
    live='live training weights of an EMAHook run (not the EMA)')


def build_model(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` through the registries of the config's scope.

    Weights are not initialised: they are loaded from a checkpoint next.

    Args:
        cfg (Config): A config with ``model`` (and usually
            ``default_scope`` and ``custom_imports``).

    Returns:
        nn.Module: The model.

    Example:
        >>> model = build_model(
        ...     Config.fromfile('ticket/config.py'))  # doctest: +SKIP
    """
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings
    if cfg.get('custom_imports'):
        # A Config built from a dict has not imported them yet.
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    return MODELS.build(cfg.model)


def arch_owners(model: nn.Module,
                arch: Dict[str, int]) -> Dict[str, Dict[str, int]]:
    """Split a model-level architecture by the top-level child owning it.

    Args:
        model: The model built from the training config.
        arch: ``{unit name: channels}`` over the whole model.

    Returns:
        ``{child name: arch with names local to that child}``, e.g.
        ``{'backbone': {...}, 'decode_head': {'block.paths.k3': 32}}``.

    Raises:
        ValueError: a unit outside every child, or a child holding units
            whose class takes no ``arch`` argument.

    Example:
        >>> arch_owners(model, {'backbone.stage0.fuse.blocks.out0_in0.'
        ...                     'paths.k3': 8})  # doctest: +SKIP
        {'backbone': {'stage0.fuse.blocks.out0_in0.paths.k3': 8}}
    """
    owners = {}
    for name, child in model.named_children():
        local = prefixed_arch(arch, name)
        if not local:
            continue
        if 'arch' not in inspect.signature(type(child).__init__).parameters:
            raise ValueError(
                f'model.{name} ({type(child).__name__}) holds searchable '
                'units but takes no arch= argument, so a config cannot '
                'build it at the searched sizes')
        owners[name] = local
    owned = {f'{n}.{k}' for n, local in owners.items() for k in local}
    stray = sorted(set(arch) - owned)
    if stray:
        raise ValueError(f'{len(stray)} units of the architecture belong to '
                         f'no child module of the model (e.g. {stray[:3]})')
    return owners


def select_weights(checkpoint: dict,
                   weights: str = 'saved') -> Tuple[Dict, str]:
    """The state_dict to export from a training checkpoint, and its origin.

    mmengine's ``EMAHook`` swaps the averaged weights into
    ``checkpoint['state_dict']`` when it saves (and the live ones into
    ``checkpoint['ema_state_dict']``), so ``'saved'`` exports the EMA
    weights of such a run, the ones it validated with.

    Args:
        checkpoint: A loaded mmengine checkpoint.
        weights: ``'saved'``: ``checkpoint['state_dict']``, which holds the
            EMA weights when the run used ``EMAHook`` (mmengine swaps them
            in when saving); ``'live'``: the raw training weights of an
            ``EMAHook`` run (from ``checkpoint['ema_state_dict']``).

    Returns:
        tuple: ``(state_dict, origin)`` with origin ``'ema'``, ``'model'``
        or ``'live'``.

    Raises:
        ValueError: ``weights`` is neither value, the checkpoint is not a
            dict, or ``'live'`` was asked of a run without ``EMAHook``.

    Example:
        >>> ckpt = dict(state_dict={'w': torch.zeros(1)},
        ...             ema_state_dict={'module.w': torch.ones(1)})
        >>> state, origin = select_weights(ckpt)
        >>> origin, state['w'].item()
        ('ema', 0.0)
        >>> state, origin = select_weights(ckpt, 'live')
        >>> origin, state['w'].item()
        ('live', 1.0)
    """
    if weights not in ('saved', 'live'):
        raise ValueError(f"weights={weights!r} must be 'saved' or 'live'")
    if not isinstance(checkpoint, dict):
        raise ValueError('the checkpoint is not a dict but a '
                         f'{type(checkpoint).__name__}')
    state = checkpoint.get('state_dict', checkpoint)
    ema = checkpoint.get('ema_state_dict')
    if weights == 'saved':
        return state, 'ema' if ema is not None else 'model'
    if ema is None:
        raise ValueError("weights='live' needs a checkpoint saved with "
                         'EMAHook (it has no ema_state_dict); its '
                         'state_dict already holds the live weights')
    live = {k[len('module.'):]: v for k, v in ema.items()
            if k.startswith('module.')}
    return OrderedDict((k, live.get(k, v)) for k, v in state.items()), 'live'


def state_dict_difference(model: nn.Module, state: Dict) -> Optional[str]:
    """How ``state`` differs from ``model.state_dict()``, or None.

    Args:
        model: The model the state_dict is meant for.
        state: The state_dict to load.

    Returns:
        str | None: Missing, unexpected and mismatched tensors (counts and
        first examples), or None when ``state`` fits strictly; see
        :func:`~mmsupertickets.structures.state_checks.state_difference`.

    Example:
        >>> state_dict_difference(nn.Linear(2, 3),
        ...                       {'weight': torch.zeros(3, 2)})
        "1 model tensors missing from it (e.g. ['bias'])"
    """
    return state_difference(model.state_dict(), state)[1]


def plain_state_dict(model: nn.Module) -> 'OrderedDict[str, torch.Tensor]':
    """The model's state_dict as detached, contiguous CPU copies.

    Cloned so that no tensor drags a larger shared storage into the file
    it is saved to: the file size is the size of the tensors.

    Args:
        model: The model.

    Returns:
        OrderedDict: ``{name: tensor}``, tensors only, with the module
        versions (``_metadata``) of ``model.state_dict()``.

    Example:
        >>> list(plain_state_dict(nn.Linear(2, 3)))
        ['weight', 'bias']
    """
    state = model.state_dict()
    plain = OrderedDict((k, v.detach().cpu().clone().contiguous())
                        for k, v in state.items())
    # The module versions: versioned load hooks (e.g. mmpose's DEKRHead)
    # convert a state_dict without them as an old-format one.
    plain._metadata = copy.deepcopy(getattr(state, '_metadata', {}))
    return plain
