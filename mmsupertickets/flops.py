"""Parameter and MAC counts with one stated convention.

MACs are counted by mmengine's :class:`~mmengine.analysis.FlopAnalyzer`
(one multiply-accumulate per count) for convolutions and linear/matmul ops
only; BN, activations, additions, pooling and resizes count 0. Parameters
are the weights and biases of every Conv2d and Linear. Sparse MACs of a
masked model are exact per layer: each layer's MACs times its density.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer

# Ops that mmengine counts by default but that the convention counts as 0.
_ZERO_COST_OPS = ('aten::batch_norm', 'aten::group_norm', 'aten::layer_norm',
                  'aten::instance_norm', 'aten::upsample_nearest2d',
                  'aten::upsample_bilinear2d', 'aten::adaptive_avg_pool2d',
                  'aten::grid_sampler')


def _count_zero(inputs, outputs) -> int:
    return 0


class _Forward(nn.Module):
    """Runs the part of a model that maps images to its output tensors."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        model = self.model
        if hasattr(model, 'extract_feat'):
            # mmseg/mmpose/mmpretrain models: backbone (+neck) then head.
            feats = model.extract_feat(x)
            head = getattr(model, 'decode_head', None) or \
                getattr(model, 'head', None)
            if head is not None and hasattr(head, 'forward'):
                out = head(feats)
                return out if isinstance(out, torch.Tensor) else tuple(out)
            return tuple(feats)
        out = model(x)
        return out if isinstance(out, torch.Tensor) else tuple(out)


def analyze_macs(model: nn.Module,
                 input_shape: Sequence[int]) -> FlopAnalyzer:
    """A FlopAnalyzer over ``model`` at ``input_shape`` = (H, W).

    The model is run in eval mode on one zero image of that size; its
    training mode is restored afterwards.
    """
    h, w = input_shape
    device = next(model.parameters()).device
    wrapped = _Forward(model)
    was_training = model.training
    model.eval()
    try:
        analyzer = FlopAnalyzer(wrapped,
                                (torch.zeros(1, 3, h, w, device=device), ))
        # A None handle would only be ignored for ops without a default
        # handle; these have one, so they get a handle that counts 0.
        analyzer.set_op_handle(**{op: _count_zero for op in _ZERO_COST_OPS})
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        analyzer.by_module()  # runs the trace while in eval mode
    finally:
        model.train(was_training)
    return analyzer


_LAST_COUNT: dict = {}


def macs_by_module(model: nn.Module,
                   input_shape: Sequence[int]) -> Dict[str, int]:
    """MACs per module name (names relative to ``model``).

    MACs depend only on the layer shapes and the input size, so the last
    count is reused while both stay the same (prune events do not change
    shapes; a trace of the paper-size model takes seconds).
    """
    key = (id(model), tuple(input_shape),
           tuple((n, tuple(p.shape)) for n, p in model.named_parameters()))
    if _LAST_COUNT.get('key') != key:
        counts = analyze_macs(model, input_shape).by_module()
        # FlopAnalyzer names are relative to the wrapper ('model.' prefix).
        _LAST_COUNT.update(key=key, value={
            (k[len('model.'):] if k.startswith('model.') else
             ('' if k in ('model', '') else k)): v
            for k, v in counts.items()})
    return dict(_LAST_COUNT['value'])


def count_params(model: nn.Module) -> int:
    """Weights and biases of every Conv2d and Linear."""
    return sum(p.numel() for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))
               for p in m.parameters(recurse=False))


def layer_macs(model: nn.Module,
               input_shape: Sequence[int]) -> Dict[str, int]:
    """MACs of each Conv2d/Linear layer by its module name."""
    counts = macs_by_module(model, input_shape)
    return {name: counts.get(name, 0) for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear))}


def complexity(model: nn.Module, input_shape: Sequence[int],
               densities: Optional[Dict[str, float]] = None) -> dict:
    """Params and MACs of a model, dense and (given densities) sparse.

    Args:
        model: The model (any module; OpenMMLab models are run through
            ``extract_feat`` and their head).
        input_shape: (H, W) of the profiling input.
        densities: Kept fraction per weight name (``<layer>.weight``);
            layers not listed are dense.

    Returns:
        dict: ``params``, ``macs``, and with densities ``sparse_params``,
        ``sparse_macs`` (exact per layer) and ``macs_x_global_density``
        (dense MACs × the global density, the figure the paper reports).
    """
    per_layer = layer_macs(model, input_shape)
    params = count_params(model)
    result = dict(params=params, macs=sum(per_layer.values()),
                  input_shape=list(input_shape))
    if densities is not None:
        modules = dict(model.named_modules())
        sparse_macs = 0
        sparse_params = 0
        for name, macs in per_layer.items():
            d = densities.get(f'{name}.weight', 1.0)
            sparse_macs += macs * d
            layer = modules[name]
            sparse_params += layer.weight.numel() * d
            if layer.bias is not None:
                sparse_params += layer.bias.numel()
        # The paper's figure: global density over the masked weights.
        sizes = {k: modules[k.rsplit('.', 1)[0]].weight.numel()
                 for k in densities if k.rsplit('.', 1)[0] in modules}
        total = sum(sizes.values()) or 1
        kept = sum(n * densities[k] for k, n in sizes.items()) if sizes \
            else total
        result.update(
            sparse_params=int(round(sparse_params)),
            sparse_macs=int(round(sparse_macs)),
            macs_x_global_density=int(round(result['macs'] * kept / total)))
    return result


def format_count(n: float) -> str:
    for unit, scale in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if abs(n) >= scale:
            return f'{n / scale:.2f}{unit}'
    return str(int(n))
