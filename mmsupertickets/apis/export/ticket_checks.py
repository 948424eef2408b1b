"""The export's checks: what it refuses to read, and the self-checks of
what it wrote (the config alone rebuilds the ticket, ONNX runs finite)."""
import math
from typing import Sequence, Tuple

import torch
from mmengine.config import Config
from torch import nn

from mmsupertickets.engine.ticket_meta import TICKET_KEY, ticket_meta
from mmsupertickets.flops import ModelForward
from mmsupertickets.structures.value_checks import first_non_finite
from mmsupertickets.utils.checkpoint_io import load_checkpoint_file

from .onnx_check import as_tuple, export_onnx
from .progress import logged_step
from .subnet import build_model

__all__ = [
    'require_ticket_meta', 'refuse_non_finite', 'max_abs_diff',
    'rebuild_from_config', 'export_checked_onnx'
]


def require_ticket_meta(checkpoint: dict, ckpt_path: str) -> dict:
    """The ticket state of a checkpoint that carries a searched arch.

    Args:
        checkpoint (dict): A loaded checkpoint.
        ckpt_path (str): Its path, for the error.

    Returns:
        dict: The SuperTickets section of the checkpoint's meta.

    Raises:
        ValueError: the checkpoint was not saved by a SuperTickets run.

    Example:
        >>> require_ticket_meta({'meta': {}}, 'x.pth')
        Traceback (most recent call last):
        ...
        ValueError: checkpoint 'x.pth' has no supertickets.arch: ...
    """
    meta = ticket_meta(checkpoint)
    if not isinstance(meta, dict) or meta.get('arch') is None:
        raise ValueError(
            f'checkpoint {ckpt_path!r} has no {TICKET_KEY}.arch: it was '
            'not saved by a run with SuperNetSearchHook or '
            'ProgressivePruningHook')
    return meta


def refuse_non_finite(state: dict, what: str) -> None:
    """Refuse weights holding NaN or inf: a diverged run is not exported.

    Args:
        state (dict): A state_dict.
        what (str): Where it comes from, for the error.

    Raises:
        ValueError: a floating-point tensor of ``state`` is not finite.

    Example:
        >>> refuse_non_finite({'w': torch.ones(2)}, 'checkpoint')
        >>> refuse_non_finite({'w': torch.tensor([float('inf')])}, 'ckpt')
        Traceback (most recent call last):
        ...
        ValueError: ckpt: tensor 'w' holds NaN or inf values; ...
    """
    bad = first_non_finite(state)
    if bad is not None:
        raise ValueError(f'{what}: tensor {bad!r} holds NaN or inf values; '
                         'a diverged checkpoint is not exported')


def _relative_tolerance(ref: Tuple[torch.Tensor, ...]) -> float:
    scale = max(float(r.abs().max()) for r in ref) if ref else 1.0
    return 1e-4 * max(1.0, scale)


def max_abs_diff(ref: Tuple[torch.Tensor, ...],
                 got: Tuple[torch.Tensor, ...]) -> float:
    """Largest |ref - got| over all outputs; NaN if any entry is NaN
    (Python's ``max`` would drop a NaN that is not first).

    Example:
        >>> max_abs_diff((torch.zeros(2), ), (torch.tensor([.5, -2.]), ))
        2.0
        >>> max_abs_diff((torch.zeros(2), torch.zeros(1)),
        ...              (torch.zeros(2), torch.tensor([float('nan')])))
        nan
    """
    if len(ref) != len(got):
        return float('nan')
    return float(torch.stack([(a - b).abs().max()
                              for a, b in zip(ref, got)]).max())


def rebuild_from_config(model: nn.Module, config_file: str,
                        shape: Sequence[int]) -> Tuple[nn.Module, float]:
    """Build the ticket from the exported ``config.py`` alone and compare
    its outputs with ``model``'s on one seeded random image.

    Args:
        model (nn.Module): The ticket, in eval mode.
        config_file (str): The exported ``config.py``; its ``load_from``
            names the exported ``ticket.pth``.
        shape (Sequence[int]): (H, W) of the image.

    Returns:
        tuple[nn.Module, float]: The rebuilt model, in eval mode, and the
        largest absolute difference of the outputs.

    Raises:
        RuntimeError: the outputs differ by more than 1e-4 times the
            largest output (at least 1), or by NaN.

    Example:
        >>> rebuilt, diff = rebuild_from_config(  # doctest: +SKIP
        ...     ticket, 'tickets/cityscapes/config.py', (512, 1024))
        >>> diff  # doctest: +SKIP
        2.9e-06
    """
    with logged_step('rebuilding the ticket from the exported config and '
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
    diff = max_abs_diff(ref, got)
    # Written so that NaN fails: NaN <= tol is False.
    if not diff <= _relative_tolerance(ref):
        raise RuntimeError(
            f'the model built from the exported config differs from the '
            f'ticket by {diff:.3g} (max abs): export aborted')
    return rebuilt, diff


def export_checked_onnx(model: nn.Module, shape: Sequence[int],
                        path: str) -> dict:
    """Write ``ticket.onnx`` with :func:`~.onnx_check.export_onnx`; refuse a
    graph whose onnxruntime outputs differ from PyTorch's by NaN or inf.

    Args:
        model (nn.Module): The ticket rebuilt from the exported config.
        shape (Sequence[int]): (H, W) of the graph's input.
        path (str): The ``.onnx`` file to write.

    Returns:
        dict: What :func:`~.onnx_check.export_onnx` returned.

    Raises:
        RuntimeError: the outputs differ by a non-finite amount.

    Example:
        >>> result = export_checked_onnx(  # doctest: +SKIP
        ...     rebuilt, (512, 1024), 'tickets/cityscapes/ticket.onnx')
        >>> result['opset']  # doctest: +SKIP
        17
    """
    with logged_step('exporting ticket.onnx and checking it in '
                     'onnxruntime'):
        result = export_onnx(model, shape, path)
    diff = result.get('max_abs_diff')
    if diff is not None and not math.isfinite(diff):
        raise RuntimeError(
            f'onnxruntime and PyTorch outputs differ by {diff} '
            '(max abs) on the exported ticket.onnx: export aborted')
    return result
