"""Grafting modules from a second ticket (ImageNet → COCO: the COCO
ticket's neck under the ImageNet ticket's backbone), here on the tiny
segmentation model: the backbone from one ticket, the decode head from
another one drawn with other dead channels."""
import re

import pytest
import torch
from test_transfer import DRAW, _frozen, run, transfer_hooks
from tiny_configs import seg_cfg

from mmsupertickets.engine.hooks import (
    ProgressivePruningHook,
    TicketTransferHook,
)
from mmsupertickets.pruning.prunable import DEFAULT_EXCLUDE
from mmsupertickets.structures.searchable import find_searchable_units
from mmsupertickets.utils.checkpoint_io import load_checkpoint_file

REINIT = [re.compile(p) for p in DEFAULT_EXCLUDE]


@pytest.fixture(scope='module')
def tickets(cityscapes_root, tmp_path_factory):
    """Two seg tickets whose channels die at other seeds."""
    paths = []
    for seed in (0, 1):
        wd = str(tmp_path_factory.mktemp(f'ticket{seed}'))
        hooks = [dict(h, seed=seed) if h['type'] == 'KillChannelsHook'
                 else h for h in DRAW]
        run(seg_cfg(cityscapes_root, wd, max_iters=2, hooks=hooks))
        paths.append(f'{wd}/iter_2.pth')
    return paths


def _part(ticket, module):
    """Arch (live units) and masks of ``module`` in ``ticket``."""
    meta = ticket['supertickets']
    p = module + '.'
    arch = {k: v for k, v in meta['arch'].items() if v and k.startswith(p)}
    masks = {k: v for k, v in meta['pruning']['masks'].items()
             if k.startswith(p)}
    return arch, masks


@pytest.mark.slow
def test_graft_takes_module_from_second_ticket(tickets, cityscapes_root,
                                               tmp_path):
    main, graft = (load_checkpoint_file(p) for p in tickets)
    runner = run(_frozen(seg_cfg(
        cityscapes_root, str(tmp_path), max_iters=1,
        hooks=transfer_hooks(tickets[0], modules=('backbone', ),
                             graft=dict(decode_head=tickets[1])))))
    model = runner.model
    arch = {u.name: u.channels for u in find_searchable_units(model)}
    masks = next(h for h in runner.hooks
                 if isinstance(h, ProgressivePruningHook)).masks.masks
    params = dict(model.named_parameters())
    for module, ticket in (('backbone', main), ('decode_head', graft)):
        want_arch, want_masks = _part(ticket, module)
        assert {k: v for k, v in arch.items()
                if k.startswith(module + '.')} == want_arch, module
        assert {k for k in masks if k.startswith(module + '.')} == \
            want_masks.keys() and want_masks, module
        for k, m in want_masks.items():
            assert torch.equal(masks[k].cpu(), m), k
        # lr 0: the weights are still the ones loaded (masked ones zero),
        # all but the fresh classifier.
        state = ticket['state_dict']
        loaded = [k for k in params if k.startswith(module + '.')
                  and not any(p.search(k) for p in REINIT)]
        assert len(loaded) > 10
        for k in loaded:
            want = state[k] * want_masks[k] if k in want_masks else state[k]
            assert torch.equal(params[k].detach(), want), k
    # The two tickets differ where it matters, so the checks above tell
    # the sources apart.
    assert _part(main, 'decode_head')[0] != _part(graft, 'decode_head')[0]
    assert _part(main, 'backbone')[0] != _part(graft, 'backbone')[0]
    meta = load_checkpoint_file(
        f'{tmp_path}/iter_1.pth')['supertickets']
    assert meta['grafted_from'] == dict(decode_head=tickets[1])


def test_graft_of_a_module_twice_or_absent_is_refused(tickets,
                                                      cityscapes_root,
                                                      tmp_path):
    # Refused as the hook is built, before any training.
    with pytest.raises(ValueError, match=r"'decode_head' is taken from both"):
        TicketTransferHook(tickets[0], modules=('backbone', 'decode_head'),
                           graft=dict(decode_head=tickets[1]))
    # A ticket without the module's units (a classification ticket has no
    # decode head): the error names the file and the module.
    ticket = load_checkpoint_file(tickets[1])
    meta = ticket['supertickets']
    meta['arch'] = {k: v for k, v in meta['arch'].items()
                    if not k.startswith('decode_head.')}
    bad = str(tmp_path / 'no_head.pth')
    torch.save(ticket, bad)
    with pytest.raises(ValueError, match=r"no_head\.pth has no searchable "
                       r"units under \['decode_head'\]"):
        run(seg_cfg(cityscapes_root, str(tmp_path / 'b'), max_iters=1,
                    hooks=transfer_hooks(tickets[0], modules=('backbone', ),
                                         graft=dict(decode_head=bad))))
