from typing import Any

import torch
import torch.nn as nn
from mmengine.model import MMDistributedDataParallel

from mmsupertickets.registry import MODEL_WRAPPERS

# DDP arguments that only make sense for a module on a CUDA device.
_DEVICE_ARGS = ('device_ids', 'output_device')


def _on_cpu(module: nn.Module) -> bool:
    return all(p.device.type == 'cpu' for p in module.parameters())


@MODEL_WRAPPERS.register_module()
class DeviceAgnosticDDP(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that also wraps a module on the CPU.

    The runner always passes ``device_ids=[LOCAL_RANK]`` to a DDP wrapper,
    which DDP refuses for a CPU module. When CUDA is unavailable or the
    module lives on the CPU, this wrapper drops ``device_ids`` and
    ``output_device``; otherwise it is exactly its parent.

    The constructor arguments (other than ``module``) are kept in
    ``init_kwargs`` so that
    :func:`mmsupertickets.engine.ddp_rebuild.rewrap_ddp` can build
    an identical wrapper after the model's parameters changed shape.
    ``tools/train.py`` and ``tools/test.py`` select this wrapper for a
    distributed run whose config names none.

    Args:
        module (nn.Module): The model to wrap.
        **kwargs: Arguments of ``MMDistributedDataParallel`` and
            ``torch.nn.parallel.DistributedDataParallel``.

    Example:
        .. code-block:: python

            custom_imports = dict(
                imports=['mmsupertickets'], allow_failed_imports=False)
            model_wrapper_cfg = dict(
                type='DeviceAgnosticDDP',
                broadcast_buffers=False,
                find_unused_parameters=False)
    """

    def __init__(self, module: nn.Module, **kwargs: Any):
        init_kwargs = dict(kwargs)
        if not torch.cuda.is_available() or _on_cpu(module):
            for name in _DEVICE_ARGS:
                kwargs.pop(name, None)
        super().__init__(module=module, **kwargs)
        self.init_kwargs = init_kwargs
