"""Parameter and MAC counts with one stated convention (FLOPs).

MACs are counted by mmengine's :class:`~mmengine.analysis.FlopAnalyzer`
(one multiply-accumulate per count) for convolutions and linear/matmul ops
only; BN, activations, additions, pooling and resizes count 0. Parameters
are the weights and biases of every Conv2d and Linear. Sparse MACs of a
masked model are exact per layer: each layer's MACs times its density.
"""
import weakref
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from mmsupertickets.structures.searchable import find_searchable_units

__all__ = [
    'ResourceEstimator', 'complexity', 'count_params', 'analyze_macs',
    'ModelForward', 'flatten_tensors', 'format_count'
]

# Ops that mmengine counts by default but that the convention counts as 0.
_ZERO_COST_OPS = ('aten::batch_norm', 'aten::group_norm', 'aten::layer_norm',
                  'aten::instance_norm', 'aten::upsample_nearest2d',
                  'aten::upsample_bilinear2d', 'aten::adaptive_avg_pool2d',
                  'aten::grid_sampler')


def _count_zero(inputs, outputs) -> int:
    return 0


def flatten_tensors(out) -> Tuple[torch.Tensor, ...]:
    """Every tensor in a (nested) output, in order: tuples, lists, dicts
    and mmengine data elements (e.g. a ``SegDataSample``'s ``seg_logits``).

    Example:
        >>> len(flatten_tensors(([torch.zeros(1)], {'a': torch.ones(2)})))
        2
    """
    if isinstance(out, torch.Tensor):
        return (out, )
    if isinstance(out, BaseDataElement):
        out = [out.get(k) for k in out.keys()]
    elif isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return tuple(t for o in out for t in flatten_tensors(o))
    return ()


# The way each model maps images to tensors, found once per model (outside
# any trace, so a route that fails leaves no ops in a traced graph).
_ROUTES: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()


def _route_call(model: nn.Module, route: str, x: torch.Tensor):
    if route == 'tensor':
        return model(x, None, mode='tensor')
    if route == 'predict':
        return model(x, None, mode='predict')
    if route == 'extract_feat':
        return model.extract_feat(x)
    return model(x)


def _routes_of(model: nn.Module) -> List[str]:
    if isinstance(model, BaseModel):
        # The codebase's own tensor forward first (it runs cascade and
        # multi-output heads as the codebase defines them); predict for
        # models whose tensor mode is not a complete path (e.g. PointRend's
        # point head), then the features alone.
        return ['tensor', 'predict', 'extract_feat']
    return ['plain']


