"""ONNX export of the tensor forward, checked by onnxruntime against torch."""
import inspect
import warnings
from typing import Sequence, Tuple

import torch
import torch.nn as nn

from mmsupertickets.flops import ModelForward

__all__ = ['ONNX_OPSET', 'ONNX_EXPORTER', 'as_tuple', 'export_onnx']

ONNX_OPSET = 17
ONNX_EXPORTER = ('torch.onnx.export(dynamo=False): the TorchScript-based '
                 'exporter that mmdeploy 1.3 uses (the dynamo exporter, '
                 'torch >= 2.9\'s default, needs the onnxscript package, '
                 'which is not a dependency)')
# torch < 2.5 has only the TorchScript exporter and no `dynamo` argument.
_EXPORTER_ARGS = dict(dynamo=False) if 'dynamo' in inspect.signature(
    torch.onnx.export).parameters else {}


def as_tuple(out) -> Tuple[torch.Tensor, ...]:
    """A model's output tensor(s) as a tuple.

    Example:
        >>> len(as_tuple(torch.zeros(1))), len(as_tuple([torch.zeros(1)] * 2))
        (1, 2)
    """
    return (out, ) if isinstance(out, torch.Tensor) else tuple(out)


def export_onnx(model: nn.Module, shape: Sequence[int], path: str,
                batch: int = 2, seed: int = 0,
                opset: int = ONNX_OPSET) -> dict:
    """Export the tensor forward to ONNX and compare onnxruntime with torch.

    The graph maps a preprocessed (normalised) image batch to the head's raw
    output, as ``mode='tensor'`` does; the batch size is dynamic, the
    spatial size is fixed to ``shape`` (the trace freezes shape-dependent
    resizes).

    Args:
        model: The model (eval mode is set).
        shape: (H, W) of the input.
        path: Target ``.onnx`` file.
        batch: Batch size of the check. Defaults to 2.
        seed: Seed of the random check batch. Defaults to 0.
        opset: ONNX opset. Defaults to :data:`ONNX_OPSET` (mmdeploy 1.3's
            onnxruntime configs use 11, which the ticket also exports to).

    Returns:
        dict: ``exporter``, ``opset``, ``input_shape``, ``check_batch`` and
        ``max_abs_diff`` (None when onnxruntime is not installed; with it,
        also ``max_abs_output`` and ``max_rel_diff``).

    Example:
        >>> export_onnx(model, (512, 1024),
        ...             'ticket.onnx')['max_rel_diff']  # doctest: +SKIP
        3.1e-07
    """
    h, w = shape
    forward = ModelForward(model.eval()).eval()
    example = torch.zeros(1, 3, h, w)
    with torch.no_grad():
        num_out = len(as_tuple(forward(example)))
    outputs = ['output'] if num_out == 1 else [
        f'output{i}' for i in range(num_out)]
    with warnings.catch_warnings():
        # The tracer warns about every shape comparison it freezes; the
        # spatial size is fixed on purpose. The legacy exporter announces
        # its own deprecation.
        warnings.simplefilter('ignore')
        torch.onnx.export(
            forward, (example, ), path, **_EXPORTER_ARGS,
            opset_version=opset, input_names=['input'],
            output_names=outputs,
            dynamic_axes={n: {0: 'batch'} for n in ['input'] + outputs})
    result = dict(exporter=ONNX_EXPORTER, opset=opset,
                  input_shape=[batch, 3, h, w], check_batch=batch,
                  max_abs_diff=None)
    try:
        import onnxruntime
    except ImportError:
        return result
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, h, w, generator=g)
    session = onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    got = session.run(None, {'input': x.numpy()})
    with torch.no_grad():
        ref = as_tuple(forward(x))
    diff = max(float((torch.from_numpy(o) - r).abs().max())
               for o, r in zip(got, ref))
    scale = max(float(r.abs().max()) for r in ref)
    # float32 rounding grows with the output's magnitude: the relative
    # figure is the one to compare across models.
    result.update(max_abs_diff=diff, max_abs_output=scale,
                  max_rel_diff=diff / scale if scale > 0 else diff)
    return result
