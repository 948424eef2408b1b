from .hrnas_module import HRNASModule
from .inverted_residual import (
                                KernelPath,
                                MultiKernelInvertedResidual,
                                check_norm_cfg,
)
from .token_transformer import TokenTransformer
from .weight_init import init_hrnas_weights

__all__ = [
    'KernelPath', 'MultiKernelInvertedResidual', 'check_norm_cfg',
    'init_hrnas_weights', 'HRNASModule', 'TokenTransformer'
]
