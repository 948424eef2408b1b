"""The HR-NAS multi-resolution fusion (keypoint head body) as a neck."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmsupertickets.registry import MODELS
from mmsupertickets.structures.arch import apply_arch

from ..layers import HRNASModule, MultiKernelInvertedResidual


@MODELS.register_module()
class HRNASFusionNeck(HRNASModule, BaseModule):
    """Resize every input to the first one's size, concatenate, one IR block.

    This is the body of HR-NAS's keypoint (and segmentation) head without
    its classifier, so that a stock head can follow: in mmpose, a
    ``HeatmapHead`` with ``in_channels=out_channels``, no deconvs, no convs
    and a 1×1 ``final_layer`` equals the HR-NAS keypoint head. The IR
    block's kernel paths are searchable units (``neck.block.paths.k3`` in a
    model).

    Args:
        in_channels (Sequence[int]): Channels of each input.
            Defaults to (18, 36, 72, 144).
        out_channels (int): Output channels of the IR block (HR-NAS's
            ``last_channel``). Defaults to 90.
        kernel_sizes (Sequence[int]): Kernel paths of the block.
            Defaults to (3, 5, 7).
        expand_ratio (float): Hidden channels per path = round(ratio · Cin).
            Defaults to 4.
        align_corners (bool): Of the bilinear resize. Defaults to False.
        norm_cfg (dict): BatchNorm of the block. Defaults to
            ``dict(type='BN', momentum=0.01, eps=1e-3)``; HR-NAS uses
            ``momentum=0.1, eps=1e-5`` for COCO keypoints.
        act_cfg (dict): Activation inside the kernel paths. Defaults to ReLU.
        arch (dict | str, optional): Searched channels of this neck's units
            (``{'block.paths.k3': 512, ...}``, names local to the neck), or
            the path of a JSON file with them. Defaults to None (full width).
        conv_init_std (float, optional): Draw conv weights from
            N(0, conv_init_std) instead of Kaiming fan-out (the keypoint
            variant uses 0.001). Defaults to None.
        init_cfg (dict, optional): mmengine init config; None uses the
            HR-NAS init. Defaults to None.

    Returns:
        tuple[Tensor]: One map with ``out_channels`` channels at the first
        input's resolution.

    Example:
        >>> # In an mmpose top-down config (COCO, 17 keypoints):
        >>> # custom_imports = dict(imports=['mmsupertickets'],
        >>> #                       allow_failed_imports=False)
        >>> # norm_cfg = dict(type='BN', momentum=0.1, eps=1e-5)
        >>> # model = dict(
        >>> #     backbone=dict(_delete_=True, type='SuperTicketHRNet',
        >>> #                   norm_cfg=norm_cfg, conv_init_std=0.001),
        >>> #     neck=dict(type='HRNASFusionNeck', out_channels=90,
        >>> #               norm_cfg=norm_cfg, conv_init_std=0.001),
        >>> #     head=dict(type='HeatmapHead', in_channels=90,
        >>> #               out_channels=17, deconv_out_channels=None,
        >>> #               conv_out_channels=None,
        >>> #               final_layer=dict(kernel_size=1)))
        >>> import torch
        >>> neck = HRNASFusionNeck(out_channels=90)
        >>> feats = [torch.rand(1, c, 16 // 2**i, 12 // 2**i)
        ...          for i, c in enumerate((18, 36, 72, 144))]
        >>> tuple(neck(feats)[0].shape)
        (1, 90, 16, 12)
    """

    def __init__(self,
                 in_channels: Sequence[int] = (18, 36, 72, 144),
                 out_channels: int = 90,
                 kernel_sizes: Sequence[int] = (3, 5, 7),
                 expand_ratio: float = 4.0,
                 align_corners: bool = False,
                 norm_cfg: dict = dict(type='BN', momentum=0.01, eps=1e-3),
                 act_cfg: dict = dict(type='ReLU'),
                 arch: Optional[Union[dict, str]] = None,
                 conv_init_std: Optional[float] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(in_channels, int) or len(in_channels) == 0:
            raise ValueError(f'in_channels must list the channels of each '
                             f'input, got {in_channels!r}')
        self.in_channels = tuple(in_channels)
        self.out_channels = out_channels
        self.align_corners = align_corners
        self.conv_init_std = conv_init_std
        self.block = MultiKernelInvertedResidual(
            sum(self.in_channels),
            out_channels,
            stride=1,
            kernel_sizes=kernel_sizes,
            expand_ratio=expand_ratio,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        if arch is not None:
            apply_arch(self, arch)

    def forward(self,
                inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor]:
        channels = tuple(x.shape[1] for x in inputs)
        if channels != self.in_channels:
            raise ValueError(f'HRNASFusionNeck expects inputs with '
                             f'{self.in_channels} channels, got {channels}')
        size = inputs[0].shape[2:]
        x = torch.cat([inputs[0]] + [
            F.interpolate(
                y, size=size, mode='bilinear',
                align_corners=self.align_corners) for y in inputs[1:]
        ], dim=1)
        return (self.block(x), )
