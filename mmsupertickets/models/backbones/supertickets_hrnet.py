"""The HR-NAS supernet as an mmengine backbone."""
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmsupertickets.registry import MODELS
from mmsupertickets.structures.arch import apply_arch

from ..layers import (
    HRNASModule,
    MultiKernelInvertedResidual,
    TokenTransformer,
    check_norm_cfg,
)


class FuseModule(nn.Module):
    """Neighbour-only fusion between two stages of different branch counts.

    Output branch ``i`` sums IR blocks applied to inputs ``i-1`` (stride 2),
    ``i`` and ``i+1`` (upsampled ×2), then ReLU. A branch new in this stage is
    a stride-2 IR block on the fused output above it. Blocks are named
    ``out{i}_in{j}`` and ``new{b}``.
    """

    def __init__(self, in_channels: Sequence[int],
                 out_channels: Sequence[int], block_cfg: dict):
        super().__init__()
        self.num_in, self.num_out = len(in_channels), len(out_channels)
        self.blocks = nn.ModuleDict()
        for i in range(min(self.num_in, self.num_out)):
            for j in self._inputs_of(i):
                self.blocks[f'out{i}_in{j}'] = MultiKernelInvertedResidual(
                    in_channels[j], out_channels[i], 2 if j < i else 1,
                    **block_cfg)
        for b in range(self.num_in, self.num_out):
            self.blocks[f'new{b}'] = MultiKernelInvertedResidual(
                out_channels[b - 1], out_channels[b], 2, **block_cfg)

    def _inputs_of(self, i: int) -> List[int]:
        return [j for j in (i - 1, i, i + 1) if 0 <= j < self.num_in]

    def forward(self, xs: List[torch.Tensor]) -> List[torch.Tensor]:
        outs = []
        for i in range(min(self.num_in, self.num_out)):
            fused = None
            for j in self._inputs_of(i):
                y = self.blocks[f'out{i}_in{j}'](xs[j])
                if j > i:
                    y = F.interpolate(y, scale_factor=2**(j - i),
                                      mode='nearest')
                if fused is None:
                    fused = y
                else:
                    if y.shape[2:] != fused.shape[2:]:
                        y = F.interpolate(y, size=fused.shape[2:],
                                          mode='bilinear',
                                          align_corners=False)
                    fused = fused + y
            outs.append(F.relu(fused))
        for b in range(self.num_in, self.num_out):
            outs.append(self.blocks[f'new{b}'](outs[b - 1]))
        return outs


class HRNASStage(nn.Module):
    """A fuse module, then per branch a stack of stride-1 IR blocks.

    Children are ``fuse`` and ``branch{b}`` (each with ``block{n}``), so that
    searchable units get stable names such as ``stage3.branch1.block2``.
    """

    def __init__(self, in_channels: Sequence[int], channels: Sequence[int],
                 num_blocks: Sequence[int], block_cfg: dict,
                 transformer_cfg: Optional[dict] = None):
        super().__init__()
        if len(channels) != len(num_blocks):
            raise ValueError(
                f'a stage needs one block count per branch, got channels '
                f'{list(channels)} and num_blocks {list(num_blocks)}')
        self.fuse = FuseModule(in_channels, channels, block_cfg)
        self.num_branches = len(channels)
        for b, (c, n) in enumerate(zip(channels, num_blocks)):
            layers = OrderedDict(
                (f'block{k}',
                 MultiKernelInvertedResidual(c, c, 1, **block_cfg))
                for k in range(n))
            if transformer_cfg is not None:
                layers['transformer'] = TokenTransformer(
                    c, norm_cfg=block_cfg['norm_cfg'], **transformer_cfg)
            self.add_module(f'branch{b}', nn.Sequential(layers))

    def forward(self, xs: List[torch.Tensor]) -> List[torch.Tensor]:
        xs = self.fuse(xs)
        return [getattr(self, f'branch{b}')(x) for b, x in enumerate(xs)]


# Branch widths of the stock HRNets (mmseg/mmpose/mmpretrain ``HRNet``
# ``extra.stage4.num_channels`` / mmpretrain ``arch``).
HRNET_WIDTHS = {
    'w18': (18, 36, 72, 144),
    'w30': (30, 60, 120, 240),
    'w32': (32, 64, 128, 256),
    'w40': (40, 80, 160, 320),
    'w44': (44, 88, 176, 352),
    'w48': (48, 96, 192, 384),
    'w64': (64, 128, 256, 512),
}


