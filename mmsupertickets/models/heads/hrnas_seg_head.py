"""The HR-NAS segmentation head as an mmseg decode head."""
from typing import Optional, Sequence, Union

import torch
from mmengine.registry import DefaultScope
from mmseg.models.decode_heads.decode_head import BaseDecodeHead

from mmsupertickets.registry import MODELS
from mmsupertickets.structures.arch import apply_arch

from ..layers import HRNASModule, MultiKernelInvertedResidual


@MODELS.register_module()
class HRNASSegHead(HRNASModule, BaseDecodeHead):
    """Resize-and-concatenate, one searchable IR block, a 1×1 classifier.

    The four branches of the backbone are resized to the first one's size
    (bilinear) and concatenated (270 channels for the paper's supernet) by
    :class:`BaseDecodeHead` (``input_transform='resize_concat'``), then one
    :class:`MultiKernelInvertedResidual` maps them to ``channels``
    (HR-NAS's ``last_channel``: 90 for Cityscapes, 180 for ADE20K). Since the
    channel counts differ, its shortcut is a grouped 1×1 conv. ``conv_seg``
    (1×1 with bias) classifies. The kernel paths of the block are searchable
    units like the backbone's (``decode_head.block.paths.k3`` in a model).

    Args:
        in_channels (Sequence[int] | int): Channels of the selected inputs.
            Defaults to (18, 36, 72, 144).
        channels (int): Output channels of the IR block. Defaults to 90.
        in_index (Sequence[int] | int): Selected backbone outputs.
            Defaults to (0, 1, 2, 3).
        input_transform (str, optional): ``'resize_concat'`` for several
            inputs, None for a single one. Defaults to ``'resize_concat'``.
        kernel_sizes (Sequence[int]): Kernel paths of the block.
            Defaults to (3, 5, 7).
        expand_ratio (float): Hidden channels per path = round(ratio · Cin).
            Defaults to 4.
        dropout_ratio (float): Dropout before ``conv_seg``. HR-NAS has none,
            so defaults to 0.
        norm_cfg (dict): BatchNorm of the block. Defaults to
            ``dict(type='BN', momentum=0.01, eps=1e-3)``.
        act_cfg (dict): Activation inside the kernel paths. Defaults to ReLU.
        arch (dict | str, optional): Searched channels of this head's units
            (``{'block.paths.k3': 512, ...}``, names local to the head), or
            the path of a JSON file with them. Defaults to None (full width).
        conv_init_std (float, optional): Draw conv weights from
            N(0, conv_init_std) instead of Kaiming fan-out. Defaults to None.
        init_cfg (dict, optional): mmengine init config; None uses the
            HR-NAS init for every conv of the head, ``conv_seg`` included.
        **kwargs: Other :class:`BaseDecodeHead` arguments (``num_classes``
            is required; ``loss_decode``, ``align_corners``, ...).

    Example:
        >>> # In an mmseg config (Cityscapes):
        >>> # custom_imports = dict(imports=['mmsupertickets'],
        >>> #                       allow_failed_imports=False)
        >>> # model = dict(
        >>> #     backbone=dict(_delete_=True, type='SuperTicketHRNet'),
        >>> #     decode_head=dict(_delete_=True, type='HRNASSegHead',
        >>> #                      channels=90, num_classes=19))
        >>> import torch
        >>> head = HRNASSegHead(channels=90, num_classes=19)
        >>> head.init_weights()
        >>> feats = [torch.rand(1, c, 16 // 2**i, 32 // 2**i)
        ...          for i, c in enumerate((18, 36, 72, 144))]
        >>> tuple(head(feats).shape)
        (1, 19, 16, 32)
    """

    def __init__(self,
                 in_channels: Union[Sequence[int], int] = (18, 36, 72, 144),
                 channels: int = 90,
                 in_index: Union[Sequence[int], int] = (0, 1, 2, 3),
                 input_transform: Optional[str] = 'resize_concat',
                 kernel_sizes: Sequence[int] = (3, 5, 7),
                 expand_ratio: float = 4.0,
                 dropout_ratio: float = 0.0,
                 norm_cfg: dict = dict(type='BN', momentum=0.01, eps=1e-3),
                 act_cfg: dict = dict(type='ReLU'),
                 arch: Optional[Union[dict, str]] = None,
                 conv_init_std: Optional[float] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs):
        # 'multiple_select' would hand a list to the block.
        if input_transform not in ('resize_concat', None):
            raise ValueError(
                f'HRNASSegHead needs one tensor: input_transform must be '
                f"'resize_concat' or None, got {input_transform!r}")
        # BaseDecodeHead builds its losses through mmseg's registry, which
        # follows the default scope: pin it so that the head also builds
        # when another codebase's scope is active.
        with DefaultScope.overwrite_default_scope('mmseg'):
            super().__init__(
                in_channels,
                channels,
                in_index=in_index,
                input_transform=input_transform,
                dropout_ratio=dropout_ratio,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg,
                init_cfg=init_cfg,
                **kwargs)
        self.conv_init_std = conv_init_std
        self.block = MultiKernelInvertedResidual(
            self.in_channels,
            channels,
            stride=1,
            kernel_sizes=kernel_sizes,
            expand_ratio=expand_ratio,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        if arch is not None:
            apply_arch(self, arch)

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        x = self._transform_inputs(inputs)
        return self.cls_seg(self.block(x))
