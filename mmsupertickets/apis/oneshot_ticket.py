"""Step 1 of an S+P run: prune the searched subnet once, evaluate and
measure it, and save the one-shot ticket."""
import copy
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

from mmengine.config import Config
from mmengine.dist import barrier, is_main_process

from mmsupertickets.engine.runner_surgery import full_arch, unwrap
from mmsupertickets.engine.ticket_meta import (
    TICKET_KEY,
    TICKET_STATE_VERSION,
    ticket_meta,
    writable_ticket_meta,
)
from mmsupertickets.flops import complexity
from mmsupertickets.structures.value_checks import (
    check_input_shape,
    check_ticket_section,
)
from mmsupertickets.utils.atomic_write import save_checkpoint_atomically

from .oneshot_options import OneShotOptions
from .oneshot_runner import build_runner, evaluate, scalar_metrics

__all__ = ['OneShotTicket', 'prune_and_evaluate']


@dataclass
class OneShotTicket:
    """The saved one-shot ticket and what was measured on it.

    Attributes:
        path (str): The ticket: the checkpoint's weights with the masks.
        meta (dict): Its ticket state (arch, masks, search and
            one-shot records).
        masks (dict): The masks' state dict.
        start (dict): ``iter`` and ``epoch`` where the search stopped.
        metrics (dict, optional): Scalar metrics of the pruned subnet.
        kept (int): Prunable weights kept.
        total (int): Prunable weights.
        complexity (dict): Params/MACs of the supernet, the dense subnet
            and the sparse ticket at ``complexity['input_shape']``.

    Example:
        >>> ticket = prune_and_evaluate(cfg, 'iter_80000.pth', options,
        ...                             'work_dirs/sp/snip_0.9',
        ...                             'val')  # doctest: +SKIP
        >>> ticket.sparsity  # doctest: +SKIP
        0.9
    """

    path: str
    meta: dict
    masks: dict
    start: Dict[str, int]
    metrics: Optional[Dict[str, float]]
    kept: int
    total: int
    complexity: dict

    @property
    def sparsity(self) -> float:
        return 1 - self.kept / max(self.total, 1)


def _costs(model, input_shape, masks, prunable, search: dict) -> dict:
    dense = complexity(model, input_shape)
    sparse = complexity(model, input_shape, masks.densities(prunable))
    return dict(
        input_shape=input_shape,
        supernet=search.get('supernet_cost'),
        dense_subnet=dict(params=dense['params'], macs=dense['macs']),
        sparse=dict(params=sparse['sparse_params'],
                    macs=sparse['sparse_macs']),
        macs_x_global_density=sparse['macs_x_global_density'])


def _save_ticket(loaded: dict, new_meta: dict, path: str) -> Dict[str, int]:
    """Writes the loaded checkpoint with ``new_meta`` as its ticket state;
    returns where the search stopped."""
    ckpt = dict(loaded, meta=copy.deepcopy(loaded['meta']))
    writable_ticket_meta(ckpt)  # the layout of this version
    ckpt[TICKET_KEY] = dict(new_meta, version=TICKET_STATE_VERSION)
    start = dict(iter=int(ckpt['meta'].get('iter', 0)),
                 epoch=int(ckpt['meta'].get('epoch', 0)))
    if is_main_process():
        # The search run's optimizer, schedule and EMA go along, so that
        # the retraining can resume them.
        save_checkpoint_atomically(ckpt, path)
    barrier()
    return start


def prune_and_evaluate(cfg: Config,
                       checkpoint: str,
                       options: OneShotOptions,
                       run_dir: str,
                       mode: str,
                       input_shape: Optional[Sequence[int]] = None
                       ) -> OneShotTicket:
    """Loads ``checkpoint`` (rebuilding its searched subnet), prunes it
    once and evaluates it; saves the ticket to
    ``<run_dir>/oneshot_ticket.pth``.

    Args:
        cfg (Config): The config without ticket hooks
            (:func:`~mmsupertickets.apis.oneshot_runner.base_config`).
        checkpoint (str): Absolute path of the search checkpoint.
        options (OneShotOptions): How to prune.
        run_dir (str): The run's folder; the runner works in its
            ``oneshot`` subfolder.
        mode (str): ``'val'`` or ``'test'``.
        input_shape (Sequence[int], optional): (H, W) at which params and
            MACs are counted. Defaults to the search's profiling size.

    Returns:
        OneShotTicket: The ticket and its measurements.

    Example:
        >>> ticket = prune_and_evaluate(  # doctest: +SKIP
        ...     cfg, osp.abspath('iter_80000.pth'),
        ...     OneShotOptions('magnitude', 0.9), 'work_dirs/sp/mag_0.9',
        ...     'val')
    """
    runner = build_runner(cfg, osp.join(run_dir, 'oneshot'), checkpoint,
                          f'{options.name}_oneshot')
    hook = options.pruning_hook()
    runner.register_hook(hook)
    metrics = scalar_metrics(evaluate(runner, mode))
    source_meta = copy.deepcopy(ticket_meta(hook.loaded) or {})
    search = check_ticket_section(
        'search', source_meta.get('search'), f'{TICKET_KEY}.search',
        repr(checkpoint)) or {}
    # Count at the size the search profiled at (its default: the first
    # training images), so S+P and SuperTickets costs compare.
    input_shape = (input_shape or search.get('input_shape')
                   or check_input_shape(hook.batch_shape(runner),
                                        'the first training batch'))
    model = unwrap(runner.model)
    prunable = list(hook.prunable(runner))
    kept, total = hook.masks.kept_and_total(model, prunable)
    costs = _costs(model, input_shape, hook.masks, prunable, search)
    masks = hook.masks.state_dict()

    # The one-shot ticket: the checkpoint's weights (untouched by the
    # evaluation) with the masks, loadable by tools/test.py and by the
    # retraining run.
    new_meta = copy.deepcopy(source_meta)
    new_meta['arch'] = full_arch(runner)
    new_meta['pruning'] = dict(masks=masks, events=1,
                               last_ratio=options.ratio,
                               target_sparsity=options.ratio)
    new_meta['oneshot'] = options.record(checkpoint)
    path = osp.join(run_dir, 'oneshot_ticket.pth')
    start = _save_ticket(hook.loaded, new_meta, path)
    return OneShotTicket(path=path, meta=new_meta, masks=masks, start=start,
                         metrics=metrics, kept=kept, total=total,
                         complexity=costs)