@MODELS.register_module()
class SuperTicketHRNet(HRNASModule, BaseModule):
    """The HR-NAS multi-resolution supernet that SuperTickets are drawn from.

    A stem of two stride-2 Conv-BN-ReLU, then stages of a neighbour-only fuse
    module and parallel stacks of multi-kernel (3/5/7) inverted-residual
    blocks. Every depthwise BN channel of every kernel path is searchable.
    With the defaults it returns four maps with [18, 36, 72, 144] channels at
    strides 4/8/16/32, like HRNet-W18, so it replaces ``HRNet`` in stock
    configs by changing the backbone only.

    Args:
        stem_channels (int): Channels of both stem convs. Defaults to 24.
        stage_channels (Sequence[Sequence[int]]): Channels per branch for
            each stage. Defaults to the paper's
            ``((24,), (18, 36), (18, 36, 72), (18, 36, 72, 144), (18, 36, 72,
            144))``.
        stage_blocks (Sequence[Sequence[int]]): IR blocks per branch for each
            stage. Defaults to ``((1,), (2, 2), (2, 2, 3), (2, 2, 3, 4),
            (2, 2, 3, 4))``.
        kernel_sizes (Sequence[int]): Kernel paths per IR block.
            Defaults to (3, 5, 7).
        expand_ratio (float): Hidden channels per path = round(ratio · Cin).
            Defaults to 4.
        transformer (dict, optional): Appends a searchable
            :class:`TokenTransformer` to every branch of every stage, e.g.
            ``dict(num_tokens=64)``. Defaults to None (off, as in the
            released HR-NAS models).
        arch (dict | str, optional): A searched architecture (a dict or the
            path of a JSON file) as written by
            :func:`mmsupertickets.structures.arch.export_arch` for this module;
            the backbone is built at those sizes. Defaults to None (the full
            supernet).
        out_indices (Sequence[int]): Branches returned. Defaults to
            (0, 1, 2, 3).
        out_channels (str | Sequence[int], optional): Widths of the returned
            maps, to feed a stock head built for another HRNet unchanged:
            ``'w18'``/``'w32'``/``'w48'`` (any key of ``HRNET_WIDTHS``), or
            one width per branch or per returned map. A branch whose width
            differs gets a 1x1 Conv-BN-ReLU projection (not searched,
            pruned like any conv). Defaults to None (the branch widths).
        norm_cfg (dict): BatchNorm config. Defaults to
            ``dict(type='BN', momentum=0.01, eps=1e-3)``.
        act_cfg (dict): Activation config. Defaults to ReLU.
        norm_eval (bool): Keep BN layers in eval mode while training.
            Defaults to False.
        frozen_stages (int): Freeze the stem (0) and stages
            ``0 .. frozen_stages - 1``; -1 freezes nothing. Defaults to -1.
        conv_init_std (float, optional): Draw conv weights from
            N(0, conv_init_std) instead of Kaiming fan-out (the keypoint
            variant uses 0.001). Defaults to None.
        init_cfg (dict, optional): mmengine init config, e.g. a
            ``Pretrained`` checkpoint. Defaults to None (the supernet init).

    Example:
        >>> # In an mmseg/mmpose/mmpretrain config:
        >>> # custom_imports = dict(imports=['mmsupertickets'],
        >>> #                       allow_failed_imports=False)
        >>> # model = dict(backbone=dict(type='SuperTicketHRNet'))
        >>> import torch
        >>> net = SuperTicketHRNet()
        >>> net.init_weights()
        >>> for y in net(torch.rand(1, 3, 64, 128)):
        ...     print(tuple(y.shape))
        (1, 18, 16, 32)
        (1, 36, 8, 16)
        (1, 72, 4, 8)
        (1, 144, 2, 4)
        >>> # For a stock head built for HRNet-W32, e.g. mmpose's top-down
        >>> # HeatmapHead(in_channels=32) on the highest-resolution branch:
        >>> net = SuperTicketHRNet(out_indices=(0, ), out_channels='w32')
        >>> net.out_channels
        [32]
    """

    def __init__(self,
                 stem_channels: int = 24,
                 stage_channels: Sequence[Sequence[int]] = (
                     (24, ), (18, 36), (18, 36, 72), (18, 36, 72, 144),
                     (18, 36, 72, 144)),
                 stage_blocks: Sequence[Sequence[int]] = (
                     (1, ), (2, 2), (2, 2, 3), (2, 2, 3, 4), (2, 2, 3, 4)),
                 kernel_sizes: Sequence[int] = (3, 5, 7),
                 expand_ratio: float = 4.0,
                 transformer: Optional[dict] = None,
                 arch: Optional[Union[dict, str]] = None,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 out_channels: Optional[Union[str, Sequence[int]]] = None,
                 norm_cfg: dict = dict(type='BN', momentum=0.01, eps=1e-3),
                 act_cfg: dict = dict(type='ReLU'),
                 norm_eval: bool = False,
                 frozen_stages: int = -1,
                 conv_init_std: Optional[float] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        check_norm_cfg(norm_cfg)
        if len(stage_channels) != len(stage_blocks):
            raise ValueError(
                f'stage_channels has {len(stage_channels)} stages but '
                f'stage_blocks has {len(stage_blocks)}')
        num_out = len(stage_channels[-1])
        self._branch_widths = [int(c) for c in stage_channels[-1]]
        bad = [i for i in out_indices if not 0 <= i < num_out]
        if bad:
            raise ValueError(f'out_indices {list(out_indices)} out of range '
                             f'for {num_out} branches')
        if not -1 <= frozen_stages <= len(stage_channels):
            raise ValueError(f'frozen_stages={frozen_stages} out of range '
                             f'[-1, {len(stage_channels)}]')
        self.out_indices = tuple(out_indices)
        self.norm_eval = norm_eval
        self.frozen_stages = frozen_stages
        self.conv_init_std = conv_init_std
        self.num_stages = len(stage_channels)
        block_cfg = dict(kernel_sizes=kernel_sizes, expand_ratio=expand_ratio,
                         norm_cfg=norm_cfg, act_cfg=act_cfg)

        self.stem = nn.Sequential(
            ConvModule(3, stem_channels, 3, stride=2, padding=1, bias=False,
                       norm_cfg=norm_cfg, act_cfg=act_cfg),
            ConvModule(stem_channels, stem_channels, 3, stride=2, padding=1,
                       bias=False, norm_cfg=norm_cfg, act_cfg=act_cfg))
        prev = [stem_channels]
        for t, (channels, blocks) in enumerate(zip(stage_channels,
                                                   stage_blocks)):
            self.add_module(
                f'stage{t}',
                HRNASStage(prev, channels, blocks, block_cfg, transformer))
            prev = list(channels)
        widths = self._output_widths(out_channels, len(prev))
        # Projections to the requested widths, named by branch.
        self.projections = nn.ModuleDict()
        for i, width in zip(self.out_indices, widths):
            if width != prev[i]:
                self.projections[str(i)] = ConvModule(
                    prev[i], width, 1, bias=False, norm_cfg=norm_cfg,
                    act_cfg=act_cfg)
        self.out_channels = list(widths)

        if arch is not None:
            apply_arch(self, arch)
        self._freeze_stages()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        xs = [self.stem(x)]
        for t in range(self.num_stages):
            xs = getattr(self, f'stage{t}')(xs)
        return tuple(
            self.projections[str(i)](xs[i]) if str(i) in self.projections
            else xs[i] for i in self.out_indices)

    def _output_widths(self, out_channels, num_branches: int) -> List[int]:
        """The width of each returned map, checked."""
        own = [self._branch_widths[i] for i in self.out_indices]
        if out_channels is None:
            return own
        if isinstance(out_channels, str):
            if out_channels.lower() not in HRNET_WIDTHS:
                raise ValueError(
                    f'out_channels={out_channels!r} is not a preset; '
                    f'allowed: {sorted(HRNET_WIDTHS)} or a sequence of ints')
            out_channels = HRNET_WIDTHS[out_channels.lower()]
        widths = [int(c) for c in out_channels]
        if min(widths, default=0) <= 0:
            raise ValueError(f'out_channels={list(out_channels)} must be '
                             f'positive')
        if len(widths) == num_branches:
            return [widths[i] for i in self.out_indices]
        if len(widths) == len(self.out_indices):
            return widths
        raise ValueError(
            f'out_channels={list(out_channels)} needs one width per branch '
            f'({num_branches}) or per returned map (out_indices='
            f'{list(self.out_indices)})')

    def _freeze_stages(self) -> None:
        frozen = [self.stem] if self.frozen_stages >= 0 else []
        frozen += [getattr(self, f'stage{t}')
                   for t in range(max(self.frozen_stages, 0))]
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> 'SuperTicketHRNet':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
