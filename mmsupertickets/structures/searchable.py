"""Discovery of the searchable structure of a model.

A *searchable unit* is any module that exposes ``searchable_norm`` (the BN
whose |γ| scores its channels), ``channels`` and ``coupled_tensors()`` (every
tensor sliced together with those channels). In the HR-NAS space the units
are the kernel paths of :class:`MultiKernelInvertedResidual` blocks (names
such as ``backbone.stage3.branch1.block2.paths.k5``) and, when enabled, the
tokens of :class:`TokenTransformer` modules.
Nothing here traces a graph: the model declares its units.
"""
from dataclasses import dataclass
from typing import Dict, List

import torch.nn as nn


def is_searchable_unit(module: nn.Module) -> bool:
    return (hasattr(module, 'searchable_norm')
            and hasattr(module, 'coupled_tensors'))


@dataclass
class SearchableUnit:
    """A named unit of channels that are searched together.

    Attributes:
        name (str): Module path of the unit inside the model.
        module (nn.Module): The unit itself.
    """
    name: str
    module: nn.Module

    @property
    def norm(self) -> nn.Module:
        return self.module.searchable_norm

    @property
    def channels(self) -> int:
        return self.module.channels


def find_searchable_units(model: nn.Module) -> List[SearchableUnit]:
    """Every searchable unit of ``model``, in module order."""
    return [SearchableUnit(name, m) for name, m in model.named_modules()
            if is_searchable_unit(m)]


def frozen_unit_widths(model: nn.Module) -> Dict[str, int]:
    """Widths of the units whose γ cannot move: the search never shrinks
    them."""
    return {u.name: u.channels for u in find_searchable_units(model)
            if not u.norm.weight.requires_grad}


def find_searchable_blocks(model: nn.Module) -> Dict[str, nn.Module]:
    """Blocks that hold units in a ``paths`` ModuleDict, by module path."""
    return {name: m for name, m in model.named_modules()
            if isinstance(getattr(m, 'paths', None), nn.ModuleDict)}


def require_searchable(model: nn.Module) -> List[SearchableUnit]:
    """The model's units, or a clear error for a model without any."""
    units = find_searchable_units(model)
    if not units and not find_searchable_blocks(model):
        raise TypeError(
            f'{type(model).__name__} has no searchable units: SuperTickets '
            f'hooks need a searchable backbone such as SuperTicketHRNet')
    return units
