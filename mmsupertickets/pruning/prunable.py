"""The prunable set: which weights of a model unstructured pruning scores."""
import re
from typing import Dict, Sequence

import torch.nn as nn

__all__ = ['prunable_weights', 'DEFAULT_EXCLUDE']


# Final classifiers of the stock mmseg / mmpose / mmpretrain heads.
# The stock heads' final classifiers: mmseg's conv_seg (and the auxiliary
# head), mmpose's heatmap final_layer, mmpretrain's LinearClsHead fc and
# VisionTransformerClsHead layers.head.
DEFAULT_EXCLUDE = (r'(^|\.)conv_seg\.', r'^head\.final_layer\.',
                   r'^head\.fc\.', r'^head\.layers\.head\.',
                   r'^auxiliary_head\.')


def prunable_weights(model: nn.Module,
                     exclude: Sequence[str] = DEFAULT_EXCLUDE,
                     trainable_only: bool = False
                     ) -> Dict[str, nn.Parameter]:
    """Weights of every Conv2d and Linear not matched by ``exclude``.

    Biases, BN parameters and attention projections are never pruned.

    Args:
        model (nn.Module): The (unwrapped) model.
        exclude (Sequence[str]): Regexes of weight names left out.
        trainable_only (bool): Leave out frozen weights
            (``requires_grad=False``): they have no gradient to score and
            cannot adapt to a mask. The pruning hooks pass True.
            Defaults to False.
    """
    patterns = [re.compile(p) for p in exclude]
    # Attention reads its out_proj weight directly, bypassing the module's
    # forward (and so a forward-time mask): never prune inside it.
    attention = [n + '.' for n, m in model.named_modules()
                 if isinstance(m, nn.MultiheadAttention)]
    out = {}
    for name, m in model.named_modules():
        if any(name.startswith(a) for a in attention):
            continue
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            pname = f'{name}.weight' if name else 'weight'
            if trainable_only and not m.weight.requires_grad:
                continue
            if not any(p.search(pname) for p in patterns):
                out[pname] = m.weight
    return out
