"""Transferring tickets across tasks with fixed masks."""
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from tiny_configs import cls_cfg, seg_cfg

import mmsupertickets  # noqa: F401
from mmsupertickets.engine.hooks import ProgressivePruningHook
from mmsupertickets.pruning.prunable import DEFAULT_EXCLUDE
from mmsupertickets.structures.searchable import find_searchable_units
from mmsupertickets.utils.checkpoint_io import load_checkpoint_file

DRAW = [
    dict(type='KillChannelsHook', at_iters=(2, )),
    dict(type='SuperNetSearchHook', rho=1e-3, warmup=1, min_macs=0,
         shrink_interval=2, by_epoch=False),
    dict(type='ProgressivePruningHook', target_sparsity=0.6,
         prune_interval=2, step=0.3, by_epoch=False),
    dict(type='IterativeReactivationHook'),
]


def run(cfg):
    import probe_hooks  # noqa: F401
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    return runner


@pytest.fixture(scope='module')
def seg_ticket(cityscapes_root, tmp_path_factory):
    wd = str(tmp_path_factory.mktemp('seg_ticket'))
    run(seg_cfg(cityscapes_root, wd, max_iters=4, hooks=DRAW))
    return f'{wd}/iter_4.pth'


def transfer_hooks(ticket, **kw):
    return [dict(type='TicketTransferHook', ticket=ticket, **kw),
            dict(type='ProgressivePruningHook', prune_interval=None)]


def backbone_arch(model):
    return {u.name: u.channels for u in find_searchable_units(model)
            if u.name.startswith('backbone.')}


@pytest.mark.parametrize('weights', [True, False])
def test_whole_network_transfer_keeps_masks_fixed(seg_ticket,
                                                  cityscapes_root, tmp_path,
                                                  weights):
    ticket = load_checkpoint_file(seg_ticket)
    cfg = seg_cfg(cityscapes_root, str(tmp_path), max_iters=3,
                  hooks=transfer_hooks(seg_ticket, weights=weights))
    runner = run(cfg)
    model = runner.model
    meta = ticket['supertickets']
    assert {u.name: u.channels for u in find_searchable_units(model)} == \
        {k: v for k, v in meta['arch'].items() if v}
    masks = next(h for h in runner.hooks
                 if isinstance(h, ProgressivePruningHook)).masks.masks
    assert masks.keys() == meta['pruning']['masks'].keys()
    for k, m in masks.items():
        assert torch.equal(m.cpu(), meta['pruning']['masks'][k])
        # Masked weights were zeroed and stayed zero through fine-tuning.
        assert torch.all(model.get_parameter(k)[~m] == 0)
    w = 'backbone.stem.0.conv.weight'
    moved_from_ticket = not torch.equal(
        model.get_parameter(w).detach() * masks[w],
        ticket['state_dict'][w] * masks[w])
    assert moved_from_ticket  # fine-tuned (or freshly initialised)
    if weights:
        # Only three steps of fine-tuning: still close to the ticket.
        diff = (model.get_parameter(w).detach() - ticket['state_dict'][w] *
                masks[w]).abs().max()
        assert diff < 0.05


def test_backbone_transfer_from_classification(imagenet_root,
                                               cityscapes_root, tmp_path):
    wd = str(tmp_path / 'cls')
    run(cls_cfg(imagenet_root, wd, max_epochs=2, hooks=[
        dict(h, by_epoch=True, **({'shrink_interval': 1} if 'shrink_interval'
                                  in h else {'prune_interval': 1}
                                  if 'prune_interval' in h else {}))
        if h['type'] in ('SuperNetSearchHook', 'ProgressivePruningHook')
        else h for h in DRAW]))
    ticket = load_checkpoint_file(f'{wd}/epoch_2.pth')
    runner = run(seg_cfg(cityscapes_root, str(tmp_path / 'seg'), max_iters=2,
                         hooks=transfer_hooks(f'{wd}/epoch_2.pth',
                                              modules=('backbone', ))))
    arch = {k: v for k, v in ticket['supertickets']['arch'].items()
            if v and k.startswith('backbone.')}
    assert backbone_arch(runner.model) == arch
    masks = next(h for h in runner.hooks
                 if isinstance(h, ProgressivePruningHook)).masks.masks
    assert masks and all(k.startswith('backbone.') for k in masks)


def test_transfer_without_fixed_mask_holder_is_refused(seg_ticket,
                                                       cityscapes_root,
                                                       tmp_path):
    cfg = seg_cfg(cityscapes_root, str(tmp_path), max_iters=1, hooks=[
        dict(type='TicketTransferHook', ticket=seg_ticket)])
    with pytest.raises(ValueError, match='prune_interval=None'):
        run(cfg)


def _ticket_with_state(seg_ticket, path, rename):
    """``seg_ticket`` saved again with its state_dict keys renamed."""
    ticket = load_checkpoint_file(seg_ticket)
    ticket['state_dict'] = {
        new: v for new, v in ((rename(k), v)
                              for k, v in ticket['state_dict'].items())
        if new is not None}
    torch.save(ticket, path)
    return str(path)


def _frozen(cfg):
    # lr 0: the weights stay what the hook loaded (AdamW's decay is
    # scaled by lr too), so they can be compared after the run.
    cfg['optim_wrapper']['optimizer']['lr'] = 0.0
    cfg['log_level'] = 'INFO'  # the hook's count goes to the log file
    return cfg


def test_transfer_loads_ddp_prefixed_weights(seg_ticket, cityscapes_root,
                                             tmp_path):
    ticket = _ticket_with_state(seg_ticket, tmp_path / 'ddp.pth',
                                lambda k: 'module.' + k)
    wd = tmp_path / 'run'
    runner = run(_frozen(seg_cfg(cityscapes_root, str(wd), max_iters=1,
                                 hooks=transfer_hooks(ticket))))
    plain = load_checkpoint_file(seg_ticket)['state_dict']
    own = runner.model.state_dict()
    reinit = [re.compile(p) for p in DEFAULT_EXCLUDE]
    expected = [k for k in plain
                if k in own and not any(p.search(k) for p in reinit)]
    assert len(expected) > 100
    masks = next(h for h in runner.hooks
                 if isinstance(h, ProgressivePruningHook)).masks.masks
    params = dict(runner.model.named_parameters())
    for k in expected:
        if k in params:
            want = plain[k] * masks[k] if k in masks else plain[k]
            assert torch.equal(params[k].detach(), want), k
    log = next(wd.glob('*/*.log')).read_text()
    counts = re.findall(r'transferred \d+ units, (\d+) tensors', log)
    assert counts == [str(len(expected))]


@pytest.mark.parametrize('rename,message', [
    (lambda k: 'other.' + k, r'loaded 0 tensors'),
    (lambda k: None if k.startswith('decode_head.') else k,
     r"none for the modules \['decode_head'\]"),
])
def test_transfer_of_unmatched_weights_is_refused(seg_ticket, cityscapes_root,
                                                  tmp_path, rename, message):
    ticket = _ticket_with_state(seg_ticket, tmp_path / 'bad.pth', rename)
    cfg = seg_cfg(cityscapes_root, str(tmp_path / 'run'), max_iters=1,
                  hooks=transfer_hooks(ticket))
    with pytest.raises(ValueError, match=message) as err:
        run(cfg)
    assert 'bad.pth' in str(err.value)
