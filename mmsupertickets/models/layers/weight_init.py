"""The supernet's initialisation: Kaiming normal, mode fan_out."""
import math

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def init_hrnas_weights(module: nn.Module, conv_std: float = None) -> None:
    """Initialise every conv, linear and BN below ``module``.

    Convs draw from N(0, sqrt(2 / fan_out)): ``k²`` for a depthwise conv
    (one input channel per group), ``out_channels·k²`` for every other
    conv, grouped shortcuts included (not divided by the groups, as torch's
    ``kaiming_normal_`` counts it); or from N(0, conv_std) with zero bias
    when ``conv_std`` is given (the keypoint variant uses 0.001). Linear
    layers draw from N(0, 0.01). BN γ = 1, β = 0.

    Example:
        >>> conv = nn.Conv2d(360, 18, 1, groups=18)  # 360 draws
        >>> init_hrnas_weights(conv)
        >>> 0.25 < float(conv.weight.detach().std()) < 0.45  # sqrt(2/18)
        True
        >>> # (divided by the groups it would be sqrt(2 / 1) = 1.41)
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            if conv_std is None:
                kh, kw = m.kernel_size
                depthwise = m.groups > 1 and m.groups == m.in_channels
                fan_out = kh * kw * (1 if depthwise else m.out_channels)
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
