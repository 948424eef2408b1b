"""The export: a training checkpoint into a ticket folder.

:func:`export_ticket` runs the steps below in order: read and check the
checkpoint, shrink the supernet to the ticket, count it, then write the
files into a temporary folder, check them and swap the folder in.
"""
import json
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config
from torch import nn

from mmsupertickets.engine.ticket_meta import (
    TICKET_KEY,
    read_arch,
    read_masks,
    read_section,
)
from mmsupertickets.flops import complexity
from mmsupertickets.structures.arch import apply_arch, check_arch_fits
from mmsupertickets.structures.masks import WeightMasks
from mmsupertickets.structures.sparse_format import save_sparse_state_dict
from mmsupertickets.structures.state_checks import unmark_masked_state
from mmsupertickets.structures.value_checks import check_input_shape
from mmsupertickets.utils.atomic_write import save_checkpoint_atomically
from mmsupertickets.utils.checkpoint_io import load_checkpoint_file

from .progress import logged_step
from .subnet import (
    arch_owners,
    build_model,
    plain_state_dict,
    select_weights,
    state_dict_difference,
)
from .ticket_checks import (
    export_checked_onnx,
    rebuild_from_config,
    refuse_non_finite,
    require_ticket_meta,
)
from .ticket_checks import max_abs_diff as _max_abs_diff  # noqa: F401  (tests import it)
from .ticket_config import config_text, load_config, ticket_config
from .ticket_folder import (
    check_out_dir,
    discard,
    file_sizes,
    make_parents,
    make_temp_folder,
    move_into_place,
)
from .ticket_summary import (
    COUNTING,
    SPEEDUP_NOTE,
    format_search,
    format_summary,
    search_summary,
    ticket_summary,
)

# The summary's names stay importable from here, where they were first.
__all__ = [
    'COUNTING', 'SPEEDUP_NOTE', 'export_ticket', 'format_search',
    'format_summary',
    'ticket_checkpoint'
]


def _plain(obj) -> bool:
    """Whether ``obj`` holds only what any ``weights_only`` load reads."""
    if isinstance(obj, (str, int, float, bool, type(None))):
        return True
    if isinstance(obj, (list, tuple)):
        return all(_plain(o) for o in obj)
    if isinstance(obj, dict):
        return all(_plain(k) and _plain(v) for k, v in obj.items())
    return False


def ticket_checkpoint(state_dict: dict, checkpoint: dict) -> dict:
    """``ticket.pth``: the weights as a stock mmengine checkpoint.

    ``state_dict`` plus ``meta.dataset_meta`` (the class names the stock
    ``init_model`` / ``get_model`` read) when it holds plain values only;
    otherwise (mmpose keeps NumPy arrays there) it is left out and those
    APIs take it from the exported config's dataset, as they do for any
    checkpoint without it. Nothing else: no optimizer, no masks.
    """
    meta = {}
    dataset_meta = (checkpoint.get('meta') or {}).get('dataset_meta')
    if dataset_meta is not None and _plain(dataset_meta):
        meta['dataset_meta'] = dataset_meta
    return {'state_dict': state_dict, 'meta': meta}


def _read_checkpoint(
        ckpt_path: str,
        weights: str) -> Tuple[dict, Dict[str, int], dict, str, dict, dict]:
    """The checkpoint, its arch (sorted), the weights to export and their
    origin, and its search and pruning sections; refuses one without a
    ticket or with non-finite weights."""
    ckpt = load_checkpoint_file(ckpt_path)
    require_ticket_meta(ckpt, ckpt_path)
    arch = dict(sorted(read_arch(ckpt, repr(ckpt_path)).items()))
    state, origin = select_weights(ckpt, weights)
    refuse_non_finite(state, f'checkpoint {ckpt_path!r} ({origin} weights)')
    search = read_section(ckpt, 'search', repr(ckpt_path)) or {}
    pruning = read_section(ckpt, 'pruning', repr(ckpt_path)) or {}
    return ckpt, arch, state, origin, search, pruning


def _input_shape(shape: Optional[Sequence[int]], search: dict) -> list:
    """``shape``, or else the profiling size the search stored, checked."""
    if shape is None:
        if not search.get('input_shape'):
            raise ValueError('no --shape given and the checkpoint stores no '
                             'profiling input shape: pass shape=(H, W)')
        shape = search['input_shape']  # checked by read_section
    return check_input_shape(shape, 'shape')


