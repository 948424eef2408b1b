"""A diverged run stops before a shrink, prune or checkpoint acts on it.

Each run is ``tools/train.py`` in a subprocess with NaN written into one
tensor at a chosen point (``InjectNaNHook``): the run must exit non-zero
with a message naming what is not finite and the iteration, leave the
checkpoints written before the NaN byte for byte as they were, and write
none after it.
"""
import hashlib
import json
import os
import re

import pytest
import torch
import torch.nn as nn
from tiny_configs import seg_cfg
from train_runs import train

from mmsupertickets.engine.finite_checks import (
    DivergenceError,
    check_finite_losses,
    check_finite_modules,
)


def _digests(work_dir):
    out = {}
    for f in sorted(os.listdir(work_dir)):
        if f.endswith('.pth'):
            with open(os.path.join(work_dir, f), 'rb') as fh:
                out[f] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _events(work_dir):
    path = os.path.join(work_dir, 'supertickets_events.jsonl')
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


# (at_iter, where, target, priority, what the message says it stopped).
# Search shrinks every 4 steps (priority 40), pruning prunes every 3 (45),
# checkpoints every 4 (CheckpointHook, VERY_LOW).
CASES = {
    # The forward of iteration 7 sees the NaN: the loss check fires.
    'loss': (7, 'before_iter', 'weight', 'NORMAL',
             r'iteration 7: the loss is not finite \(loss=nan'),
    # NaN γ after the loss, right before the shrink of iteration 4.
    'shrink': (4, 'after_iter', 'gamma', 39,
               r'iteration 4: parameter {name} has 1 of \d+ values NaN '
               r'.*Stopped before the shrink'),
    # NaN weight after the search hook, right before prune 2 (iter 6).
    'prune': (6, 'after_iter', 'weight', 41,
              r'iteration 6: parameter {name} has 1 of \d+ values NaN '
              r'.*Stopped before the prune 2'),
    # NaN after every SuperTickets event of iteration 8, before its
    # checkpoint: before_save_checkpoint stops the save.
    'checkpoint': (8, 'after_iter', 'weight', 'LOW',
                   r'iteration 8: parameter {name} has 1 of \d+ values NaN '
                   r'.*Stopped before its checkpoint \(iter 8'),
}


@pytest.mark.parametrize('case', [
    c if c == 'loss' else pytest.param(c, marks=pytest.mark.slow)
    for c in CASES])
def test_divergence_stops_the_run_before_it_acts(cityscapes_root, tmp_path,
                                                  case):
    at, where, target, priority, message = CASES[case]
    hooks = [
        dict(type='SuperNetSearchHook', rho=1e-3, warmup=2, min_macs=0,
             shrink_interval=4, by_epoch=False),
        dict(type='ProgressivePruningHook', target_sparsity=0.5,
             prune_interval=3, step=0.2, by_epoch=False),
        dict(type='InjectNaNHook', at_iter=at, where=where, target=target,
             priority=priority),
    ]
    cfg = seg_cfg(cityscapes_root, None, max_iters=12, hooks=hooks)
    cfg['custom_imports']['imports'].append('nan_hook')
    work_dir = tmp_path / 'run'
    code, out = train(cfg, work_dir)
    assert code != 0, out[-3000:]
    name = re.search(r'NAN_INJECTED (\S+)', out).group(1)
    assert 'DivergenceError' in out, out[-3000:]
    assert re.search(message.format(name=re.escape(repr(name))), out), \
        out[-3000:]

    # What was saved before the NaN is untouched, nothing after it.
    with open(work_dir / 'before_nan.json') as f:
        before = json.load(f)
    assert sorted(before) == (['iter_4.pth'] if at > 4 else [])
    assert _digests(work_dir) == before
    if at > 4:  # still the resume point
        assert (work_dir / 'last_checkpoint').read_text().strip().endswith(
            'iter_4.pth')
    # No event acted on the NaN (an event of the NaN iteration would be
    # logged with that iteration).
    assert all(e['iter'] < at for e in _events(work_dir)), _events(work_dir)


def test_loss_check_names_every_non_finite_loss():
    outputs = dict(loss=torch.tensor(float('nan')),
                   **{'decode.loss_ce': torch.tensor(float('inf')),
                      'decode.loss_aux': torch.tensor(0.5),
                      'decode.acc_seg': torch.tensor(float('nan'))})
    with pytest.raises(DivergenceError, match=r'iteration 3: .*loss=nan, '
                       r'decode\.loss_ce=inf\)') as info:
        check_finite_losses(outputs, 3)
    # A NaN metric is no divergence.
    assert 'acc_seg' not in str(info.value)
    check_finite_losses(dict(loss=torch.tensor(1.0),
                             acc=float('nan')), 3)


def test_model_check_names_the_first_non_finite_tensor():
    net = nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2))
    check_finite_modules({'': net}, 1, 'the prune')
    net[1].running_var[1] = float('inf')
    with torch.no_grad():
        net[1].weight[0] = float('nan')
    with pytest.raises(DivergenceError,
                       match=r"iteration 5: parameter '1\.weight' has 1 of "
                       r'2 values NaN .*Stopped before the prune'):
        check_finite_modules({'': net}, 5, 'the prune')
    with torch.no_grad():
        net[1].weight[0] = 1
    with pytest.raises(DivergenceError,
                       match=r"EMA buffer '1\.running_var' has 1 of 2 "
                       r'values inf'):
        check_finite_modules({'': nn.Identity(), 'EMA': net}, 5, 'x')
