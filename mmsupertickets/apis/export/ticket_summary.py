"""The ticket's ``summary.json``: what it holds and how it reads as text."""
from collections import OrderedDict
from typing import Dict, List, Sequence

import torch

from mmsupertickets.flops import complexity, format_count

from .progress import logged_step
from .subnet import WEIGHT_NOTES

__all__ = [
    'COUNTING', 'SPEEDUP_NOTE', 'search_summary', 'ticket_summary',
    'format_search', 'format_summary'
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
            with logged_step('counting the subnet at the search\'s '
                             f'{search_shape[0]}x{search_shape[1]}'):
                macs = complexity(model, search_shape)['macs']
        out.update(budget_macs=budget, reached_macs=macs,
                   gap=macs / budget - 1, input_shape=search_shape)
    return out


def ticket_summary(shape: Sequence[int], origin: str, supernet: dict,
                   cost: dict, mask_state: Dict[str, torch.Tensor],
                   arch: Dict[str, int], searched: dict,
                   target_sparsity) -> 'OrderedDict[str, object]':
    """The content of ``summary.json`` as far as it is known before the
    files are written.

    ``rebuilt_from_config_max_abs_diff`` and ``onnx`` hold None until the
    self-checks fill them in (``onnx`` stays None without an ONNX export);
    ``files`` (the sizes) comes last, once every file is written.

    Args:
        shape (Sequence[int]): (H, W) of the counts.
        origin (str): Which weights were exported, a key of
            :data:`~.subnet.WEIGHT_NOTES`.
        supernet (dict): ``params``, ``macs``, ``input_shape`` and
            ``source`` of the supernet's counts.
        cost (dict): :func:`~mmsupertickets.flops.complexity` of the ticket
            with the densities of its masks.
        mask_state (dict): The masks, ``{weight name: bool tensor}``.
        arch (dict): The architecture ``{unit name: channels}``.
        searched (dict): :func:`search_summary` of the search.
        target_sparsity (float, optional): The pruning's target.

    Returns:
        OrderedDict: The sections in the order ``summary.json`` lists them.

    Example:
        >>> summary = ticket_summary(  # doctest: +SKIP
        ...     [512, 1024], 'ema', supernet, cost, masks, arch, searched,
        ...     0.5)
        >>> summary['ticket']['sparsity']  # doctest: +SKIP
        0.5
    """
    kept = sum(int(m.sum()) for m in mask_state.values())
    total = sum(m.numel() for m in mask_state.values())
    return OrderedDict(
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
            target_sparsity=target_sparsity),
        units=dict(
            total=len(arch),
            kept=sum(1 for c in arch.values() if c > 0),
            channels=sum(arch.values()),
            channel_divisor=searched['channel_divisor']),
        search=searched,
        rebuilt_from_config_max_abs_diff=None,
        onnx=None,
        speedup=SPEEDUP_NOTE)


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
