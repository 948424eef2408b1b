"""Starting a task from a SuperTicket drawn on another task."""
import re
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmsupertickets.pruning.prunable import DEFAULT_EXCLUDE
from mmsupertickets.registry import HOOKS
from mmsupertickets.structures.arch import (
    check_arch_fits,
    export_arch,
    plan_for_arch,
)
from mmsupertickets.structures.value_checks import check_flag, check_patterns
from mmsupertickets.utils.checkpoint_io import load_checkpoint_file

from ..run_state import TicketRunState
from ..runner_surgery import rewrap_if_pending, shrink_runner, unwrap
from ..ticket_meta import (
    read_arch,
    read_masks,
    ticket_meta,
    writable_ticket_meta,
)


class _Source:
    """One ticket file and the top-level modules taken from it.

    ``modules`` None means every module except ``others`` (those grafted
    from other tickets).
    """

    def __init__(self, path: str, modules: Optional[Tuple[str, ...]],
                 others: Tuple[str, ...] = ()):
        self.path = path
        self.modules = modules
        self.others = others

    def selected(self, name: str) -> bool:
        top = name.split('.', 1)[0]
        if self.modules is None:
            return top not in self.others
        return top in self.modules

    def __str__(self) -> str:
        if self.modules is not None:
            which = f'modules {list(self.modules)}'
        else:
            which = f'all modules but {list(self.others)}' if self.others \
                else 'all modules'
        return f'the ticket {self.path} ({which})'


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

    ``graft`` takes further top-level modules from other tickets, e.g. the
    searched and pruned fusion neck of a COCO ticket under an ImageNet
    ticket's backbone (as the reference's ImageNet → COCO transfer): each
    ``{module: checkpoint}`` entry gets architecture, masks and (with
    ``weights``, same ``reinit`` rule) weights from that checkpoint, which
    must hold the module's units and fit this model. Every source goes
    through the same checks; a module may come from one source only
    (``modules=None`` then means all but the grafted ones). Modules no
    source names keep this run's own supernet architecture, unpruned.

    The γ penalty is not part of this hook: it belongs to
    ``SuperNetSearchHook``, which the stock transfer configs leave out, so
    it is off during their transfer (the reference keeps it on).

    Lifecycle: ``before_train`` (after weight init and any resume) rebuilds
    the searched subnet of the chosen modules, loads the weights and hands
    the masks to the pruning hook. A resumed run already holds all of it in
    its checkpoint and is left alone.

    Args:
        ticket (str): A SuperTickets training checkpoint (with
            ``checkpoint['supertickets']``).
        modules (Sequence[str], optional): Top-level children of the model
            to transfer from ``ticket``. Defaults to None (all the ticket
            covers, except the grafted modules).
        weights (bool): Transfer trained weights too. Defaults to True.
        reinit (Sequence[str]): Regexes of weight names never transferred.
            Defaults to the stock final classifiers.
        graft (dict, optional): ``{top-level module: checkpoint}`` taken
            from other SuperTickets checkpoints. Defaults to None.

    Example:
        >>> custom_hooks = [
        ...     dict(type='TicketTransferHook',
        ...          ticket='work_dirs/imagenet_ticket/epoch_350.pth',
        ...          modules=('backbone', ), weights=True,
        ...          graft=dict(neck='work_dirs/coco_ticket/epoch_210.pth')),
        ...     dict(type='ProgressivePruningHook', prune_interval=None),
        ... ]

        A module comes from one ticket only:

        >>> TicketTransferHook('in1k.pth', modules=('backbone', 'neck'),
        ...                    graft=dict(neck='coco.pth'))
        Traceback (most recent call last):
        ...
        ValueError: TicketTransferHook: 'neck' is taken from both in1k.pth ...
    """

    priority = 44  # before the pruning hook (45) uses the masks

    def __init__(self,
                 ticket: str,
                 modules: Optional[Sequence[str]] = None,
                 weights: bool = True,
                 reinit: Sequence[str] = DEFAULT_EXCLUDE,
                 graft: Optional[Dict[str, str]] = None):
        if not isinstance(ticket, str) or not ticket:
            raise ValueError(f'TicketTransferHook: ticket={ticket!r} must be '
                             'the path of a checkpoint')
        self.ticket = ticket
        if modules is not None and (isinstance(modules, str) or not all(
                isinstance(m, str) and m for m in modules)):
            raise ValueError(f'TicketTransferHook: modules={modules!r} must '
                             "be a list of top-level modules, e.g. "
                             "['backbone']")
        self.modules = tuple(modules) if modules is not None else None
        self.weights = check_flag(weights, 'TicketTransferHook: weights')
        self.reinit = [re.compile(p) for p in check_patterns(
            reinit, 'TicketTransferHook: reinit')]
        if graft is not None and not isinstance(graft, dict):
            raise ValueError(f'TicketTransferHook: graft={graft!r} must be a '
                             'dict {top-level module: checkpoint}')
        self.graft = dict(graft or {})
        for module, path in self.graft.items():
            if not isinstance(path, str) or not path:
                raise ValueError(f'TicketTransferHook: graft[{module!r}]='
                                 f'{path!r} must be the path of a '
                                 'checkpoint')
        self.sources = self._sources()
        self.done = False

    def _sources(self) -> List[_Source]:
        """The main ticket, then one source per graft checkpoint."""
        for module, path in self.graft.items():
            if not isinstance(module, str) or '.' in module or not module:
                raise ValueError(f'TicketTransferHook: graft keys are '
                                 f'top-level modules, got {module!r}')
            if self.modules is not None and module in self.modules:
                raise ValueError(
                    f'TicketTransferHook: {module!r} is taken from both '
                    f'{self.ticket} (modules) and {path} (graft)')
        grafted = tuple(self.graft)
        sources = [_Source(self.ticket, self.modules, others=grafted)]
        # Modules grafted from the same file share one load.
        by_path: Dict[str, List[str]] = {}
        for module, path in self.graft.items():
            by_path.setdefault(path, []).append(module)
        sources += [_Source(p, tuple(m)) for p, m in by_path.items()]
        return sources

    def before_train(self, runner) -> None:
        pruning = TicketRunState.of(runner).mask_owner
        if pruning is None or pruning.prune_interval is not None:
            raise ValueError(
                'TicketTransferHook needs ProgressivePruningHook('
                'prune_interval=None) in custom_hooks: it holds the '
                'transferred masks fixed')
        if self.done:
            return
        model = unwrap(runner.model)
        present = export_arch(model)
        loaded_sources = []
        for source in self.sources:
            checkpoint = load_checkpoint_file(source.path)
            arch = self._read_arch(source, checkpoint, present, model)
            loaded_sources.append((source, checkpoint, arch))
        # Units of modules that no source names keep their size.
        target = {u: c for u, c in present.items()
                  if not any(s.selected(u) for s in self.sources)}
        for _, _, arch in loaded_sources:
            target.update(arch)
        shrink_runner(runner, plan_for_arch(model, target))
        rewrap_if_pending(runner)
        masks, report = {}, []
        for source, checkpoint, arch in loaded_sources:
            loaded = 0
            if self.weights:
                loaded = self._load_weights(
                    model, checkpoint['state_dict'], source,
                    sorted({n.split('.', 1)[0] for n in arch}))
            own = {k: v for k, v in read_masks(checkpoint,
                                               source.path).items()
                   if source.selected(k)}
            masks.update(own)
            report.append(f'{len(arch)} units, {loaded} tensors and '
                          f'{len(own)} masks from {source.path}')
        pruning.load_masks(runner, masks, bake=True)
        self.done = True
        print_log(
            f'[SuperTickets] transferred {"; ".join(report)} '
            f'({"trained" if self.weights else "fresh"} weights); '
            f'sparsity {pruning.sparsity(runner):.4f}', logger='current')

    @staticmethod
    def _read_arch(source: _Source, checkpoint: dict, present: dict,
                   model) -> Dict[str, int]:
        """The units ``source`` gives, checked against ``model`` alone
        (so that an error names that ticket and its modules)."""
        ticket_arch = read_arch(checkpoint, source.path)
        if ticket_arch is None:
            raise ValueError(f'{source.path} holds no SuperTicket (no '
                             'supertickets.arch)')
        arch = {n: c for n, c in ticket_arch.items() if source.selected(n)}
        if source.modules is not None:
            missing = [m for m in source.modules
                       if not any(n.startswith(m + '.') for n in arch)]
            if missing:
                raise ValueError(f'the ticket {source.path} has no '
                                 f'searchable units under {missing}')
        rest = {u: c for u, c in present.items() if not source.selected(u)}
        check_arch_fits(model, {**rest, **arch}, str(source))
        return arch

    def _load_weights(self, model, state_dict: dict, source: _Source,
                      covered: Sequence[str]) -> int:
        """Load the weights ``source`` gives; return how many were loaded.

        Keys saved from a DDP-wrapped model (``module.`` prefix) are
        accepted. Raises when nothing matches, or when a module asked for
        (the source's ``modules``, else every module its units cover) that
        has transferable weights got none of them.
        """
        own = model.state_dict()
        state = {}
        for key, value in state_dict.items():
            # DDP checkpoints name every weight 'module.<name>'.
            if key.startswith('module.') and key not in own:
                key = key[len('module.'):]
            if source.selected(key) and not any(
                    p.search(key) for p in self.reinit):
                state[key] = value
        bad = [k for k, v in state.items()
               if k in own and own[k].shape != v.shape]
        if bad:
            raise ValueError(
                f'weights of {source} do not fit this model, e.g. {bad[0]}: '
                f'{tuple(state[bad[0]].shape)} vs '
                f'{tuple(own[bad[0]].shape)}')
        # Only keys the model has are really loaded; the rest is counted
        # as not loaded, whatever the checkpoint offered.
        loaded = [k for k in state if k in own]
        # Weights kept fresh (``reinit``) go in with this run's values:
        # searchable modules refuse a state that covers them only in part.
        full = {k: v for k, v in own.items() if source.selected(k)}
        full.update((k, state[k]) for k in loaded)
        model.load_state_dict(full, strict=False)
        asked = list(source.modules) if source.modules is not None else list(
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
                f'tensors from {source.path}'
                + (f'; none for the modules {missed}' if missed else '')
                + f': its state_dict keys (e.g. {example!r}) do not match '
                f'the model (e.g. {next(iter(own), None)!r})')
        return len(loaded)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = writable_ticket_meta(checkpoint)
        meta['transferred_from'] = self.ticket
        if self.graft:
            meta['grafted_from'] = dict(self.graft)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # A resumed run holds the transferred ticket already.
        self.done = bool((ticket_meta(checkpoint) or {}).get(
            'transferred_from'))
