"""What the event log says in an iteration-based run whose hooks count
epochs (#22.9): the hooks' epoch, not the runner's 0; a guarded shrink names
the shape its MACs are counted at; a resume prints no MessageHub warning."""
import json

import probe_hooks  # noqa: F401  (registers KillChannelsHook)
from mmengine.config import Config
from mmengine.runner import Runner
from tiny_configs import seg_cfg

# 8 training images, batch 2: the hooks' epoch is 4 iterations.
ITERS_PER_EPOCH = 4


def run(cityscapes_root, work_dir, max_iters, resume=False):
    hooks = [
        dict(type='KillChannelsHook', at_iters=(4, ), share=0.2),
        # A guard no shrink passes before the last iteration.
        dict(type='SuperNetSearchHook', rho=1e-3, warmup=0, min_macs=1e15,
             shrink_interval=1, input_shape=(32, 64)),
        dict(type='ProgressivePruningHook', target_sparsity=0.5,
             prune_interval=1, step=0.2),
    ]
    cfg = seg_cfg(cityscapes_root, str(work_dir), max_iters=max_iters,
                  hooks=hooks)
    cfg.update(log_level='INFO', resume=resume)
    Runner.from_cfg(Config(cfg)).train()
    logs = sorted(work_dir.glob('*/*.log'))
    return logs[-1].read_text()


def test_events_name_the_hooks_epoch_and_the_guard_shape(cityscapes_root,
                                                         tmp_path):
    work_dir = tmp_path / 'work'
    log = run(cityscapes_root, work_dir, max_iters=8)
    lines = [ln for ln in log.splitlines() if '[SuperTickets]' in ln]
    events = [json.loads(ln) for ln in
              (work_dir / 'supertickets_events.jsonl').read_text()
              .splitlines()]
    assert [e['iter'] for e in events if 'prune' in e['event']] == [4, 8]
    for e in events:
        # The 1-based epoch of the iteration (events at epoch ends close
        # it; the supernet profile is at the first iteration).
        assert e['epoch'] == -(-e['iter'] // ITERS_PER_EPOCH)
        assert f"{e['event']} at iter {e['iter']} (epoch {e['epoch']})" \
            in log
    assert '(epoch 0)' not in log
    # Iteration 4 has dead channels, but fewer MACs than min_macs, counted
    # at min_macs_shape (224x224), not at input_shape (32x64).
    skipped, = [ln for ln in lines if 'shrink skipped' in ln]
    assert 'at iter 4:' in skipped
    assert 'counted at min_macs_shape=224x224' in skipped
    # The last shrink has no guard.
    final, = [e for e in events if e['event'] == 'final shrink']
    assert (final['iter'], final['epoch']) == (8, 2)
    assert final['removed_channels'] > 0

    # A resume from iteration 4 warns about no MessageHub key.
    resumed = run(cityscapes_root, work_dir, max_iters=8, resume=True)
    assert 'resumed epoch: 0, iter: 8' in resumed
    assert 'resumed key' not in resumed, [
        ln for ln in resumed.splitlines() if 'resumed key' in ln]
