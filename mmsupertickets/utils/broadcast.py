"""Decisions made on one rank and shared with every rank."""
from typing import Any

import torch
from mmengine import dist as mm_dist

__all__ = ['broadcast_tensor_', 'broadcast_object']

def broadcast_tensor_(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``tensor`` in place with its value on rank ``src``.

    Decisions such as pruning masks must be identical on every rank:
    compute them on ``src`` and broadcast. Does nothing when not
    distributed.

    Args:
        tensor (torch.Tensor): Same shape and dtype on every rank.
        src (int): The rank whose value wins. Defaults to 0.

    Returns:
        torch.Tensor: ``tensor`` itself, for chaining.
    """
    mm_dist.broadcast(tensor, src=src)
    return tensor


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Return rank ``src``'s ``obj`` on every rank.

    For small picklable values (an architecture spec, a list of channel
    indices). Returns ``obj`` unchanged when not distributed.

    Args:
        obj: Any picklable object; only the one on ``src`` matters.
        src (int): The rank whose object is returned. Defaults to 0.

    Returns:
        The object from rank ``src``.
    """
    holder = [obj]
    mm_dist.broadcast_object_list(holder, src=src)
    return holder[0]
