"""The HR-NAS classification head body as an mmpretrain neck."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmsupertickets.registry import MODELS
from mmsupertickets.structures.arch import apply_arch

from ..layers import HRNASModule, MultiKernelInvertedResidual, check_norm_cfg


@MODELS.register_module()
class HRNASClsNeck(HRNASModule, BaseModule):
    """Merge the branches from high to low resolution, then pool to a vector.

    ``incre{i}`` = IR(in_i → head_i) per branch; ``down{i}`` = stride-2
    IR(head_i → head_{i+1}); ``y = incre0(x0)``, then
    ``y = incre{i+1}(x_{i+1}) + down{i}(y)``; ``final_conv`` (1×1
    Conv-BN-ReLU, head_{-1} → ``out_channels``), global average pooling and
    dropout. Every IR block's kernel paths are searchable units
    (``neck.incre0.paths.k3`` in a model). A stock ``LinearClsHead`` with
    ``in_channels=out_channels`` completes the HR-NAS classifier.

    Args:
        in_channels (Sequence[int]): Channels of the backbone branches,
            highest resolution first. Defaults to (18, 36, 72, 144).
        head_channels (Sequence[int]): Channels after each ``incre`` block.
            Defaults to (36, 72, 144, 320).
        out_channels (int): Channels of ``final_conv`` (the feature vector).
            Defaults to 1600.
        dropout_ratio (float): Dropout on the pooled vector. Defaults to 0.2.
        kernel_sizes (Sequence[int]): Kernel paths of each IR block.
            Defaults to (3, 5, 7).
        expand_ratio (float): Hidden channels per path = round(ratio · Cin).
            Defaults to 4.
        norm_cfg (dict): BatchNorm of the blocks and ``final_conv``.
            Defaults to ``dict(type='BN', momentum=0.01, eps=1e-3)``.
        act_cfg (dict): Activation of the paths and ``final_conv``.
            Defaults to ReLU.
        arch (dict | str, optional): Searched channels of this neck's units
            (``{'incre0.paths.k3': 40, ...}``, names local to the neck), or
            the path of a JSON file with them. Defaults to None (full width).
        conv_init_std (float, optional): Draw conv weights from
            N(0, conv_init_std) instead of Kaiming fan-out. Defaults to None.
        init_cfg (dict, optional): mmengine init config; None uses the
            HR-NAS init. Defaults to None.

    Returns:
        tuple[Tensor]: One (B, ``out_channels``) tensor.

    Example:
        >>> # In an mmpretrain config (ImageNet):
        >>> # custom_imports = dict(imports=['mmsupertickets'],
        >>> #                       allow_failed_imports=False)
        >>> # model = dict(
        >>> #     backbone=dict(_delete_=True, type='SuperTicketHRNet'),
        >>> #     neck=dict(_delete_=True, type='HRNASClsNeck'),
        >>> #     head=dict(type='LinearClsHead', in_channels=1600,
        >>> #               num_classes=1000))
        >>> import torch
        >>> neck = HRNASClsNeck()
        >>> feats = [torch.rand(2, c, 16 // 2**i, 16 // 2**i)
        ...          for i, c in enumerate((18, 36, 72, 144))]
        >>> tuple(neck(feats)[0].shape)
        (2, 1600)
    """

    def __init__(self,
                 in_channels: Sequence[int] = (18, 36, 72, 144),
                 head_channels: Sequence[int] = (36, 72, 144, 320),
                 out_channels: int = 1600,
                 dropout_ratio: float = 0.2,
                 kernel_sizes: Sequence[int] = (3, 5, 7),
                 expand_ratio: float = 4.0,
                 norm_cfg: dict = dict(type='BN', momentum=0.01, eps=1e-3),
                 act_cfg: dict = dict(type='ReLU'),
                 arch: Optional[Union[dict, str]] = None,
                 conv_init_std: Optional[float] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        check_norm_cfg(norm_cfg)
        if len(in_channels) != len(head_channels):
            raise ValueError(
                f'one head channel count per input branch is needed, got '
                f'in_channels={list(in_channels)} and '
                f'head_channels={list(head_channels)}')
        if not 0 <= dropout_ratio < 1:
            raise ValueError(f'dropout_ratio must be in [0, 1), got '
                             f'{dropout_ratio}')
        self.in_channels = tuple(in_channels)
        self.head_channels = tuple(head_channels)
        self.out_channels = out_channels
        self.conv_init_std = conv_init_std
        block_cfg = dict(kernel_sizes=kernel_sizes, expand_ratio=expand_ratio,
                         norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.num_branches = len(in_channels)
        for i, (cin, cout) in enumerate(zip(in_channels, head_channels)):
            self.add_module(f'incre{i}', MultiKernelInvertedResidual(
                cin, cout, stride=1, **block_cfg))
        for i in range(self.num_branches - 1):
            self.add_module(f'down{i}', MultiKernelInvertedResidual(
                head_channels[i], head_channels[i + 1], stride=2,
                **block_cfg))
        self.final_conv = ConvModule(
            head_channels[-1], out_channels, 1, bias=False,
            norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 \
            else nn.Identity()
        if arch is not None:
            apply_arch(self, arch)

    def forward(self,
                inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor]:
        if len(inputs) != self.num_branches:
            raise ValueError(f'HRNASClsNeck expects {self.num_branches} '
                             f'inputs, got {len(inputs)}')
        y = self.incre0(inputs[0])
        for i in range(1, self.num_branches):
            y = getattr(self, f'incre{i}')(inputs[i]) + \
                getattr(self, f'down{i - 1}')(y)
        y = self.pool(self.final_conv(y)).flatten(1)
        return (self.dropout(y), )
