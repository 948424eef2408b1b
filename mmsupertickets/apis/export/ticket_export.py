"""The export: a training checkpoint into a ticket folder, and its summary."""
import json
import math
import os.path as osp
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from mmsupertickets.engine.ticket_meta import (
    META_KEY,
    read_arch,
    read_masks,
    read_section,
    ticket_meta,
)
from mmsupertickets.flops import ModelForward, complexity, format_count
from mmsupertickets.structures.arch import apply_arch, check_arch_fits
from mmsupertickets.structures.masks import WeightMasks
from mmsupertickets.structures.sparse_format import save_sparse_state_dict
from mmsupertickets.structures.state_checks import unmark_masked_state
from mmsupertickets.structures.value_checks import (
    check_input_shape,
    first_non_finite,
)
from mmsupertickets.utils.atomic_write import save_checkpoint_atomically
from mmsupertickets.utils.checkpoint_io import load_checkpoint_file

from .onnx_check import as_tuple, export_onnx
from .subnet import (
    WEIGHT_NOTES,
    arch_owners,
    build_model,
    plain_state_dict,
    select_weights,
    state_dict_difference,
)
from .ticket_config import config_text, load_config, ticket_config
from .ticket_folder import (
    check_out_dir,
    discard,
    file_sizes,
    make_parents,
    make_temp_folder,
    move_into_place,
)

__all__ = [
    'COUNTING', 'SPEEDUP_NOTE', 'export_ticket', 'format_search',
    'format_summary',
    'ticket_checkpoint'
]

COUNTING = ('params: weights and biases of every Conv2d and Linear; MACs: '
            'Conv2d and Linear only (BN, activations, additions, pooling and '
            'resizes count 0), one image, through backbone, neck and main '
            'head')
SPEEDUP_NOTE = (
    'Real speedup: the shrunk channels (config.py + ticket.pth, ticket.onnx) '
    'cut MACs on every runtime; the unstructured zeros only shrink storage '
    'in ticket_sparse.pth and only run faster on a runtime with sparse '
    'kernels: dense runtimes (PyTorch, onnxruntime) multiply the zeros.')


def _ticket_section(checkpoint: dict, ckpt_path: str) -> dict:
    """``meta[META_KEY]`` of a checkpoint that carries a searched arch."""
    meta = ticket_meta(checkpoint)
    if not isinstance(meta, dict) or meta.get('arch') is None:
        raise ValueError(
            f'checkpoint {ckpt_path!r} has no meta.{META_KEY}.arch: it was '
            'not saved by a run with SuperNetSearchHook or '
            'ProgressivePruningHook')
    return meta


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


def _relative_tolerance(ref: Tuple[torch.Tensor, ...]) -> float:
    scale = max(float(r.abs().max()) for r in ref) if ref else 1.0
    return 1e-4 * max(1.0, scale)


def _max_abs_diff(ref: Tuple[torch.Tensor, ...],
                  got: Tuple[torch.Tensor, ...]) -> float:
    """Largest |ref - got| over all outputs; NaN if any entry is NaN
    (Python's ``max`` would drop a NaN that is not first)."""
    if len(ref) != len(got):
        return float('nan')
    return float(torch.stack([(a - b).abs().max()
                              for a, b in zip(ref, got)]).max())


