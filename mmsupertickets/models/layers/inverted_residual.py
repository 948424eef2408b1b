"""The searchable multi-kernel inverted-residual block of the HR-NAS space."""
import math
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_norm_layer
from mmengine.model import BaseModule

from mmsupertickets.registry import MODELS

_BN_TYPES = ('BN', 'BN2d', 'SyncBN', 'NaiveSyncBN', 'MMSyncBN')


def check_norm_cfg(norm_cfg: dict) -> None:
    """Searchable channels are scored by a BatchNorm γ; refuse other norms."""
    if norm_cfg.get('type') not in _BN_TYPES:
        raise ValueError(
            f'norm_cfg type {norm_cfg.get("type")!r} is not supported: '
            f'searchable channels are scored by BatchNorm scales, use one of '
            f'{_BN_TYPES}')


class KernelPath(nn.Module):
    """One kernel-size path: 1×1 expand, k×k depthwise, 1×1 project.

    The depthwise BN's channels are the searchable unit: removing channel c
    removes expand output c, depthwise channel c (conv and BN) and project
    input c. A channel whose depthwise BN has γ = β = 0 outputs zero after
    the ReLU, so removing it leaves the block's output unchanged.
    """

    # Removing channels changes each conv's MACs in proportion to its
    # weights (MACs = weights x output pixels): cost can be derived, not
    # re-traced (see mmsupertickets.flops.ResourceEstimator).
    macs_follow_weights = True

    def __init__(self, in_channels: int, hidden_channels: int,
                 out_channels: int, kernel_size: int, stride: int,
                 norm_cfg: dict, act_cfg: dict):
        super().__init__()
        self.kernel_size = kernel_size
        self.expand = ConvModule(
            in_channels, hidden_channels, 1, bias=False,
            norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.depthwise = ConvModule(
            hidden_channels, hidden_channels, kernel_size, stride=stride,
            padding=(kernel_size - 1) // 2, groups=hidden_channels,
            bias=False, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.project = nn.Conv2d(hidden_channels, out_channels, 1, bias=False)

    @property
    def channels(self) -> int:
        return self.depthwise.conv.out_channels

    @property
    def searchable_norm(self) -> nn.Module:
        """The BN whose |γ| scores this unit's channels."""
        return self.depthwise.norm

    def coupled_tensors(self) -> Dict[str, int]:
        """Local names of the tensors sliced with the channels, and the dim."""
        dims = {'project.weight': 1}
        for conv_module in ('expand', 'depthwise'):
            dims[f'{conv_module}.conv.weight'] = 0
            norm_name = getattr(self, conv_module).norm_name
            for t in ('weight', 'bias', 'running_mean', 'running_var'):
                dims[f'{conv_module}.{norm_name}.{t}'] = 0
        return dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.depthwise(self.expand(x)))


@MODELS.register_module()
class MultiKernelInvertedResidual(BaseModule):
    """Inverted residual with parallel 3/5/7 depthwise paths (HR-NAS).

    ``out = shortcut(x) + BN(Σ_k path_k(x))``; the shortcut is the identity
    when ``stride == 1`` and the channel counts match, otherwise a grouped
    1×1 conv (groups = gcd). A block whose paths were all removed returns
    ``shortcut(x)`` alone.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the depthwise convs and the shortcut.
            Defaults to 1.
        kernel_sizes (Sequence[int]): One path per kernel size.
            Defaults to (3, 5, 7).
        expand_ratio (float): Hidden channels per path are
            ``round(expand_ratio * in_channels)``. Defaults to 4.
        hidden_channels (dict, optional): Explicit hidden channels per path,
            ``{'k3': 72, 'k5': 0, ...}``, as written by an architecture
            spec; a path with 0 channels (or absent) is not built.
        norm_cfg (dict): BatchNorm config. Defaults to
            ``dict(type='BN', momentum=0.01, eps=1e-3)``.
        act_cfg (dict): Activation inside the paths. Defaults to ReLU.

    Example:
        >>> import torch
        >>> block = MultiKernelInvertedResidual(18, 36, stride=2)
        >>> block(torch.rand(1, 18, 32, 32)).shape
        torch.Size([1, 36, 16, 16])
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 kernel_sizes: Sequence[int] = (3, 5, 7),
                 expand_ratio: float = 4.0,
                 hidden_channels: Optional[Dict[str, int]] = None,
                 norm_cfg: dict = dict(type='BN', momentum=0.01, eps=1e-3),
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        check_norm_cfg(norm_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        if hidden_channels is None:
            hidden = int(round(expand_ratio * in_channels))
            hidden_channels = {f'k{k}': hidden for k in kernel_sizes}
        paths = OrderedDict()
        for k in kernel_sizes:
            h = hidden_channels.get(f'k{k}', 0)
            if h > 0:
                paths[f'k{k}'] = KernelPath(in_channels, h, out_channels, k,
                                            stride, norm_cfg, act_cfg)
        self.paths = nn.ModuleDict(paths)
        # The output BN is only meaningful while at least one path exists.
        self.norm = build_norm_layer(norm_cfg, out_channels)[1] \
            if paths else None
        if stride == 1 and in_channels == out_channels:
            self.shortcut = None
        else:
            self.shortcut = nn.Conv2d(
                in_channels, out_channels, 1, stride=stride, bias=False,
                groups=math.gcd(in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.shortcut is None else self.shortcut(x)
        if len(self.paths) == 0:
            return residual
        out = None
        for path in self.paths.values():
            y = path(x)
            out = y if out is None else out + y
        return residual + self.norm(out)