def _supernet_cost(model: nn.Module, search: dict, shape: list) -> dict:
    """Params and MACs of the (not yet shrunk) ``model`` at ``shape``, and
    where they come from."""
    cost = search.get('supernet_cost')
    if cost and list(search.get('input_shape') or []) == shape:
        return dict(params=cost['params'], macs=cost['macs'],
                    input_shape=shape,
                    source=f'checkpoint {TICKET_KEY}.search.'
                    'supernet_cost')
    # Stored at another size or not at all: the training config builds the
    # supernet, count it at this shape.
    with logged_step(f'counting the supernet at {shape[0]}x{shape[1]}'):
        measured = complexity(model, shape)
    return dict(params=measured['params'], macs=measured['macs'],
                input_shape=shape,
                source='measured on the model the training config builds')


def _shrink_to_ticket(model: nn.Module, arch: Dict[str, int], state: dict,
                      ckpt: dict, ckpt_path: str) -> Dict[str, torch.Tensor]:
    """Shrink ``model`` to ``arch``, load ``state`` and bake the
    checkpoint's masks into it (eval mode); returns the masks."""
    apply_arch(model, arch)  # checked by the caller
    problem = state_dict_difference(model, state)
    if problem:
        raise ValueError(f'the checkpoint does not fit the config at its '
                         f'searched architecture: {problem}')
    unmark_masked_state(state)  # the masks are applied right below
    model.load_state_dict(state, strict=True)
    masks = WeightMasks()
    masks.load_state_dict(model, read_masks(ckpt, repr(ckpt_path)),
                          f'the masks of {ckpt_path!r}')
    masks.bake(model)
    model.eval()
    mask_state = masks.state_dict()
    masks.clear()  # the weights now carry the zeros themselves
    return mask_state


def _ticket_cost(model: nn.Module, mask_state: Dict[str, torch.Tensor],
                 shape: list) -> dict:
    """Dense and sparse params and MACs of the shrunk, masked ``model``."""
    densities = {n: float(m.sum()) / max(m.numel(), 1)
                 for n, m in mask_state.items()}
    with logged_step(f'counting the ticket at {shape[0]}x{shape[1]}'):
        return complexity(model, shape, densities)


def _write_ticket_files(folder: str, arch: Dict[str, int],
                        ticket_state: dict, mask_state: dict, ckpt: dict,
                        config: str) -> None:
    """Write ``arch.json``, ``ticket.pth``, ``ticket_sparse.pth`` and
    ``config.py`` (whose text is ``config``) into ``folder``."""
    with open(osp.join(folder, 'arch.json'), 'w') as f:
        json.dump(arch, f, indent=1)
        f.write('\n')
    save_checkpoint_atomically(ticket_checkpoint(ticket_state, ckpt),
                               osp.join(folder, 'ticket.pth'))
    save_sparse_state_dict(ticket_state, mask_state,
                           osp.join(folder, 'ticket_sparse.pth'))
    with open(osp.join(folder, 'config.py'), 'w') as f:
        f.write(config)


def _write_summary(folder: str, summary: dict) -> None:
    with open(osp.join(folder, 'summary.json'), 'w') as f:
        # No NaN reaches the summary: the inputs are checked before, and a
        # number gone non-finite since fails here.
        json.dump(summary, f, indent=2, allow_nan=False)
        f.write('\n')


