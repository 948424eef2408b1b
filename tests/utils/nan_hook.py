"""Test-only hooks: a divergence injected at a chosen point of a run."""
import hashlib
import json
import os
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsupertickets.registry import HOOKS
from mmsupertickets.structures.searchable import find_searchable_units


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class InjectNaNHook(Hook):
    """Writes NaN into one tensor at iteration ``at_iter`` (1-based).

    Args:
        at_iter (int): The iteration.
        where (str): ``'before_iter'`` (the forward of that iteration sees
            it: the loss is NaN) or ``'after_iter'`` (after the step; the
            hooks that run later in ``after_train_iter`` see it).
        target (str): ``'gamma'`` (the first searchable BN γ) or
            ``'weight'`` (the first conv weight of the decode head).

    At the injection it prints ``NAN_INJECTED <name>`` and writes the
    SHA-256 of every checkpoint so far to ``<work_dir>/before_nan.json``.
    Give ``priority`` in the config to place it among the other hooks.
    """

    def __init__(self, at_iter, where='after_iter', target='weight'):
        assert where in ('before_iter', 'after_iter')
        self.at_iter = at_iter
        self.where = where
        self.target = target

    def _tensor(self, model):
        if self.target == 'gamma':
            unit = find_searchable_units(model)[-1]  # never frozen here
            return f'{unit.name}.{_norm_name(unit)}.weight', \
                unit.norm.weight
        name = next(n for n, p in model.named_parameters()
                    if n.startswith('decode_head') and p.dim() == 4)
        return name, dict(model.named_parameters())[name]

    @torch.no_grad()
    def _inject(self, runner):
        if runner.iter + 1 != self.at_iter:
            return
        name, tensor = self._tensor(_unwrap(runner.model))
        tensor.view(-1)[0] = float('nan')
        digests = {}
        for f in sorted(os.listdir(runner.work_dir)):
            if f.endswith('.pth'):
                with open(osp.join(runner.work_dir, f), 'rb') as fh:
                    digests[f] = hashlib.sha256(fh.read()).hexdigest()
        with open(osp.join(runner.work_dir, 'before_nan.json'), 'w') as f:
            json.dump(digests, f)
        print(f'NAN_INJECTED {name}', flush=True)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.where == 'before_iter':
            self._inject(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if self.where == 'after_iter':
            self._inject(runner)


def _norm_name(unit):
    return next(n for n, m in unit.module.named_modules()
                if m is unit.norm)
