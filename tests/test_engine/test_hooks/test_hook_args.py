"""Hook arguments and the ticket state read back from a checkpoint are
checked where they enter (issue 21, probes 1, 5, 11, 12)."""
import copy
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from tiny_configs import seg_cfg

import mmsupertickets  # noqa: F401
from mmsupertickets.engine.hooks import (
    OneShotPruningHook,
    ProgressivePruningHook,
    SuperNetSearchHook,
    TicketTransferHook,
)
from mmsupertickets.structures.shrink_plan import EmptyStageError
from mmsupertickets.structures.value_checks import MAX_INPUT_SIDE
from mmsupertickets.utils.checkpoint_io import (
    load_checkpoint_file,
    safe_checkpoint_loading,
)

NAN, INF = float('nan'), float('inf')


@pytest.mark.parametrize('kwargs,named', [
    (dict(threshold=NAN), 'threshold=nan'),
    (dict(threshold=INF), 'threshold=inf'),
    (dict(threshold=-1e-3), 'threshold=-0.001'),
    (dict(rho='1e-3'), "rho='1e-3'"),
    (dict(rho=NAN), 'rho=nan'),
    (dict(warmup=NAN), 'warmup=nan'),
    (dict(min_macs=INF), 'min_macs=inf'),
    (dict(target_macs=INF), 'target_macs=inf'),
    (dict(shrink_interval=INF), 'shrink_interval=inf'),
    (dict(channel_divisor=2.5), 'channel_divisor=2.5'),
    (dict(input_shape=[NAN, 128]), r'input_shape=\[nan, 128\]'),
    (dict(input_shape=[60000, 60000]), r'input_shape=\[60000, 60000\]'),
    (dict(min_macs_shape=(0, 224)), r'min_macs_shape=\(0, 224\)'),
    (dict(by_epoch='false'), "by_epoch='false'"),
])
def test_search_hook_refuses_bad_values_naming_the_key(kwargs, named):
    with pytest.raises(ValueError, match=named):
        SuperNetSearchHook(**kwargs)


def test_input_shape_bound_is_stated():
    with pytest.raises(ValueError, match=f'in \\[1, {MAX_INPUT_SIDE}\\]'):
        SuperNetSearchHook(input_shape=(MAX_INPUT_SIDE + 1, 8))
    hook = SuperNetSearchHook(input_shape=(MAX_INPUT_SIDE, 8.0))
    assert hook.input_shape == [MAX_INPUT_SIDE, 8]


@pytest.mark.parametrize('kwargs,named', [
    (dict(target_sparsity='0.9'), "target_sparsity='0.9'"),
    (dict(target_sparsity=NAN), 'target_sparsity=nan'),
    (dict(step=NAN), 'step=nan'),
    (dict(prune_interval=INF), 'prune_interval=inf'),
    (dict(seed=-1), 'seed=-1'),
    (dict(exclude='conv_seg'), "exclude='conv_seg'"),
    (dict(exclude=['(']), "exclude: '\\('"),
    (dict(scorer=5), 'scorer=5'),
    (dict(schedule=dict(type='cubic', initial=NAN)), 'initial=nan'),
])
def test_pruning_hook_refuses_bad_values_naming_the_key(kwargs, named):
    with pytest.raises(ValueError, match=named):
        ProgressivePruningHook(**kwargs)


@pytest.mark.parametrize('kwargs,named', [
    (dict(ratio=NAN), 'ratio=nan'),
    (dict(ratio='0.5'), "ratio='0.5'"),
    (dict(ratio=0.5, snip_batches=0), 'snip_batches=0'),
    (dict(ratio=0.5, iterative='yes'), "iterative='yes'"),
])
def test_oneshot_hook_refuses_bad_values_naming_the_key(kwargs, named):
    with pytest.raises(ValueError, match=named):
        OneShotPruningHook(**kwargs)


@pytest.mark.parametrize('kwargs,named', [
    (dict(ticket=None), 'ticket=None'),
    (dict(ticket='t.pth', modules='backbone'), "modules='backbone'"),
    (dict(ticket='t.pth', weights='no'), "weights='no'"),
    (dict(ticket='t.pth', reinit='head'), "reinit='head'"),
    (dict(ticket='t.pth', graft=['neck']), r"graft=\['neck'\]"),
    (dict(ticket='t.pth', graft=dict(neck=None)), "graft\\['neck'\\]"),
])
def test_transfer_hook_refuses_bad_values_naming_the_key(kwargs, named):
    with pytest.raises(ValueError, match=named):
        TicketTransferHook(**kwargs)


