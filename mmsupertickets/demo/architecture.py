"""Searchable channels of a supernet and a ticket, by stage and branch."""
from collections import OrderedDict
from typing import Dict, List, Sequence


def supernet_arch(config: str) -> Dict[str, int]:
    """Channels of every searchable unit of the config's full supernet."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    import mmsupertickets  # noqa: F401  (registers the models)
    from mmsupertickets.structures.searchable import find_searchable_units
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = MODELS.build(cfg.model)
    return {u.name: u.channels for u in find_searchable_units(model)}


def stage_of(unit: str) -> str:
    """Group a unit name by stage and branch for the architecture chart.

    ``backbone.stage3.branch1.block0.paths.k5`` -> ``stage3.branch1``,
    ``backbone.stage3.fuse.blocks.out1_in2.paths.k3`` -> ``stage3.fuse``,
    ``decode_head.block.paths.k3`` -> ``decode_head``,
    ``neck.down0.paths.k7`` -> ``neck``.
    """
    parts = unit.split('.')
    if parts[0] == 'backbone' and len(parts) > 2:
        return f'{parts[1]}.{parts[2]}'
    return parts[0]


def kernel_of(unit: str) -> str:
    """The kernel path of a unit name: ``...paths.k5`` -> ``k5``."""
    return unit.rsplit('.', 1)[-1]


def group_channels(arch: Dict[str, int]) -> 'OrderedDict[str, Dict]':
    """``{group: {kernel: channels}}`` in network order."""
    groups = OrderedDict()
    for unit, channels in arch.items():
        g = groups.setdefault(stage_of(unit), OrderedDict())
        k = kernel_of(unit)
        g[k] = g.get(k, 0) + channels
    return groups


def sort_groups(names: Sequence[str]) -> List[str]:
    """Stages in order (fuse, then branches), then the other groups."""

    def key(name):
        if name.startswith('stage'):
            stage, _, branch = name.partition('.')
            order = (0 if branch == 'fuse' else 1,
                     int(branch[6:]) if branch.startswith('branch') else -1)
            return (0, int(stage[5:]), order)
        return (1, 0, (0, 0))

    return sorted(names, key=key)


def all_groups(ticket: Dict, full: Dict) -> List[str]:
    """The groups of the supernet and the ticket (grouped), sorted."""
    return sort_groups(list(OrderedDict.fromkeys(list(full) + list(ticket))))