class ModelForward(nn.Module):
    """Runs a model from images to its output tensors, as a tuple (or one
    tensor).

    OpenMMLab models (any :class:`~mmengine.model.BaseModel`) run their own
    ``forward(inputs, mode='tensor')``: backbone, neck and head(s) as the
    codebase defines them (mmseg cascade segmentors, mmpose multi-output
    heads such as RTMPose's SimCC head, mmpretrain classifiers with necks).
    A model whose tensor mode fails falls back to ``mode='predict'`` and
    then to ``extract_feat``; a plain ``nn.Module`` is called on the image.
    The route is chosen once per model by a probe outside any trace.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def choose_route(self, x: torch.Tensor) -> str:
        model = self.model
        if model in _ROUTES:
            return _ROUTES[model]
        errors = []
        for route in _routes_of(model):
            try:
                with torch.no_grad():
                    if flatten_tensors(_route_call(model, route, x)):
                        _ROUTES[model] = route
                        return route
                errors.append(f'{route}: no tensor in the output')
            except Exception as e:  # noqa: BLE001 - the next route is tried
                errors.append(f'{route}: {type(e).__name__}: {e}')
        raise RuntimeError(
            f'cannot run {type(model).__name__} from images to tensors '
            f'(input {tuple(x.shape)}): ' + '; '.join(errors))

    def forward(self, x):
        if torch.jit.is_tracing() and self.model not in _ROUTES:
            raise RuntimeError('ModelForward.choose_route must run before '
                               'tracing')
        out = flatten_tensors(_route_call(self.model, self.choose_route(x),
                                          x))
        return out[0] if len(out) == 1 else out


def analyze_macs(model: nn.Module,
                 input_shape: Sequence[int]) -> FlopAnalyzer:
    """A FlopAnalyzer over ``model`` at ``input_shape`` = (H, W).

    The model is run in eval mode on one zero image of that size; its
    training mode is restored afterwards.
    """
    h, w = input_shape
    device = next(model.parameters()).device
    wrapped = ModelForward(model)
    was_training = model.training
    model.eval()
    try:
        wrapped.choose_route(torch.zeros(1, 3, h, w, device=device))
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


def count_params(model: nn.Module) -> int:
    """Weights and biases of every Conv2d and Linear."""
    return sum(p.numel() for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))
               for p in m.parameters(recurse=False))


def _layers(model: nn.Module) -> Dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear))}


def _costs_follow_weights(model: nn.Module) -> bool:
    """Whether every searchable unit declares that removing its channels
    changes each of its layers' MACs in proportion to the layer's weights.

    True for kernel paths (a conv's MACs are its weight count times its
    output pixels, which a shrink keeps); not declared by the token
    transformer, whose linear layers run once per token.
    """
    return all(getattr(u.module, 'macs_follow_weights', False)
               for u in find_searchable_units(model))


class ResourceEstimator:
    """Params and MACs of a model at one input size, with an explicit cache.

    The first count traces a forward pass (:func:`analyze_macs`). That
    trace is kept as the reference: when the model is only narrower than
    at the reference (a shrink slices channels; shapes elsewhere stay) and
    its units declare ``macs_follow_weights``, each layer's MACs are the
    reference's times its weight count now over then, which is exact, and
    nothing is traced again. Any other change of structure is traced anew.
    :meth:`clear` forgets the reference.

    Args:
        input_shape (Sequence[int]): (H, W) of the profiling input.

    Example:
        >>> import torch.nn as nn
        >>> estimator = ResourceEstimator((8, 8))
        >>> estimator.complexity(nn.Sequential(nn.Conv2d(3, 4, 3)))['macs']
        3888
    """

    def __init__(self, input_shape: Sequence[int]):
        if len(input_shape) != 2 or min(input_shape) <= 0:
            raise ValueError(f'input_shape={input_shape} must be (H, W)')
        self.input_shape = [int(s) for s in input_shape]
        self._model_ref = None
        self._module_macs: Dict[str, int] = {}
        self._layer_weights: Dict[str, int] = {}
        self._structure = None

    def clear(self) -> None:
        self._model_ref = None
        self._module_macs, self._layer_weights = {}, {}
        self._structure = None

    @staticmethod
    def _structure_of(model: nn.Module) -> tuple:
        return tuple((n, tuple(p.shape)) for n, p in model.named_parameters())

    def _trace(self, model: nn.Module) -> None:
        counts = analyze_macs(model, self.input_shape).by_module()
        # FlopAnalyzer names are relative to the wrapper ('model.' prefix).
        self._module_macs = {
            (k[len('model.'):] if k.startswith('model.') else
             ('' if k in ('model', '') else k)): v
            for k, v in counts.items()}
        self._layer_weights = {n: m.weight.numel()
                               for n, m in _layers(model).items()}
        self._model_ref = weakref.ref(model)
        self._structure = self._structure_of(model)

    def module_macs(self, model: nn.Module) -> Dict[str, int]:
        """MACs per module name, traced (the reference is renewed when the
        structure differs from it)."""
        if self._model_ref is None or self._model_ref() is not model or \
                self._structure != self._structure_of(model):
            self._trace(model)
        return dict(self._module_macs)

    def layer_macs(self, model: nn.Module) -> Dict[str, int]:
        """MACs of each Conv2d/Linear layer by its module name."""
        layers = _layers(model)
        reference = self._model_ref() if self._model_ref else None
        narrower = (
            reference is model
            and set(layers) <= set(self._layer_weights)
            and all(0 < m.weight.numel() <= self._layer_weights[n]
                    for n, m in layers.items())
            and _costs_follow_weights(model))
        if not narrower or self._structure == self._structure_of(model):
            counts = self.module_macs(model)
            return {name: counts.get(name, 0) for name in layers}
        return {
            name: int(round(self._module_macs.get(name, 0) *
                            m.weight.numel() / self._layer_weights[name]))
            for name, m in layers.items()}

    def complexity(self, model: nn.Module,
                   densities: Optional[Dict[str, float]] = None) -> dict:
        """Params and MACs of a model, dense and (given densities) sparse.

        Args:
            model: The model (any module; OpenMMLab models run their own
                tensor forward, see :class:`ModelForward`).
            densities: Kept fraction per weight name (``<layer>.weight``);
                layers not listed are dense.

        Returns:
            dict: ``params``, ``macs``, ``input_shape``, and with densities
            ``sparse_params``, ``sparse_macs`` (exact per layer) and
            ``macs_x_global_density`` (dense MACs × the global density, the
            figure the paper reports).
        """
        per_layer = self.layer_macs(model)
        result = dict(params=count_params(model),
                      macs=sum(per_layer.values()),
                      input_shape=list(self.input_shape))
        if densities is None:
            return result
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


def complexity(model: nn.Module, input_shape: Sequence[int],
               densities: Optional[Dict[str, float]] = None) -> dict:
    """One-off :meth:`ResourceEstimator.complexity` (traces every call)."""
    return ResourceEstimator(input_shape).complexity(model, densities)


def format_count(n: float) -> str:
    for unit, scale in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if abs(n) >= scale:
            return f'{n / scale:.2f}{unit}'
    return str(int(n))