def export_ticket(config: Union[str, Config, dict],
                  checkpoint: str,
                  out_dir: str,
                  shape: Optional[Sequence[int]] = None,
                  onnx: bool = False,
                  force: bool = False,
                  weights: str = 'saved',
                  cfg_options: Optional[dict] = None) -> dict:
    """Write the deployable files of the SuperTicket in ``checkpoint``.

    A training checkpoint of a SuperTickets run holds the (shrunk) weights,
    the searched architecture and the pruning masks in
    ``checkpoint[TICKET_KEY]``. The export turns it into a folder
    that needs none of the search machinery:

    - ``arch.json``: the model-level architecture ``{unit name: channels}``;
    - ``ticket.pth``: a stock checkpoint (``state_dict`` and
      ``meta.dataset_meta``, see :func:`ticket_checkpoint`) of the
      physically shrunk subnet with the masks baked in (pruned weights are
      0), loaded by every ``init_model`` / ``get_model``;
    - ``ticket_sparse.pth``: the same weights in the sparse storage form of
      :mod:`mmsupertickets.structures.sparse_format` (kept values and their
      flat int32 indices for every masked weight), read back by
      :func:`~mmsupertickets.structures.sparse_format.load_sparse_state_dict`;
    - ``config.py``: a stock mmseg/mmpose/mmpretrain config that builds the
      shrunk model (each searchable module gets its part of ``arch.json``),
      without the SuperTickets hooks, with ``load_from`` at ``ticket.pth``;
    - ``ticket.onnx`` (optional): the tensor forward of the shrunk model;
    - ``summary.json``: params and MACs of the supernet, the shrunk subnet
      and the sparse ticket, sparsity, file sizes.

    Two artefacts must not be confused: the shrunk channels make the model
    faster on every runtime; the unstructured zeros make it smaller only
    when stored sparsely and faster only on a runtime with sparse kernels.

    Everything is written into a temporary folder beside ``out_dir`` that
    replaces it only once complete; on any error nothing is left behind.
    The checkpoint is only read.

    Args:
        config (str | Config | dict): The training config.
        checkpoint (str): A checkpoint of that run.
        out_dir (str): Folder to write (the files above).
        shape (Sequence[int], optional): (H, W) of the MAC counts, the
            output check and the ONNX graph. Defaults to the profiling size
            the search hook stored in the checkpoint.
        onnx (bool): Also write ``ticket.onnx`` and check it with
            onnxruntime. Defaults to False.
        force (bool): Replace a non-empty ``out_dir``. Defaults to False.
        weights (str): ``'saved'`` (by default: the EMA weights of an
            ``EMAHook`` run, the ones it validated with) or ``'live'`` (the
            raw training weights); see
            :func:`~mmsupertickets.apis.export.subnet.select_weights`.
            Defaults to ``'saved'``.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        dict: The content of ``summary.json``.

    Raises:
        FileExistsError: ``out_dir`` is not empty and ``force`` is False.
        ValueError: the checkpoint does not fit the config (the message
            names the difference) or carries no SuperTickets metadata.
        CheckpointLoadError: the checkpoint file cannot be read.

    Example:
        >>> summary = export_ticket(  # doctest: +SKIP
        ...     'configs/supertickets/xxx_cityscapes.py',
        ...     'work_dirs/xxx/iter_39990.pth', 'tickets/cityscapes',
        ...     shape=(512, 1024), onnx=True)
        >>> (summary['subnet']['macs']  # doctest: +SKIP
        ...  < summary['supernet']['macs'])
        True
        >>> # later, anywhere: tools/test.py tickets/cityscapes/config.py \\
        >>> #     tickets/cityscapes/ticket.pth
    """
    out_dir = osp.abspath(out_dir)
    ckpt_path = osp.abspath(checkpoint)
    config_path = config if isinstance(config, str) else None
    check_out_dir(out_dir, force, [ckpt_path, config_path])

    # 1. Read and check everything in memory before writing anything.
    cfg = load_config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    ckpt, arch, state, origin, search, pruning = _read_checkpoint(
        ckpt_path, weights)
    shape = _input_shape(shape, search)
    model = build_model(cfg)
    check_arch_fits(model, arch, f'{TICKET_KEY}.arch of {ckpt_path!r}')
    owners = arch_owners(model, arch)
    supernet = _supernet_cost(model, search, shape)
    mask_state = _shrink_to_ticket(model, arch, state, ckpt, ckpt_path)
    ticket_state = plain_state_dict(model)
    cost = _ticket_cost(model, mask_state, shape)
    exported_cfg = ticket_config(cfg, owners, '{{ fileDirname }}/ticket.pth')
    searched = search_summary(search, model, shape, cost['macs'])
    summary = ticket_summary(shape, origin, supernet, cost, mask_state, arch,
                             searched, pruning.get('target_sparsity'))

    # 2. Write into a temporary folder, check it, then move it in place.
    created = make_parents(out_dir)
    tmp_dir = None
    try:
        tmp_dir = make_temp_folder(out_dir)
        _write_ticket_files(
            tmp_dir, arch, ticket_state, mask_state, ckpt,
            config_text(exported_cfg, config_path or '(in memory)',
                        ckpt_path, origin))
        # The exported config alone must rebuild the same model.
        rebuilt, diff = rebuild_from_config(
            model, osp.join(tmp_dir, 'config.py'), shape)
        summary['rebuilt_from_config_max_abs_diff'] = diff
        if onnx:
            summary['onnx'] = export_checked_onnx(
                rebuilt, shape, osp.join(tmp_dir, 'ticket.onnx'))
        summary['files'] = file_sizes(tmp_dir, ckpt_path)
        _write_summary(tmp_dir, summary)
        move_into_place(tmp_dir, out_dir)
    except BaseException:
        discard(tmp_dir, created)
        raise
    return summary
