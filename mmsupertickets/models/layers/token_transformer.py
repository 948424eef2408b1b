"""The optional lightweight token transformer of the HR-NAS space."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer

from mmsupertickets.registry import MODELS


class TokenMixer(nn.Module):
    """One pre-norm transformer layer over tokens: attention, then an MLP.

    Written with plain Linear layers (rather than ``nn.MultiheadAttention``,
    which reads its weights directly) so that forward-time pruning masks
    apply to every projection.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'token dimension {dim} is not divisible by '
                             f'num_heads={num_heads}')
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, int(dim * mlp_ratio))
        self.fc2 = nn.Linear(int(dim * mlp_ratio), dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.num_heads
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, h, d // h).permute(
            2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) * (d // h)**-0.5, -1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


@MODELS.register_module()
class TokenTransformer(nn.Module):
    """Adds global context through a few searchable tokens.

    The feature map is resized to ``grid × grid``, a 2-channel coordinate
    map is appended, and a 1×1 conv + BN turns it into ``num_tokens`` maps;
    each map, flattened, is one token of dimension ``grid²``. One
    transformer encoder layer mixes the tokens; a 1×1 conv projects them
    back to the input channels, and the result, resized to the input size,
    is added to the input. The tokenizer BN's γ scores the tokens, which
    are searched like channels (``searchable_norm``).

    Removing a token whose γ and β are 0 is not exactly output-preserving
    (the zero token still takes part in the attention softmax), unlike
    removing IR-block channels.

    Args:
        channels (int): Input and output channels.
        num_tokens (int): Tokens L. Defaults to 64.
        grid (int): Side of the token grid; the token dimension is
            ``grid²``. Defaults to 8.
        num_heads (int): Attention heads. Defaults to 4.
        norm_cfg (dict): Norm of the tokenizer. Defaults to BN.

    Example:
        >>> # model = dict(backbone=dict(type='SuperTicketHRNet',
        >>> #                            transformer=dict(num_tokens=64)))
        >>> m = TokenTransformer(18)
        >>> m(torch.rand(2, 18, 32, 32)).shape
        torch.Size([2, 18, 32, 32])
    """

    def __init__(self,
                 channels: int,
                 num_tokens: int = 64,
                 grid: int = 8,
                 num_heads: int = 4,
                 norm_cfg: dict = dict(type='BN', momentum=0.01, eps=1e-3),
                 init_cfg: Optional[dict] = None):
        super().__init__()
        self.grid = grid
        self.tokenizer = nn.Conv2d(channels + 2, num_tokens, 1, bias=False)
        self.norm_name, norm = build_norm_layer(norm_cfg, num_tokens)
        self.add_module(self.norm_name, norm)
        self.encoder = TokenMixer(grid * grid, num_heads)
        self.project = nn.Conv2d(num_tokens, channels, 1, bias=False)

    @property
    def searchable_norm(self) -> nn.Module:
        return getattr(self, self.norm_name)

    @property
    def channels(self) -> int:
        return self.tokenizer.out_channels

    def coupled_tensors(self):
        dims = {'tokenizer.weight': 0, 'project.weight': 1}
        for t in ('weight', 'bias', 'running_mean', 'running_var'):
            dims[f'{self.norm_name}.{t}'] = 0
        return dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        g = self.grid
        small = F.interpolate(x, size=(g, g), mode='bilinear',
                              align_corners=False)
        ys, xs = torch.meshgrid(
            torch.linspace(-1, 1, g, device=x.device, dtype=x.dtype),
            torch.linspace(-1, 1, g, device=x.device, dtype=x.dtype),
            indexing='ij')
        coords = torch.stack([ys, xs]).expand(b, 2, g, g)
        tokens = F.relu(self.searchable_norm(
            self.tokenizer(torch.cat([small, coords], dim=1))))
        num_tokens = tokens.shape[1]
        tokens = self.encoder(tokens.flatten(2))  # (B, L, g²)
        out = self.project(tokens.view(b, num_tokens, g, g))
        return x + F.interpolate(out, size=(h, w), mode='bilinear',
                                 align_corners=False)