def _hooks(threshold=1e-3):
    return [
        dict(type='SuperNetSearchHook', rho=1e-3, warmup=2, min_macs=0,
             shrink_interval=2, threshold=threshold, by_epoch=False),
        dict(type='ProgressivePruningHook', target_sparsity=0.5,
             prune_interval=2, step=0.25, by_epoch=False),
    ]


def test_a_shrink_that_would_empty_a_stage_stops_the_run(
        cityscapes_root, tmp_path):
    """threshold=2.0 is above every |γ| (they start at 1): the first shrink
    would remove every kernel path. The run stops there, naming the event
    and the stages, and saves no ticket."""
    cfg = seg_cfg(cityscapes_root, str(tmp_path), max_iters=4,
                  hooks=_hooks(threshold=2.0))
    runner = Runner.from_cfg(Config(cfg))
    with pytest.raises(EmptyStageError) as info:
        runner.train()
    message = str(info.value)
    assert 'shrink at iter 2' in message
    assert 'backbone.stage1: all' in message and 'decode_head: all' in \
        message
    assert 'threshold=2' in message
    assert not list(tmp_path.glob('*.pth'))


# -- the ticket state read back from a checkpoint --------------------------
@pytest.fixture(scope='module')
def ticket(cityscapes_root, tmp_path_factory):
    """A tiny run with a shrink and prune events, its config and last
    checkpoint (loaded)."""
    root = tmp_path_factory.mktemp('ticket_state')
    cfg = seg_cfg(cityscapes_root, str(root / 'work'), max_iters=4,
                  hooks=_hooks())
    Runner.from_cfg(Config(copy.deepcopy(cfg))).train()
    path = str(root / 'work' / 'iter_4.pth')
    return dict(cfg=cfg, path=path, checkpoint=load_checkpoint_file(path))


def _load_crafted(ticket, tmp_path, edit):
    """Load the run's checkpoint with ``edit`` applied to its ticket meta
    through a runner built from the run's config (as --resume and
    tools/test.py load it)."""
    ckpt = copy.deepcopy(ticket['checkpoint'])
    edit(ckpt['supertickets'])
    path = str(tmp_path / 'crafted.pth')
    torch.save(ckpt, path)
    cfg = copy.deepcopy(ticket['cfg'])
    cfg['work_dir'] = str(tmp_path / 'load')
    runner = Runner.from_cfg(Config(cfg))
    with safe_checkpoint_loading():
        runner.load_checkpoint(path)
    return runner


def _set(section, key, value):
    def edit(meta):
        meta[section][key] = value
    return edit


def _first_mask(change):
    def edit(meta):
        masks = meta['pruning']['masks']
        name = next(iter(masks))
        masks[name] = change(masks[name])
    return edit


def _all_masks_false(meta):
    masks = meta['pruning']['masks']
    for name in masks:
        masks[name] = torch.zeros_like(masks[name])


@pytest.mark.parametrize('edit,named', [
    (_set('pruning', 'events', 'abc'), "pruning.events='abc'"),
    (_set('pruning', 'last_ratio', NAN), 'pruning.last_ratio=nan'),
    (_first_mask(lambda m: m.tolist()), 'must be a bool tensor, got a list'),
    (_first_mask(lambda m: m.float()), 'got dtype torch.float32'),
    (_first_mask(lambda m: m.reshape(-1)),
     r'has shape \(\d+,\) but the weight'),
    (_all_masks_false, r'keep none of their \d+ weights \(sparsity 1.0'),
    (_set('search', 'input_shape', [60000, 60000]),
     r'search.input_shape=\[60000, 60000\]'),
    (_set('search', 'input_shape', [NAN, 64]), 'search.input_shape'),
    (_set('search', 'supernet_cost', dict(params=1, macs=NAN)),
     'search.supernet_cost.macs=nan'),
    (_set('search', 'controlled_rho', 'x'), "search.controlled_rho='x'"),
])
def test_ticket_state_fields_are_checked_at_load(ticket, tmp_path, edit,
                                                 named):
    with pytest.raises(ValueError, match=named) as info:
        _load_crafted(ticket, tmp_path, edit)
    assert 'supertickets.' in str(info.value)


def test_the_run_loads_its_own_state(ticket, tmp_path):
    runner = _load_crafted(ticket, tmp_path, lambda meta: None)
    pruning = next(h for h in runner.hooks
                   if isinstance(h, ProgressivePruningHook))
    saved = ticket['checkpoint']['supertickets']['pruning']
    assert pruning.events == saved['events'] >= 1
    assert set(pruning.masks.masks) == set(saved['masks'])
    assert math.isfinite(pruning.sparsity(runner))
