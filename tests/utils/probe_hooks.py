"""Test-only hooks that drive and observe the SuperTickets hooks."""
import io
import os
import signal

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsupertickets.registry import HOOKS
from mmsupertickets.structures.searchable import find_searchable_units
from mmsupertickets.testing import KillChannelsHook  # noqa: F401


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class ShrinkProbeHook(Hook):
    """Records what happens right after each shrink and at the next step."""

    priority = 47  # after the pruning (45) and reactivation (46) hooks

    def __init__(self):
        self.records = []
        self._pending = None

    def after_shrink(self, runner, plan):
        from mmsupertickets.engine.hooks import ProgressivePruningHook
        pruning = next((h for h in runner.hooks
                        if isinstance(h, ProgressivePruningHook)), None)
        model = _unwrap(runner.model)
        rebuilt = [n for n in plan.slices if n.endswith('conv.weight')
                   or n.endswith('project.weight')]
        dense_after = None
        still_masked = []
        if pruning is not None:
            dense_after = all(n not in pruning.masks.masks for n in rebuilt)
            still_masked = sorted(pruning.masks.masks)
        from mmsupertickets.structures.searchable import find_searchable_units
        unit_prefixes = [u.name + '.' for u in find_searchable_units(model)]
        from mmsupertickets.engine.runner_surgery import built_optimizers
        optim_params = {id(p) for o in built_optimizers(runner)
                        for g in o.param_groups for p in g['params']}
        live = dict(model.named_parameters())
        self.records.append(dict(
            iter=runner.iter + 1, rebuilt=len(rebuilt),
            rebuilt_dense=dense_after, sliced=sorted(plan.slices),
            still_masked=still_masked, unit_prefixes=unit_prefixes,
            all_in_optimizer=bool(optim_params) and all(
                id(p) in optim_params for p in live.values()),
            optimizer_size=len(optim_params), live_params=len(live)))
        self._pending = {n: p.detach().clone() for n, p in live.items()
                         if p.requires_grad}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        # Runs before this iteration's events (priority 47 > 40/45 runs
        # after them), so a pending snapshot is from an earlier shrink.
        if self._pending is None or self.records[-1]['iter'] == \
                runner.iter + 1:
            return
        live = dict(_unwrap(runner.model).named_parameters())
        unchanged = [n for n, before in self._pending.items()
                     if torch.equal(before, live[n].detach())]
        self.records[-1]['unchanged_after_step'] = unchanged
        self._pending = None


@HOOKS.register_module()
class DumpTicketHook(Hook):
    """Saves this rank's architecture, masks and weights after the run."""

    priority = 'VERY_LOW'

    def before_train(self, runner):
        self.init = {n: p.detach().clone()
                     for n, p in _unwrap(runner.model).named_parameters()}

    def after_run(self, runner):
        import os.path as osp

        from mmengine.dist import get_rank

        from mmsupertickets.engine.hooks import ProgressivePruningHook
        model = _unwrap(runner.model)
        pruning = next(h for h in runner.hooks
                       if isinstance(h, ProgressivePruningHook))
        torch.save(
            dict(arch={u.name: u.channels
                       for u in find_searchable_units(model)},
                 masks=pruning.masks.state_dict(),
                 # BN running stats stay per rank (broadcast_buffers=False).
                 weights={n: p.detach() for n, p in
                          model.named_parameters()},
                 init_weights=self.init),
            osp.join(runner.work_dir, f'rank{get_rank()}.pth'))


@HOOKS.register_module()
class CrashHook(Hook):
    """Kills its own process with SIGKILL, as an out-of-memory killer or a
    preempted node would, at the point the environment variable
    ``SUPERTICKETS_TEST_CRASH`` names: ``iter:N`` after iteration N (and its
    checkpoint), ``save:N`` halfway through writing the checkpoint of
    iteration N. Unset: does nothing, so a resumed run with the same config
    can go on."""

    priority = 'LOWEST'  # after the checkpoint hook

    @staticmethod
    def _spec():
        kind, _, at = os.environ.get('SUPERTICKETS_TEST_CRASH', '').partition(
            ':')
        return kind, int(at) if at else None

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if self._spec() == ('iter', runner.iter + 1):
            os.kill(os.getpid(), signal.SIGKILL)

    def before_save_checkpoint(self, runner, checkpoint):
        if self._spec() != ('save', runner.iter + 1):
            return
        import mmsupertickets.utils.atomic_write as atomic_write
        write_atomically = atomic_write._write_atomically

        def write_half_then_die(path, write):

            def half(f):
                data = io.BytesIO()
                write(data)
                f.write(data.getvalue()[:len(data.getvalue()) // 2])
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)

            write_atomically(path, half)

        # Only the atomic_local checkpoint backend writes through this.
        atomic_write._write_atomically = write_half_then_die


@HOOKS.register_module()
class FreezeBNStatsHook(Hook):
    """Normalises with the running statistics during training too, so that
    a sample's output does not depend on the other samples of its batch
    (and a rank's batch then is no different from half a global batch)."""

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        for module in _unwrap(runner.model).modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
