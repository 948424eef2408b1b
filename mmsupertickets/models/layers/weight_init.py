"""The supernet's initialisation (DESIGN: Kaiming fan-out per conv group)."""
import math

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def init_hrnas_weights(module: nn.Module, conv_std: float = None) -> None:
    """Initialise every conv, linear and BN below ``module``.

    Convs draw from N(0, sqrt(2 / fan_out)) with ``fan_out`` counted per
    group (``k²`` for a depthwise conv), or from N(0, conv_std) with zero
    bias when ``conv_std`` is given (the keypoint variant uses 0.001).
    BN γ = 1, β = 0.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            if conv_std is None:
                kh, kw = m.kernel_size
                fan_out = m.out_channels // m.groups * kh * kw
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
            else:
                nn.init.normal_(m.weight, 0, conv_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _BatchNorm):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
