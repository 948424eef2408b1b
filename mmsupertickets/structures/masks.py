"""Unstructured weight masks applied in the forward pass.

Masks are kept out of the model: they are not buffers (DDP would broadcast
them every step) and they never change the model's ``state_dict`` keys (so a
checkpoint stays loadable by a plain model). A forward pre-hook puts
``weight * mask`` in front of the layer's parameter for the duration of one
forward call; the stored values are untouched, receive no gradient through
the masked positions, and are there again when a mask is reset
(reactivation). ``torch.nn.utils.prune``/``parametrize`` are not used
because both rename the weight in the ``state_dict``.

The boolean masks are the state; the forward multiplies by a cached copy in
the weight's dtype, since ``w * bool_mask`` would convert the whole mask to
float again in every forward and in every backward.
"""
from typing import Dict, Iterable

import torch
import torch.nn as nn

from .shrink_plan import ShrinkPlan
from .value_checks import check_mask, check_masks


def _split(name: str):
    return name.rsplit('.', 1) if '.' in name else ('', name)


def _masked_pre_hook(mask_holder: 'WeightMasks', name: str, param: str):

    def hook(module, args):
        if name in mask_holder.masks:
            w = module._parameters[param]
            # Instance attribute shadows the registered Parameter only
            # for this call; parameters() and state_dict() are unaffected.
            module.__dict__[param] = w * mask_holder._factor(name, w)
    return hook


def _masked_post_hook(param: str):

    def hook(module, args, output):
        module.__dict__.pop(param, None)
    return hook