def _refuse_non_finite(state: dict, what: str) -> None:
    bad = first_non_finite(state)
    if bad is not None:
        raise ValueError(f'{what}: tensor {bad!r} holds NaN or inf values; '
                         'a diverged checkpoint is not exported')


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
    ``checkpoint['meta'][META_KEY]``. The export turns it into a folder
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
    ckpt = load_checkpoint_file(ckpt_path)
    _ticket_section(ckpt, ckpt_path)  # refuses a file without a ticket
    arch_source = f'meta.{META_KEY}.arch of {ckpt_path!r}'
    arch = dict(sorted(read_arch(ckpt, repr(ckpt_path)).items()))
    state, origin = select_weights(ckpt, weights)
    _refuse_non_finite(state, f'checkpoint {ckpt_path!r} ({origin} weights)')
    search = read_section(ckpt, 'search', repr(ckpt_path)) or {}
    pruning = read_section(ckpt, 'pruning', repr(ckpt_path)) or {}
    if shape is None:
        if not search.get('input_shape'):
            raise ValueError('no --shape given and the checkpoint stores no '
                             'profiling input shape: pass shape=(H, W)')
        shape = search['input_shape']  # checked by read_section
    shape = check_input_shape(shape, 'shape')

    model = build_model(cfg)
    check_arch_fits(model, arch, arch_source)
    owners = arch_owners(model, arch)
    cost = search.get('supernet_cost')
    if cost and list(search.get('input_shape') or []) == shape:
        supernet = dict(params=cost['params'], macs=cost['macs'],
                        input_shape=shape,
                        source=f'checkpoint meta.{META_KEY}.search.'
                        'supernet_cost')
    else:
        # Stored at another size or not at all: the training config builds
        # the supernet, count it at this shape.
        with _progress(f'counting the supernet at {shape[0]}x{shape[1]}'):
            measured = complexity(model, shape)
        supernet = dict(params=measured['params'], macs=measured['macs'],
                        input_shape=shape,
                        source='measured on the model the training config '
                        'builds')
    apply_arch(model, arch)  # checked above
    problem = state_dict_difference(model, state)
    if problem:
        raise ValueError(f'the checkpoint does not fit the config at its '
                         f'searched architecture: {problem}')
    unmark_masked_state(state)  # the masks are applied right below
    model.load_state_dict(state, strict=True)
    masks = WeightMasks()
    masks.load_state_dict(model, read_masks(ckpt, repr(ckpt_path)))
    masks.bake(model)
    model.eval()
    mask_state = masks.state_dict()
    masks.clear()  # the weights now carry the zeros themselves
    ticket_state = plain_state_dict(model)
    densities = {n: float(m.sum()) / max(m.numel(), 1)
                 for n, m in mask_state.items()}
    with _progress(f'counting the ticket at {shape[0]}x{shape[1]}'):
        cost = complexity(model, shape, densities)
    kept = sum(int(m.sum()) for m in mask_state.values())
    total = sum(m.numel() for m in mask_state.values())
    exported_cfg = ticket_config(cfg, owners, '{{ fileDirname }}/ticket.pth')
    searched = search_summary(search, model, shape, cost['macs'])

    # 2. Write into a temporary folder, check it, then move it in place.
    created = make_parents(out_dir)
    tmp_dir = None
    try:
        tmp_dir = make_temp_folder(out_dir)
        with open(osp.join(tmp_dir, 'arch.json'), 'w') as f:
            json.dump(arch, f, indent=1)
            f.write('\n')
        save_checkpoint_atomically(
            ticket_checkpoint(ticket_state, ckpt),
            osp.join(tmp_dir, 'ticket.pth'))
        save_sparse_state_dict(ticket_state, mask_state,
                               osp.join(tmp_dir, 'ticket_sparse.pth'))
        config_file = osp.join(tmp_dir, 'config.py')
        with open(config_file, 'w') as f:
            f.write(config_text(exported_cfg, config_path or '(in memory)',
                                ckpt_path, origin))

        # The exported config alone must rebuild the same model.
        with _progress('rebuilding the ticket from the exported config and '
                       'comparing outputs'):
            rebuilt_cfg = Config.fromfile(config_file)
            rebuilt = build_model(rebuilt_cfg)
            rebuilt.load_state_dict(
                load_checkpoint_file(rebuilt_cfg.load_from)['state_dict'],
                strict=True)
            rebuilt.eval()
            x = torch.randn(1, 3, *shape,
                            generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                ref = as_tuple(ModelForward(model)(x))
                got = as_tuple(ModelForward(rebuilt)(x))
        rebuild_diff = _max_abs_diff(ref, got)
        # Written so that NaN fails: NaN <= tol is False.
        if not rebuild_diff <= _relative_tolerance(ref):
            raise RuntimeError(
                f'the model built from the exported config differs from the '
                f'ticket by {rebuild_diff:.3g} (max abs): export aborted')

        onnx_result = None
        if onnx:
            with _progress('exporting ticket.onnx and checking it in '
                           'onnxruntime'):
                onnx_result = export_onnx(rebuilt, shape,
                                          osp.join(tmp_dir, 'ticket.onnx'))
            onnx_diff = onnx_result.get('max_abs_diff')
            if onnx_diff is not None and not math.isfinite(onnx_diff):
                raise RuntimeError(
                    f'onnxruntime and PyTorch outputs differ by {onnx_diff} '
                    '(max abs) on the exported ticket.onnx: export aborted')

        summary = OrderedDict(
            input_shape=shape,
            counting=COUNTING,
            weights=dict(origin=origin, note=WEIGHT_NOTES[origin]),
            supernet=supernet,
            subnet=dict(params=cost['params'], macs=cost['macs'],
                        note='physically shrunk channels, dense weights'),
            ticket=dict(
                params=cost['sparse_params'],
                macs=cost['sparse_macs'],
                macs_note='exact: sum over layers of MACs x that layer\'s '
                'density',
                macs_x_global_density=cost['macs_x_global_density'],
                macs_x_global_density_note='the paper\'s figure: dense '
                'subnet MACs x global density of the masked weights',
                masked_weights=total,
                kept_weights=kept,
                sparsity=1 - kept / total if total else 0.0,
                target_sparsity=pruning.get('target_sparsity')),
            units=dict(
                total=len(arch),
                kept=sum(1 for c in arch.values() if c > 0),
                channels=sum(arch.values()),
                channel_divisor=search.get('channel_divisor', 1)),
            search=searched,
            rebuilt_from_config_max_abs_diff=rebuild_diff,
            onnx=onnx_result,
            speedup=SPEEDUP_NOTE)
        summary['files'] = file_sizes(tmp_dir, ckpt_path)
        with open(osp.join(tmp_dir, 'summary.json'), 'w') as f:
            # No NaN reaches the summary: the inputs are checked above,
            # and a number gone non-finite since fails here.
            json.dump(summary, f, indent=2, allow_nan=False)
            f.write('\n')
        move_into_place(tmp_dir, out_dir)
    except BaseException:
        discard(tmp_dir, created)
        raise
    return summary


@contextmanager
def _progress(step: str):
    """Say that a step that takes tens of seconds at paper-scale sizes (a
    profiler pass, a full forward, the ONNX export) starts, and how long it
    took when that was over 5 s."""
    print_log(f'export: {step} ...', logger='current')
    start = time.perf_counter()
    yield
    took = time.perf_counter() - start
    if took > 5:
        print_log(f'export: {step}: {took:.0f} s', logger='current')


def search_summary(search: dict, model, shape, macs: float) -> dict:
    """The search's settings that shaped the subnet: the channel divisor
    and, with a MACs budget, the budget and the MACs reached, both at the
    search's profiling input."""
    out = OrderedDict(channel_divisor=search.get('channel_divisor', 1),
                      target_macs=search.get('target_macs'))
    budget = search.get('budget_macs')
    if budget is not None:
        search_shape = [int(s) for s in search['input_shape']]
        if search_shape != list(shape):
            with _progress('counting the subnet at the search\'s '
                           f'{search_shape[0]}x{search_shape[1]}'):
                macs = complexity(model, search_shape)['macs']
        out.update(budget_macs=budget, reached_macs=macs,
                   gap=macs / budget - 1, input_shape=search_shape)
    return out


def format_search(searched: dict) -> List[str]:
    """Lines on the MACs budget and the channel divisor of
    :func:`search_summary`'s section (none when neither was used)."""
    lines = []
    if searched.get('budget_macs') is not None:
        lines.append(
            f'MACs budget {format_count(searched["budget_macs"])} '
            f'(target_macs={searched["target_macs"]}), reached '
            f'{format_count(searched["reached_macs"])} '
            f'({searched["gap"]:+.1%}) at '
            + 'x'.join(map(str, searched['input_shape'])))
    if searched.get('channel_divisor', 1) > 1:
        lines.append(f'Channel widths: multiples of '
                     f'{searched["channel_divisor"]}')
    return lines


def format_summary(summary: dict) -> str:
    """A short table of :func:`export_ticket`'s summary.

    Args:
        summary (dict): What :func:`export_ticket` returned (or
            ``summary.json`` read back).

    Returns:
        str: Counts of supernet, subnet and ticket, sparsity, file sizes,
        the ONNX check and the speedup note, one per line.

    Example:
        >>> print(format_summary(summary))  # doctest: +SKIP
        Input 1x3x512x1024; params: weights and biases of every Conv2d ...
    """
    h, w = summary['input_shape']
    rows = [
        ('dense supernet', summary['supernet']['params'],
         summary['supernet']['macs'], ''),
        ('shrunk subnet', summary['subnet']['params'],
         summary['subnet']['macs'], 'config.py + ticket.pth'),
        ('sparse ticket', summary['ticket']['params'],
         summary['ticket']['macs'], 'exact per-layer sparse MACs'),
        ('  (paper: MACs x density)', None,
         summary['ticket']['macs_x_global_density'], ''),
    ]
    lines = [f'Input 1x3x{h}x{w}; {summary["counting"]}.',
             f'Weights: {summary["weights"]["note"]}.',
             f'{"":<26}{"params":>10}{"MACs":>10}']
    for name, params, macs, note in rows:
        p = format_count(params) if params is not None else ''
        lines.append(f'{name:<26}{p:>10}{format_count(macs):>10}  {note}')
    t = summary['ticket']
    lines.append(f'Sparsity {t["sparsity"]:.4f} of {t["masked_weights"]:,} '
                 'masked weights'
                 + (f' (target {t["target_sparsity"]})'
                    if t['target_sparsity'] is not None else ''))
    lines += format_search(summary.get('search') or {})
    files = summary['files']
    lines.append('Files: ' + ', '.join(
        f'{k} {v / 2**20:.2f} MiB' for k, v in files.items()))
    if summary.get('onnx'):
        onnx = summary['onnx']
        diff = onnx['max_abs_diff']
        lines.append(
            'ONNX (' + onnx['exporter'].split(':')[0] +
            f', opset {onnx["opset"]}): onnxruntime vs PyTorch ' +
            (f'max abs diff {diff:.3g} (outputs up to '
             f'{onnx["max_abs_output"]:.3g}, relative '
             f'{onnx["max_rel_diff"]:.2g})' if diff is not None else
             'not checked (onnxruntime missing)'))
    lines.append(summary['speedup'])
    return '\n'.join(lines)
