"""Crafted checkpoints, file names and arch files through the real tools.

A marker file shows whether anything read from a file ran as code: each
payload would create it. Every tool runs in a subprocess; exit code and
message are checked, and nothing already written may change.
"""
import hashlib
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from tiny_configs import seg_cfg

import mmsupertickets  # noqa: F401
from mmsupertickets.apis.export import export_ticket
from mmsupertickets.utils.checkpoint_io import load_checkpoint_file

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def payload(marker):
    """Python that creates ``marker`` if it is ever executed."""
    return f"__import__('os').system('touch {marker}')"


@pytest.fixture(scope='module')
def run(cityscapes_root, tmp_path_factory):
    """A tiny seg ticket run (shrink + prunes), its config file for the
    tools, and a clean export."""
    root = tmp_path_factory.mktemp('hostile')
    hooks = [
        dict(type='SuperNetSearchHook', rho=1e-3, warmup=2, min_macs=0,
             shrink_interval=3, threshold=1.0, by_epoch=False),
        dict(type='ProgressivePruningHook', target_sparsity=0.5,
             prune_interval=3, step=0.25, by_epoch=False),
    ]
    cfg = seg_cfg(cityscapes_root, str(root / 'work'), max_iters=6,
                  hooks=hooks)
    cfg.update(test_dataloader=cfg['val_dataloader'],
               test_evaluator=cfg['val_evaluator'], test_cfg=dict(
                   type='TestLoop'))
    Runner.from_cfg(Config(cfg)).train()
    ckpt = str(root / 'work' / 'iter_6.pth')
    cfg_file = str(root / 'train_cfg.py')
    Config(cfg).dump(cfg_file)
    out = str(root / 'ticket')
    export_ticket(cfg_file, ckpt, out)
    return dict(root=root, cfg=cfg, cfg_file=cfg_file, ckpt=ckpt, out=out,
                checkpoint=load_checkpoint_file(ckpt))


def tool(name, *args, cwd=REPO):
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', name), *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    return proc.returncode, proc.stdout + proc.stderr


def crafted(run, tmp_path, key, value=0, name='crafted.pth'):
    """The run's checkpoint with one more arch entry ``key: value``."""
    ckpt = load_checkpoint_file(run['ckpt'])
    ckpt['supertickets']['arch'][key] = value
    path = str(tmp_path / name)
    torch.save(ckpt, path)
    return path


@pytest.mark.slow
def test_code_in_an_arch_key_is_refused_by_export_and_test(run, tmp_path):
    marker = tmp_path / 'MARKER'
    key = f"backbone.x'+str({payload(marker)})+'"
    path = crafted(run, tmp_path, key)
    before = sha256(path)
    out = tmp_path / 'ticket'
    rc, log = tool('export_ticket.py', run['cfg_file'], path, '--out', out)
    assert rc != 0
    assert 'export_ticket.py: error:' in log and 'backbone.x' in log
    assert 'Traceback' not in log
    assert not out.exists()
    # tools/test.py with the training config (the hooks rebuild the arch).
    rc, log = tool('test.py', run['cfg_file'], path, '--work-dir',
                   tmp_path / 'test')
    assert rc != 0
    assert 'backbone.x' in log and 'not a module path' in log
    assert not marker.exists()
    assert sha256(path) == before


def test_unknown_unit_and_bad_values_are_named(run, tmp_path):
    # A unit the model does not have, even with 0 channels.
    path = crafted(run, tmp_path, 'backbone.stage9.branch0.block0.paths.k3')
    rc, log = tool('export_ticket.py', run['cfg_file'], path, '--out',
                   tmp_path / 't1')
    assert rc != 0 and 'backbone.stage9.branch0.block0.paths.k3' in log
    # A fractional channel count is refused, not rounded.
    unit = next(iter(run['checkpoint']['supertickets']['arch']))
    path = crafted(run, tmp_path, unit, 3.5, name='fraction.pth')
    rc, log = tool('export_ticket.py', run['cfg_file'], path, '--out',
                   tmp_path / 't2')
    assert rc != 0 and unit in log and '3.5' in log