class WeightMasks:
    """Boolean keep-masks for named weights of one model.

    Args:
        param_attr (str): The masked attribute of each layer.
            Defaults to ``'weight'``.

    The holder is the only writer of its masks: :meth:`set`,
    :meth:`reset`, :meth:`follow_plan` and :meth:`load_state_dict` change
    them; everything else reads through :meth:`names`, :meth:`get`,
    :meth:`densities` and :meth:`state_dict`.

    Example:
        >>> import torch.nn as nn
        >>> model = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False))
        >>> masks = WeightMasks()
        >>> masks.set(model, '0.weight', torch.tensor([True, False]).view(
        ...     2, 1, 1, 1))
        >>> masks.densities(['0.weight'])
        {'0.weight': 0.5}
        >>> float(model(torch.ones(1, 1, 1, 1)).flatten()[1])
        0.0
    """

    def __init__(self, param_attr: str = 'weight'):
        self.param_attr = param_attr
        self.masks: Dict[str, torch.Tensor] = {}
        # name -> (bool mask, its _version, the mask in the weight's dtype)
        self._factors: Dict[str, tuple] = {}
        self._handles: Dict[str, list] = {}

    # -- attaching -------------------------------------------------------
    def _attach(self, model: nn.Module, name: str) -> None:
        if name in self._handles:
            return
        mod_name, attr = _split(name)
        if attr != self.param_attr:
            raise ValueError(f'can only mask {self.param_attr!r} tensors, '
                             f'got {name!r}')
        module = model.get_submodule(mod_name)
        self._handles[name] = [
            module.register_forward_pre_hook(
                _masked_pre_hook(self, name, attr)),
            module.register_forward_hook(
                _masked_post_hook(attr), always_call=True)
        ]

    def _factor(self, name: str, weight: torch.Tensor) -> torch.Tensor:
        """The mask of ``name`` in ``weight``'s dtype and device, cached.

        Rebuilt whenever the bool mask was replaced or edited in place, or
        the weight moved or changed dtype, so the copy can never go stale.
        """
        mask = self.masks[name]
        cached = self._factors.get(name)
        if (cached is not None and cached[0] is mask
                and cached[1] == mask._version
                and cached[2].dtype == weight.dtype
                and cached[2].device == weight.device):
            return cached[2]
        f = mask.to(device=weight.device, dtype=weight.dtype)
        self._factors[name] = (mask, mask._version, f)
        return f

    def names(self) -> list:
        """Names of the masked weights."""
        return list(self.masks)

    def get(self, name: str):
        """The bool keep-mask of ``name``, or None when it is dense."""
        return self.masks.get(name)

    def __len__(self) -> int:
        return len(self.masks)

    def _detach(self, name: str) -> None:
        for h in self._handles.pop(name, []):
            h.remove()

    def set(self, model: nn.Module, name: str, mask: torch.Tensor,
            source: str = 'the masks') -> None:
        """Mask the weight ``name`` of ``model`` with a boolean keep-mask
        of the weight's shape (other dtypes and shapes are refused, the
        error naming ``source``)."""
        w = model.get_parameter(name)
        # A float or int mask is refused, not cast: 0.5 is no decision.
        check_mask(mask, name, w.shape, source)
        self.masks[name] = mask.to(device=w.device)
        self._factors.pop(name, None)
        self._attach(model, name)

    def reset(self, names: Iterable[str]) -> int:
        """Make the masks of ``names`` dense; returns weights reactivated."""
        revived = 0
        for name in list(names):
            mask = self.masks.pop(name, None)
            self._factors.pop(name, None)
            if mask is not None:
                revived += int(mask.numel() - mask.sum())
            self._detach(name)
        return revived

    def clear(self) -> None:
        self.reset(list(self.masks))

    # -- following a shrink ----------------------------------------------
    def follow_plan(self, plan: ShrinkPlan) -> None:
        """Slice masks like their weights; forget masks of removed layers."""
        for name, (dim, idx) in plan.slices.items():
            if name in self.masks:
                self.masks[name] = self.masks[name].index_select(
                    dim, idx.to(self.masks[name].device))
                self._factors.pop(name, None)
        self.reset([n for n in plan.removed_tensors if n in self.masks])
        # Hooks of deleted modules went with them; drop their handles.
        for n in plan.removed_tensors:
            self._handles.pop(n, None)

    # -- statistics ------------------------------------------------------
    def densities(self, names: Iterable[str]) -> Dict[str, float]:
        """Kept fraction of each named weight (1.0 where unmasked)."""
        return {n: (float(self.masks[n].sum()) / max(self.masks[n].numel(), 1)
                    if n in self.masks else 1.0) for n in names}

    def kept_and_total(self, model: nn.Module,
                       names: Iterable[str]) -> tuple:
        kept = total = 0
        for n in names:
            numel = model.get_parameter(n).numel()
            mask = self.masks.get(n)
            kept += numel if mask is None else int(mask.sum())
            total += numel
        return kept, total

    # -- baking and serialisation ----------------------------------------
    @torch.no_grad()
    def bake(self, model: nn.Module) -> None:
        """Write zeros where masks are zero (for export); masks stay."""
        for name, mask in self.masks.items():
            model.get_parameter(name).masked_fill_(~mask, 0)

    def state_dict(self) -> Dict[str, torch.Tensor]:
        return {n: m.cpu() for n, m in self.masks.items()}

    def load_state_dict(self, model: nn.Module,
                        state: Dict[str, torch.Tensor],
                        source: str = 'the loaded masks') -> None:
        """Load masks, checking every name, dtype and shape against
        ``model``; masks that keep no weight at all are refused. Errors
        name ``source`` (e.g. the file the masks come from)."""
        check_masks(state, source)
        params = dict(model.named_parameters())
        missing = sorted(n for n in state if n not in params)
        if missing:
            raise KeyError(
                f'{source}: {len(missing)} masks are for weights that this '
                f'model does not have, e.g. {missing[:3]}: the checkpoint '
                'was drawn from another architecture')
        self.clear()
        for name, mask in state.items():
            self.set(model, name, mask, source)

    def detach_all(self) -> None:
        for name in list(self._handles):
            self._detach(name)

    def reattach(self, model: nn.Module) -> None:
        """Install hooks on ``model`` for every mask (e.g. a rebuilt model)."""
        self.detach_all()
        for name in self.masks:
            self._attach(model, name)
