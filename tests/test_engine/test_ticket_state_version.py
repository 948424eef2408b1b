"""The ticket state's own versioned checkpoint key, and checkpoints of the
earlier layout (``meta['supertickets']``) read through the migration."""
import copy
import json
import os
import os.path as osp

import pytest
import torch
from fixture_runs import tiny_ticket_run
from mmengine.config import Config
from mmengine.runner import Runner

import mmsupertickets  # noqa: F401
from mmsupertickets.apis.export import export_ticket
from mmsupertickets.engine.ticket_meta import (
    TICKET_KEY,
    TICKET_STATE_VERSION,
    ticket_meta,
)
from mmsupertickets.utils.checkpoint_io import load_checkpoint_file


@pytest.fixture(scope='module')
def run(cityscapes_root, tmp_path_factory):
    return tiny_ticket_run(cityscapes_root,
                           tmp_path_factory.mktemp('version'))


def _old_layout(checkpoint):
    """The checkpoint as mmsupertickets wrote it before version 2."""
    old = copy.deepcopy(checkpoint)
    state = old.pop(TICKET_KEY)
    del state['version']
    old['meta']['supertickets'] = state
    return old


def test_state_has_its_own_versioned_key(run):
    ckpt = run['checkpoint']
    assert ckpt[TICKET_KEY]['version'] == TICKET_STATE_VERSION
    assert {'arch', 'search', 'pruning'} <= set(ckpt[TICKET_KEY])
    assert 'supertickets' not in ckpt['meta']


def test_an_earlier_checkpoint_exports_and_resumes(run, tmp_path):
    old_path = str(tmp_path / 'old' / 'iter_4.pth')
    os.makedirs(osp.dirname(old_path))
    torch.save(_old_layout(run['checkpoint']), old_path)
    migrated = ticket_meta(load_checkpoint_file(old_path))
    current = run['checkpoint'][TICKET_KEY]
    assert migrated['version'] == TICKET_STATE_VERSION
    assert migrated['arch'] == current['arch']
    masks = current['pruning']['masks']
    assert masks and all(
        torch.equal(migrated['pruning']['masks'][n], m)
        for n, m in masks.items())

    new_out, old_out = str(tmp_path / 'new'), str(tmp_path / 'from_old')
    export_ticket(run['cfg_file'], run['ckpt'], new_out)
    export_ticket(run['cfg_file'], old_path, old_out)
    for name in ('arch.json', 'summary.json'):
        with open(osp.join(new_out, name)) as a, \
                open(osp.join(old_out, name)) as b:
            new, old = json.load(a), json.load(b)
        new.pop('files', None), old.pop('files', None)
        if name == 'summary.json':
            new.pop('checkpoint', None), old.pop('checkpoint', None)
        assert new == old, name
    assert torch.equal(
        *[load_checkpoint_file(osp.join(d, 'ticket.pth'))['state_dict'][k]
          for d in (new_out, old_out)
          for k in ['decode_head.conv_seg.weight']])

    # Resumed with the hooks: the rebuilt subnet and masks are the saved
    # ones, and what the run writes next has the current layout.
    cfg = copy.deepcopy(run['cfg'])
    cfg.update(work_dir=osp.dirname(old_path), load_from=old_path,
               resume=True)
    cfg['train_cfg']['max_iters'] = 5
    Runner.from_cfg(Config(cfg)).train()
    resumed = load_checkpoint_file(osp.join(osp.dirname(old_path),
                                            'iter_5.pth'))
    assert resumed[TICKET_KEY]['version'] == TICKET_STATE_VERSION
    assert 'supertickets' not in resumed['meta']
    assert resumed[TICKET_KEY]['arch'] == run['checkpoint'][TICKET_KEY][
        'arch']


def test_a_later_version_is_refused_naming_it(run, tmp_path):
    later = copy.deepcopy(run['checkpoint'])
    later[TICKET_KEY]['version'] = TICKET_STATE_VERSION + 1
    path = str(tmp_path / 'later.pth')
    torch.save(later, path)
    with pytest.raises(ValueError, match=rf'supertickets.version='
                       rf'{TICKET_STATE_VERSION + 1}'):
        export_ticket(run['cfg_file'], path, str(tmp_path / 'out'))
