"""Starting a task from a SuperTicket drawn on another task."""
import re
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmsupertickets.pruning.prunable import DEFAULT_EXCLUDE
from mmsupertickets.registry import HOOKS
from mmsupertickets.structures.arch import export_arch, plan_for_arch
from mmsupertickets.utils.checkpoint_io import load_checkpoint_file
from ..run_state import TicketRunState
from ..runner_surgery import rewrap_if_pending, shrink_runner, unwrap
from ..ticket_meta import (read_arch, read_masks, ticket_meta,
                           writable_ticket_meta)


@HOOKS.register_module()
class TicketTransferHook(Hook):
    """Transfers a ticket's architecture, masks and (optionally) weights.

    Modes:

    - ``weights=True`` (the paper's transfer): architecture + masks +
      trained weights of the chosen modules; weights matching
      ``reinit`` (by default the task classifiers) keep this run's fresh
      initialisation;
    - ``weights=False`` (the classic lottery-ticket test): architecture +
      masks on this run's fresh initialisation.

    ``modules`` picks what is transferred: ``('backbone', )`` for a ticket
    drawn on another task with another head (ImageNet → COCO keypoints), or
    None for every top-level module whose units the ticket holds
    (Cityscapes ↔ ADE20K: backbone and decode head; only the classifier is
    new). Masks are fixed: the config must also hold a
    ``ProgressivePruningHook(prune_interval=None)``, which owns the masks
    and writes them into checkpoints. Masked weights are set to zero at the
    start, receive no gradient and so stay zero; no search or pruning
    happens.

    Lifecycle: ``before_train`` (after weight init and any resume) rebuilds
    the searched subnet of the chosen modules, loads the weights and hands
    the masks to the pruning hook. A resumed run already holds all of it in
    its checkpoint and is left alone.

    Args:
        ticket (str): A SuperTickets training checkpoint (with
            ``meta['supertickets']``).
        modules (Sequence[str], optional): Top-level children of the model
            to transfer. Defaults to None (all the ticket covers).
        weights (bool): Transfer trained weights too. Defaults to True.
        reinit (Sequence[str]): Regexes of weight names never transferred.
            Defaults to the stock final classifiers.

    Example:
        >>> custom_hooks = [
        ...     dict(type='TicketTransferHook',
        ...          ticket='work_dirs/imagenet_ticket/epoch_350.pth',
        ...          modules=('backbone', ), weights=True),
        ...     dict(type='ProgressivePruningHook', prune_interval=None),
        ... ]
    """

    priority = 44  # before the pruning hook (45) uses the masks

    def __init__(self,
                 ticket: str,
                 modules: Optional[Sequence[str]] = None,
                 weights: bool = True,
                 reinit: Sequence[str] = DEFAULT_EXCLUDE):
        self.ticket = ticket
        self.modules = tuple(modules) if modules is not None else None
        self.weights = weights
        self.reinit = [re.compile(p) for p in reinit]
        self.done = False

    def _selected(self, name: str) -> bool:
        return self.modules is None or name.split('.', 1)[0] in self.modules

    def before_train(self, runner) -> None:
        pruning = TicketRunState.of(runner).mask_owner
        if pruning is None or pruning.prune_interval is not None:
            raise ValueError(
                'TicketTransferHook needs ProgressivePruningHook('
                'prune_interval=None) in custom_hooks: it holds the '
                'transferred masks fixed')
        if self.done:
            return
        checkpoint = load_checkpoint_file(self.ticket)
        ticket_arch = read_arch(checkpoint)
        if ticket_arch is None:
            raise ValueError(f'{self.ticket} holds no SuperTicket (no '
                             f"meta['supertickets']['arch'])")
        model = unwrap(runner.model)
        arch = {n: c for n, c in ticket_arch.items() if self._selected(n)}
        if self.modules is not None:
            missing = [m for m in self.modules
                       if not any(n.startswith(m + '.') for n in arch)]
            if missing:
                raise ValueError(f'the ticket {self.ticket} has no searchable'
                                 f' units under {missing}')
        # Units of modules that are not transferred keep their size.
        current = {u: c for u, c in export_arch(model).items()
                   if not self._selected(u)}
        shrink_runner(runner, plan_for_arch(model, {**current, **arch}))
        rewrap_if_pending(runner)
        loaded = 0
        if self.weights:
            loaded = self._load_weights(model, checkpoint['state_dict'],
                                        sorted({n.split('.', 1)[0]
                                                for n in arch}))
        masks = {k: v for k, v in read_masks(checkpoint).items()
                 if self._selected(k)}
        pruning.load_masks(runner, masks, bake=True)
        self.done = True
        print_log(
            f'[SuperTickets] transferred {len(arch)} units, {loaded} tensors'
            f' and {len(masks)} masks from {self.ticket} '
            f'({"trained" if self.weights else "fresh"} weights); '
            f'sparsity {pruning.sparsity(runner):.4f}', logger='current')

    def _load_weights(self, model, state_dict: dict,
                      covered: Sequence[str]) -> int:
        """Load the selected ticket weights; return how many were loaded.

        Keys saved from a DDP-wrapped model (``module.`` prefix) are
        accepted. Raises when nothing matches, or when a module asked for
        (``modules``, else every module the ticket's units cover) that has
        transferable weights got none of them.
        """
        own = model.state_dict()
        state = {}
        for key, value in state_dict.items():
            # DDP checkpoints name every weight 'module.<name>'.
            if key.startswith('module.') and key not in own:
                key = key[len('module.'):]
            if self._selected(key) and not any(
                    p.search(key) for p in self.reinit):
                state[key] = value
        bad = [k for k, v in state.items()
               if k in own and own[k].shape != v.shape]
        if bad:
            raise ValueError(
                f'ticket weights do not fit this model, e.g. {bad[0]}: '
                f'{tuple(state[bad[0]].shape)} vs '
                f'{tuple(own[bad[0]].shape)}')
        # Only keys the model has are really loaded; the rest is counted
        # as not loaded, whatever the checkpoint offered.
        loaded = [k for k in state if k in own]
        # Weights kept fresh (``reinit``) go in with this run's values:
        # searchable modules refuse a state that covers them only in part.
        full = {k: v for k, v in own.items() if self._selected(k)}
        full.update((k, state[k]) for k in loaded)
        model.load_state_dict(full, strict=False)
        asked = list(self.modules) if self.modules is not None else list(
            covered)
        missed = [
            m for m in asked
            if any(k.startswith(m + '.') and not any(
                p.search(k) for p in self.reinit) for k in own)
            and not any(k.startswith(m + '.') for k in loaded)
        ]
        if not loaded or missed:
            example = next(iter(state_dict), None)
            raise ValueError(
                f'TicketTransferHook(weights=True) loaded {len(loaded)} '
                f'tensors from {self.ticket}'
                + (f'; none for the modules {missed}' if missed else '')
                + f': its state_dict keys (e.g. {example!r}) do not match '
                f'the model (e.g. {next(iter(own), None)!r})')
        return len(loaded)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        writable_ticket_meta(checkpoint)['transferred_from'] = self.ticket

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # A resumed run holds the transferred ticket already.
        self.done = bool((ticket_meta(checkpoint) or {}).get(
            'transferred_from'))