@pytest.mark.slow
def test_code_in_a_checkpoint_file_name_stays_text(run, tmp_path):
    # A file name cannot hold '/': the payload touches a relative path,
    # and the tools run in tmp_path.
    marker = tmp_path / 'MARKER'
    folder = tmp_path / 'ckpts'
    folder.mkdir()
    name = f"evil\n{payload('MARKER')}\n#.pth"
    path = folder / name
    shutil.copyfile(run['ckpt'], path)
    out = tmp_path / 'ticket'
    rc, log = tool('export_ticket.py', run['cfg_file'], path, '--out', out,
                   cwd=tmp_path)
    assert rc == 0, log[-2000:]
    header = (out / 'config.py').read_text()
    assert repr(str(path)) in header  # escaped, on one comment line
    rc, log = tool('test.py', out / 'config.py', out / 'ticket.pth',
                   '--work-dir', tmp_path / 'test', cwd=tmp_path)
    assert rc == 0, log[-2000:]
    assert 'Loads checkpoint' in log
    assert not marker.exists()


@pytest.mark.slow
def test_arch_json_is_validated_with_file_and_unit_named(run, tmp_path):
    arch = json.loads(open(osp.join(run['out'], 'arch.json')).read())
    unit = next(k for k, v in arch.items()
                if k.startswith('backbone.') and v > 0)
    short = unit[len('backbone.'):]
    bad = tmp_path / 'bad_arch.json'
    bad.write_text(json.dumps({short: 3.5}))
    rc, log = tool('test.py', osp.join(run['out'], 'config.py'),
                   osp.join(run['out'], 'ticket.pth'), '--work-dir',
                   tmp_path / 'test', '--cfg-options',
                   f'model.backbone.arch={bad}')
    assert rc != 0
    assert str(bad) in log and short in log and '3.5' in log
    bad.write_text('{"stage1": ')
    rc, log = tool('test.py', osp.join(run['out'], 'config.py'),
                   osp.join(run['out'], 'ticket.pth'), '--work-dir',
                   tmp_path / 'test2', '--cfg-options',
                   f'model.backbone.arch={bad}')
    assert rc != 0 and str(bad) in log


@pytest.mark.slow
def test_a_narrower_checkpoint_is_refused_without_the_hooks(run, tmp_path):
    """The training config without the SuperTickets hooks builds the
    supernet: a shrunk checkpoint must not half-load into it."""
    cfg = Config(run['cfg'])
    cfg.custom_hooks = []
    cfg_file = str(tmp_path / 'no_hooks.py')
    cfg.dump(cfg_file)
    # The exported (shrunk, unmarked) weights: refused by shapes.
    rc, log = tool('test.py', cfg_file, osp.join(run['out'], 'ticket.pth'),
                   '--work-dir', tmp_path / 'a')
    assert rc != 0
    assert 'does not fit this model' in log and 'tensors differ' in log
    assert 'export_ticket' in log
    # The training checkpoint: refused as a masked ticket.
    rc, log = tool('test.py', cfg_file, run['ckpt'], '--work-dir',
                   tmp_path / 'b')
    assert rc != 0
    assert 'pruning masks' in log and 'export_ticket' in log


class _Payload:
    """Unpickling it runs a command, as a hostile checkpoint's pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.mark.slow
def test_a_remote_checkpoint_goes_through_the_allow_list(run, tmp_path):
    """tools/test.py with an http:// checkpoint whose pickle runs code."""
    import functools
    import http.server
    import threading
    www = tmp_path / 'www'
    www.mkdir()
    marker = tmp_path / 'MARKER'
    ckpt = load_checkpoint_file(run['ckpt'])
    ckpt['meta']['note'] = _Payload(marker)
    torch.save(ckpt, www / 'evil.pth')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(www))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f'http://127.0.0.1:{server.server_address[1]}/evil.pth'
        proc = subprocess.run(
            [sys.executable, osp.join(REPO, 'tools', 'test.py'),
             run['cfg_file'], url, '--work-dir', str(tmp_path / 'test')],
            capture_output=True, text=True, cwd=REPO, timeout=600,
            env=dict(os.environ, OMP_NUM_THREADS='1',
                     TORCH_HOME=str(tmp_path / 'hub')))
    finally:
        server.shutdown()
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'system' in log and 'evil.pth' in log  # the refused global
    assert not marker.exists()
