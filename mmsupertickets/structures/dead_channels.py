"""Which channels of the searchable units a shrink removes."""
from typing import Dict, List, Tuple

import torch

from .channel_rounding import round_live_channels

__all__ = ['live_channel_masks', 'kept_indices']


def live_channel_masks(units: List, ema_units: Dict[str, object],
                       threshold: float, final: bool,
                       guard_macs_per_channel: Dict[str, float],
                       divisor: int = 1):
    """Live channels of every unit whose γ trains: ``|γ| > threshold``.

    With an EMA copy, a channel lives while the model *or* the EMA keeps
    it, and at the final shrink the EMA alone decides (the EMA weights are
    the ones exported). Widths are rounded to multiples of ``divisor`` by
    |γ|. Units with a frozen γ are skipped: their |γ| is whatever the
    pretrained weights hold, not a decision of the search.

    Args:
        units (list): The model's searchable units.
        ema_units (dict): The EMA copy's units by name (empty: no EMA).
        threshold (float): |γ| at or below which a channel is dead.
        final (bool): Whether this is the run's last shrink.
        guard_macs_per_channel (dict): MACs of one channel per unit, at
            the guard's size.
        divisor (int): Widths are multiples of it (or 0).

    Returns:
        tuple: ``(live, magnitude, channels, ema_dead_macs)``: the bool
        live mask, the |γ| that ranked it and the width, per unit name, and
        the guard MACs of the channels the EMA (or, without one, the model)
        calls dead.

    Example:
        >>> from types import SimpleNamespace
        >>> bn = torch.nn.BatchNorm2d(4)
        >>> bn.weight.data = torch.tensor([0., 1., 0., 1.])
        >>> unit = SimpleNamespace(name='u', norm=bn, channels=4)
        >>> live, _, _, dead = live_channel_masks([unit], {}, 1e-3, False,
        ...                                       {'u': 10.0})
        >>> live['u'].tolist(), dead
        ([False, True, False, True], 20.0)
    """
    live, magnitude, channels = {}, {}, {}
    ema_dead_macs = 0.0
    for u in units:
        if not u.norm.weight.requires_grad:
            continue
        mask = u.norm.weight.detach().abs() > threshold
        source = u
        per_channel = guard_macs_per_channel.get(u.name, 0)
        if u.name in ema_units:
            ema_live = ema_units[u.name].norm.weight.detach().abs() \
                > threshold
            mask = ema_live if final else (mask | ema_live)
            source = ema_units[u.name] if final else u
            ema_dead_macs += int((~ema_live).sum()) * per_channel
        else:
            ema_dead_macs += int((~mask).sum()) * per_channel
        magnitude[u.name] = source.norm.weight.detach().abs().cpu()
        live[u.name] = round_live_channels(mask.cpu(), magnitude[u.name],
                                           divisor)
        channels[u.name] = u.channels
    return live, magnitude, channels, ema_dead_macs


def kept_indices(live: Dict[str, torch.Tensor], channels: Dict[str, int],
                 guard_macs_per_channel: Dict[str, float]
                 ) -> Tuple[Dict[str, torch.Tensor], float]:
    """``{unit: kept channel indices}`` of the units that lose channels,
    and the guard MACs of the channels that go.

    Example:
        >>> keep, dead = kept_indices({'u': torch.tensor([True, False])},
        ...                           {'u': 2}, {'u': 5.0})
        >>> keep['u'].tolist(), dead
        ([0], 5.0)
    """
    keep, dead_macs = {}, 0.0
    for name, mask in live.items():
        num_dead = channels[name] - int(mask.sum())
        if num_dead:
            keep[name] = mask.nonzero().flatten()
            dead_macs += num_dead * guard_macs_per_channel.get(name, 0)
    return keep, dead_macs
