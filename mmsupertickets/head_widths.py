"""Refuse a neck or head built for other input widths than its backbone
gives, naming the config key to set and its value.

A wrong ``in_channels`` would otherwise surface at the first iteration, as
a shape error deep inside the MACs profiler or the head.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModel

from mmsupertickets.flops import flatten_tensors

__all__ = ['check_input_widths']


class _WidthMismatch(Exception):
    pass


def _in_width(layer: nn.Module, x: torch.Tensor) -> Optional[tuple]:
    """(expected, given) input channels of a layer, or None if not known
    from the layer alone."""
    if isinstance(layer, nn.modules.conv._ConvNd):
        w = layer.weight
        expected = w.shape[0] if layer.transposed else \
            w.shape[1] * layer.groups
        return expected, x.shape[1]
    if isinstance(layer, nn.Linear) and x.dim() == 2:
        # Only on pooled (N, C) inputs: a linear layer over flattened
        # pixels (RTMPose's SimCC head) depends on the input size.
        return layer.in_features, x.shape[1]
    if isinstance(layer, nn.modules.batchnorm._BatchNorm):
        return layer.num_features, x.shape[1]
    return None


def _width_value(consumer: nn.Module, widths: List[int], given: int):
    """The ``in_channels`` a consumer of maps of ``widths`` must have."""
    index = getattr(consumer, 'in_index', None)
    if getattr(consumer, 'input_transform', None) in (
            'resize_concat', 'multiple_select') and \
            all(-len(widths) <= i < len(widths) for i in index):
        return [widths[i] for i in index]
    if isinstance(getattr(consumer, 'in_channels', None), (list, tuple)):
        return list(widths)
    if isinstance(index, int) and -len(widths) <= index < len(widths):
        return widths[index]
    return given


def _backbone_fix(backbone: nn.Module, consumer: nn.Module,
                  expected: int) -> Optional[str]:
    """The SuperTicketHRNet keys that make it feed ``consumer`` unchanged
    (None for other backbones or when not derivable)."""
    if type(backbone).__name__ != 'SuperTicketHRNet':
        return None
    from mmsupertickets.models.backbones.supertickets_hrnet import HRNET_WIDTHS
    configured = getattr(consumer, 'in_channels', None)
    index = getattr(consumer, 'in_index', None)
    transform = getattr(consumer, 'input_transform', None)
    if transform == 'resize_concat':
        # mmseg keeps only the sum: a preset whose widths add up to it.
        for name, widths in HRNET_WIDTHS.items():
            if sum(widths[i] for i in index) == configured:
                return f"model.backbone.out_channels='{name}'"
        return None
    if transform is None and isinstance(configured, (list, tuple)):
        return f'model.backbone.out_channels={tuple(configured)!r}'
    if transform is None and isinstance(configured, int):
        if isinstance(index, int):
            widths = list(backbone.out_channels)
            widths[index] = configured
            return f'model.backbone.out_channels={tuple(widths)!r}'
        # A head that takes one map (mmpose's takes the last one).
        return ('model.backbone.out_indices=(0, ) and '
                f'model.backbone.out_channels=({configured}, )')
    return None


def _consumers(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """``(config key, module)`` of the neck and heads a backbone feeds."""
    consumers = []
    for attr in ('neck', 'decode_head', 'head'):
        part = getattr(model, attr, None)
        if isinstance(part, nn.ModuleList):
            consumers += [(f'model.{attr}[{i}]', m)
                          for i, m in enumerate(part)]
        elif isinstance(part, nn.Module):
            consumers.append((f'model.{attr}', part))
    return consumers


def _mismatch_message(error: _WidthMismatch, seen: Dict[str, List[int]],
                      first: str, backbone: nn.Module) -> str:
    """The config key and value a width mismatch asks for; ``seen`` holds
    the widths that reached the backbone's output and each consumer,
    ``first`` is the key of the consumer the backbone feeds."""
    key, consumer, layer, expected, given = error.args
    # Heads called as head.forward() skip the pre-hook: then only the
    # channels reaching the layer are known.
    widths = seen.get(key) or (
        seen.get('backbone') if key == first else None) or [given]
    value = _width_value(consumer, widths, given)
    feeding = (f'the maps feeding it have {seen[key]} channels; '
               if key in seen else '')
    message = (
        f'{key}.in_channels must be {value!r}: its layer '
        f'{layer or "(first)"} expects {expected} input channels but '
        f'gets {given} ({feeding}the backbone '
        f'{type(backbone).__name__} returns {seen.get("backbone")}).')
    fix = _backbone_fix(backbone, consumer, expected)
    if fix and key in (first, 'model.decode_head[1]'):
        message += f' Or keep the head and set {fix}.'
    return message


def check_input_widths(model: nn.Module,
                       shape: Sequence[int] = (64, 64)) -> None:
    """Refuse a model whose neck or head expects other input widths than
    what feeds it (e.g. a stock HRNet-W32 head on a backbone giving W18
    widths), naming the config key to set and its value.

    One forward of a zero image of ``shape`` runs in eval mode without
    gradients; every conv/linear/BN layer of the neck and heads checks its
    input channels first. A forward that fails for any other reason is not
    this check's business (training reports it). Models without a
    ``backbone`` are not checked.

    Raises:
        ValueError: naming e.g. ``model.decode_head.in_channels`` and the
            value it must take.

    Example:
        >>> check_input_widths(model)  # doctest: +SKIP
        ValueError: model.head.in_channels must be 18: ...
    """
    backbone = getattr(model, 'backbone', None)
    if not isinstance(model, BaseModel) or backbone is None:
        return
    consumers = _consumers(model)
    if not consumers:
        return
    seen: Dict[str, List[int]] = {}
    handles = [backbone.register_forward_hook(
        lambda m, a, out: seen.__setitem__(
            'backbone', [t.shape[1] for t in flatten_tensors(out)
                         if t.dim() > 1]))]

    def watch(key, consumer):
        def record(m, args):
            seen[key] = [t.shape[1] for t in flatten_tensors(args)
                         if t.dim() > 1]

        def check(layer_name):
            def hook(layer, args):
                tensors = flatten_tensors(args)
                widths = _in_width(layer, tensors[0]) if tensors else None
                if widths and widths[0] != widths[1]:
                    raise _WidthMismatch(key, consumer, layer_name, *widths)
            return hook

        handles.append(consumer.register_forward_pre_hook(record))
        for name, layer in consumer.named_modules():
            handles.append(layer.register_forward_pre_hook(check(name)))

    for key, consumer in consumers:
        watch(key, consumer)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, *shape, device=device), None,
                  mode='tensor')
    except _WidthMismatch as e:
        raise ValueError(_mismatch_message(
            e, seen, consumers[0][0], backbone)) from None
    except Exception:  # noqa: BLE001 - not a width problem: not ours
        pass
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
